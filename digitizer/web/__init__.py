"""The staff web pages, served by the API's FastAPI app under ``/web``.

Server-rendered (Jinja2) in Vietnamese, with one stylesheet and one small script of our
own (``static/``): no build step, nothing loaded from elsewhere. Staff sign in once with
their personal key (``digitizer.services.websessions``); every page then acts as that
key's :class:`~digitizer.services.keys.Actor`, so roles, office scope and auditing are the
API's. Errors on pages are pages (in Vietnamese), with the API's status codes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from digitizer.errors import ServiceUnavailableError, SohoaError
from digitizer.services import websessions
from digitizer.web import labels
from digitizer.web.deps import PREFIX, CsrfRejected, LoginRequired, current_user, login_url, render
from signing.errors import SigningError
from storage.errors import ObjectStoreUnavailableError

log = logging.getLogger(__name__)

Handler = Callable[[Request, Any], Awaitable[Response]]


def _is_page(request: Request) -> bool:
    return request.url.path == PREFIX or request.url.path.startswith(f"{PREFIX}/")


def _user(request: Request) -> websessions.WebUser | None:
    try:
        return current_user(request, request.app.state.settings)
    except Exception:  # the error page must render even when the database is down
        return None


def _error_page(request: Request, status: int, slug: str, detail: str | None = None) -> Response:
    message = labels.PROBLEMS.get(slug) or labels.PROBLEMS["http-error"]
    return render(
        request,
        "error.html",
        _user(request) if status != 503 else None,
        status_code=status,
        message=message,
        detail=detail,
        status=status,
    )


def install(app: FastAPI) -> None:
    """Add the page routes, and page renderings of errors on ``/web`` paths (the API's
    problem+json handlers stay for every other path). Call after ``problems.install``."""
    from digitizer.web.routes import auth, batches, documents, review, verify

    for module in (auth, verify, batches, review, documents):
        app.include_router(module.router)

    def wrap(kind: type[Exception], page: Callable[[Request, Any], Response]) -> None:
        previous: Handler | None = app.exception_handlers.get(kind)  # type: ignore[assignment]

        async def handler(request: Request, exc: Any) -> Response:
            if _is_page(request) or previous is None:
                return page(request, exc)
            return await previous(request, exc)

        app.add_exception_handler(kind, handler)

    def domain(request: Request, exc: SohoaError) -> Response:
        return _error_page(request, exc.status, exc.slug, exc.detail)

    def signing(request: Request, exc: SigningError) -> Response:
        return _error_page(request, exc.status, "http-error", exc.detail)

    def unavailable(request: Request, exc: Exception) -> Response:
        log.warning("%s on %s %s", type(exc).__name__, request.method, request.url.path)
        error = ServiceUnavailableError("storage is unavailable")
        return _error_page(request, error.status, error.slug)

    def invalid(request: Request, exc: RequestValidationError) -> Response:
        names = sorted({str(e.get("loc", ("", ""))[-1]) for e in exc.errors()})
        return _error_page(request, 422, "invalid-request", ", ".join(names))

    def http(request: Request, exc: StarletteHTTPException) -> Response:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return _error_page(request, exc.status_code, slug)

    wrap(SohoaError, domain)
    wrap(SigningError, signing)
    wrap(ObjectStoreUnavailableError, unavailable)
    wrap(OperationalError, unavailable)
    wrap(RequestValidationError, invalid)
    wrap(StarletteHTTPException, http)

    def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error_page(request, 500, "http-error", "the error was logged")

    wrap(Exception, unexpected)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        response = RedirectResponse(login_url(exc.next_path), status_code=303)
        if request.cookies.get(websessions.COOKIE):
            response.delete_cookie(websessions.COOKIE, path=f"{PREFIX}/")
        return response

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, exc: CsrfRejected) -> Response:
        return render(
            request,
            "error.html",
            _user(request),
            status_code=403,
            status=403,
            message="Biểu mẫu đã cũ hoặc không hợp lệ. Vui lòng tải lại trang và thử lại.",
            detail=None,
        )
