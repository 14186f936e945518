"""RFC 9457 problem responses: one handler for every error the API can return."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from digitizer.errors import ServiceUnavailableError, SohoaError
from signing.errors import SigningError
from storage.errors import ObjectStoreUnavailableError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem_response(
    status: int, title: str, detail: str | None, type_: str, instance: str | None = None, **extra
) -> JSONResponse:
    """A problem+json response."""
    body = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    headers = {"WWW-Authenticate": 'ApiKey header="X-API-Key"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_from_error(error: SohoaError, instance: str | None = None) -> JSONResponse:
    """Render a domain error (with ``Retry-After`` when the error says when to retry)."""
    response = problem_response(
        error.status, error.title, error.detail, error.type_uri(), instance, **error.extra
    )
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def install(app: FastAPI) -> None:
    """Register the handlers on an app."""

    @app.exception_handler(SohoaError)
    async def _domain(request: Request, exc: SohoaError) -> JSONResponse:
        return problem_from_error(exc, request.url.path)

    @app.exception_handler(SigningError)
    async def _signing(request: Request, exc: SigningError) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail, exc.type_uri(), request.url.path)

    @app.exception_handler(ObjectStoreUnavailableError)
    @app.exception_handler(OperationalError)
    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        # An adapter outage is a 503 for whatever route met it; nothing was changed.
        error = ServiceUnavailableError("storage is unavailable; try again shortly")
        log.warning("%s on %s %s", type(exc).__name__, request.method, request.url.path)
        return problem_from_error(error, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()
        ]
        return problem_response(
            422,
            "The request is not valid",
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors),
            "/problems/invalid-request",
            request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed", 413: "file-too-large"}.get(
            exc.status_code, "http-error"
        )
        return problem_response(
            exc.status_code, str(exc.detail), None, f"/problems/{slug}", request.url.path
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500, "Internal error", "the error was logged", "/problems/internal", request.url.path
        )
