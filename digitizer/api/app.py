"""The FastAPI application factory."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from digitizer import __version__
from digitizer.api import problems
from digitizer.api.routes import (
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
from digitizer.services.wiring import citizen_registry, object_store
from storage.errors import ObjectStoreUnavailableError

log = logging.getLogger(__name__)

_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class BodyLimitMiddleware(BaseHTTPMiddleware):
    """Refuse bodies over the limit from their Content-Length, before reading them."""

    def __init__(self, app: object, limit: int) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.limit = limit

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > self.limit:
            return problems.problem_from_error(
                FileTooLargeError(f"the request is larger than {self.limit} bytes"),
                request.url.path,
            )
        response = await call_next(request)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="sohoa",
        version=__version__,
        description="Digitize once, sign once, reuse everywhere. Errors are RFC 9457 problems.",
    )
    app.state.settings = settings
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
    )
    problems.install(app)
    app.include_router(health.router)
    app.include_router(documents.router)
    app.include_router(verify.router)
    app.include_router(vault.router)
    app.include_router(portal.router)
    app.include_router(subscribers.router)
    app.include_router(search.router)
    app.include_router(export.router)
    app.include_router(review.router)
    return app
