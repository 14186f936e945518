"""Sign-in with a personal key, sign-out, the home page and the static files."""

from __future__ import annotations

import secrets
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from digitizer import __version__
from digitizer.api.deps import SessionDep, SettingsDep
from digitizer.api.ratelimit import FailedAuthLimiter
from digitizer.errors import NotAuthenticatedError, NotFoundError
from digitizer.services import audit, websessions
from digitizer.services.keys import authenticate
from digitizer.web.deps import (
    LOGIN_PATH,
    PREFIX,
    AnyStaffForm,
    AnyStaffPage,
    render,
    safe_next,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)

_STATIC = {"sohoa.css": "text/css; charset=utf-8", "sohoa.js": "text/javascript; charset=utf-8"}


def _secure(request: Request) -> bool:
    return request.app.state.settings.public_base_url.startswith("https://")


def _login_page(
    request: Request, next_path: str, error: str | None = None, status_code: int = 200
) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        status_code=status_code,
        login_csrf=token,
        next_path=safe_next(next_path),
        error=error,
    )
    response.set_cookie(
        websessions.LOGIN_COOKIE,
        token,
        max_age=1800,
        path=LOGIN_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    """The sign-in page: paste your personal key once."""
    return _login_page(request, next or f"{PREFIX}/")


@router.post("/login")
def login(
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    api_key: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Check the key, open a session (cookie) and go to the page asked for."""
    expected = request.cookies.get(websessions.LOGIN_COOKIE)
    if not expected or not secrets.compare_digest(expected, csrf_token):
        return _login_page(
            request, next, "Trang đăng nhập đã cũ. Vui lòng đăng nhập lại.", status_code=400
        )
    key = api_key.strip()
    limiter: FailedAuthLimiter | None = getattr(request.app.state, "auth_limiter", None)
    buckets = FailedAuthLimiter.buckets(request.client.host if request.client else None, key)
    if limiter is not None and limiter.retry_after(buckets) is not None:
        return _login_page(
            request,
            next,
            "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau ít phút.",
            status_code=429,
        )
    try:
        actor = authenticate(session, key)
    except NotAuthenticatedError:
        if limiter is not None:
            limiter.failed(buckets)
        return _login_page(
            request,
            next,
            "Khóa truy cập không đúng, đã bị thu hồi hoặc đã hết hạn.",
            status_code=401,
        )
    if actor.role not in websessions.WEB_ROLES:
        return _login_page(
            request,
            next,
            "Khóa của cổng dịch vụ không dùng để đăng nhập trang này.",
            status_code=403,
        )
    websessions.purge(session, settings)
    cookie, user = websessions.open_session(session, settings, actor)
    audit.record(session, actor, "web.login", detail={"session": user.session_id[:12]})
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        websessions.COOKIE,
        cookie,
        path=f"{PREFIX}/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(websessions.LOGIN_COOKIE, path=LOGIN_PATH)
    return response


@router.post("/logout")
def logout(user: AnyStaffForm, session: SessionDep) -> Response:
    """End the session."""
    websessions.close(session, user.session_id)
    audit.record(session, user.actor, "web.logout", detail={"session": user.session_id[:12]})
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(websessions.COOKIE, path=f"{PREFIX}/")
    return response


@router.get("/")
def home(request: Request, user: AnyStaffPage) -> Response:
    """Where each role starts."""
    return render(request, "home.html", user)


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The pages' own CSS and script (shipped in the package; nothing from elsewhere)."""
    media_type = _STATIC.get(name)
    if media_type is None:
        raise NotFoundError("no such file")
    data = (files("digitizer.web") / "static" / name).read_bytes()
    return Response(
        data,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=3600", "ETag": f'"{__version__}"'},
    )
