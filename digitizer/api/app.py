"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digitizer import __version__, web
from digitizer.api import lean, problems
from digitizer.api.ratelimit import FailedAuthLimiter
from digitizer.api.requestid import RequestIdMiddleware
from digitizer.api.routes import (
    audit,
    documents,
    export,
    health,
    portal,
    review,
    search,
    subscribers,
    vault,
    verify,
)
from digitizer.config import Settings, get_settings
from digitizer.errors import FileTooLargeError
from digitizer.services.intake import IntakeService
from digitizer.services.portal_reads import portal_reads
from digitizer.services.wiring import citizen_registry, object_store
from storage.asyncdb import async_database
from storage.errors import ObjectStoreUnavailableError

log = logging.getLogger(__name__)

_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

#: API answers and the service's own pages: no scripts from elsewhere, no framing.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: The interactive API docs load Swagger UI / ReDoc from their CDN with inline scripts.
_DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https:; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_DOCS_PATHS = ("/docs", "/redoc")
#: Sent when the service is reached over HTTPS (public_base_url https://...).
_HSTS = "max-age=31536000; includeSubDomains"


class BodyLimitMiddleware:
    """Refuse bodies over the limit from their Content-Length, before reading them; add the
    security headers to every answer.

    Pure ASGI (Starlette's ``BaseHTTPMiddleware`` runs each request through a task group
    and a stream: about 0.5 ms of CPU per call, measured on the portal reads).
    """

    def __init__(self, app: ASGIApp, limit: int, https: bool = False) -> None:
        self.app = app
        self.limit = limit
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        extra = dict(_SECURITY_HEADERS)
        extra["Content-Security-Policy"] = _DOCS_CSP if path.startswith(_DOCS_PATHS) else _CSP
        if self.https or scope.get("scheme") == "https":
            extra["Strict-Transport-Security"] = _HSTS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        length = Headers(scope=scope).get("content-length")
        if length and length.isdigit() and int(length) > self.limit:
            response = problems.problem_from_error(
                FileTooLargeError(f"the request is larger than {self.limit} bytes"), path
            )
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    async_db = async_database(settings.db.url, settings.db.async_pool_size)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if async_db is not None:
            await async_db.close()

    app = FastAPI(
        title="sohoa",
        version=__version__,
        description="Digitize once, sign once, reuse everywhere. Errors are RFC 9457 problems.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    # PostgreSQL: the hot reads (keys, portal) run on the event loop over this pool.
    app.state.async_db = async_db
    app.state.portal_reads = portal_reads(settings.db.url, async_db)
    store = object_store(settings)
    try:
        store.ensure_bucket()
    except ObjectStoreUnavailableError:
        # Start anyway: readiness reports it and uploads answer 503 until it is back.
        log.warning("object store unavailable at start-up")
    app.state.store = store
    app.state.intake = IntakeService(settings, store, citizen_registry(settings))
    app.add_middleware(
        BodyLimitMiddleware,
        limit=max(settings.limits.max_upload_bytes, settings.limits.max_zip_total_bytes)
        + 1024 * 1024,
        https=settings.public_base_url.startswith("https://"),
    )
    # Outermost: every answer (413s and 401s included) carries the request id.
    app.add_middleware(RequestIdMiddleware)
    app.state.auth_limiter = FailedAuthLimiter(settings.auth.max_failures, settings.auth.window_s)
    problems.install(app)
    app.include_router(health.router)
    app.include_router(documents.router)
    app.include_router(verify.router)
    app.include_router(audit.router)
    app.include_router(vault.router)
    app.include_router(portal.router)
    lean.install(app, portal.LEAN_ROUTES)
    app.include_router(subscribers.router)
    app.include_router(search.router)
    app.include_router(export.router)
    app.include_router(review.router)
    # The staff web pages (/web): after the API's problem handlers, which they wrap.
    web.install(app)
    return app
