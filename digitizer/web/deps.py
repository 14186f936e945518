"""What the page routes share: the signed-in user, CSRF checks, templates.

A page without a session answers 303 to the sign-in page (``LoginRequired``); a
signed-in user whose role may not see the page gets a 403 page. Every POST carries the
session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``), checked
after the role and before the body is used.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from digitizer import __version__
from digitizer.api.deps import SettingsDep
from digitizer.services import websessions
from digitizer.services.keys import require_role
from digitizer.services.websessions import WebUser
from digitizer.web import labels
from signing.stamp import format_vn_time
from storage.db import get_sessionmaker

PREFIX = "/web"
LOGIN_PATH = f"{PREFIX}/login"

#: Roles that sign in to the pages.
ANY_STAFF = ("clerk", "approver", "verifier")
#: Who digitizes, reviews and searches (admin passes every check).
CLERKS = ("clerk", "approver")
#: Who checks signed PDFs.
VERIFIERS = ("verifier", "clerk", "approver")


class LoginRequired(Exception):
    """No (valid) session: the page answers 303 to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRejected(Exception):
    """A POST without this session's CSRF token: 403."""


def safe_next(value: str | None) -> str:
    """A local page to go back to after sign-in (never another site)."""
    if (
        value
        and value.startswith(f"{PREFIX}/")
        and not value.startswith("//")
        and "\\" not in value
    ):
        return value
    return f"{PREFIX}/"


def _vn_time(moment: datetime | None) -> str:
    return format_vn_time(moment) if moment is not None else ""


def _percent(value: float | None) -> str:
    return "" if value is None else f"{round(value * 100)}%"


TEMPLATES = Environment(
    loader=PackageLoader("digitizer.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.globals.update(labels=labels, version=__version__, prefix=PREFIX)
TEMPLATES.filters.update(vn_time=_vn_time, percent=_percent, reason=labels.reason)


def render(
    request: Request,
    name: str,
    user: WebUser | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page from ``templates/{name}`` with the user (for the header and the CSRF token)."""
    html = TEMPLATES.get_template(name).render(
        request=request, user=user, path=request.url.path, **context
    )
    return HTMLResponse(html, status_code=status_code)


def current_user(request: Request, settings: SettingsDep) -> WebUser | None:
    """The session's user, or None (its own short transaction: touch or end the session)."""
    cookie = request.cookies.get(websessions.COOKIE)
    if not cookie:
        return None
    session = get_sessionmaker(settings.db.url)()
    try:
        user = websessions.resolve(session, settings, cookie)
        session.commit()
        return user
    finally:
        session.close()


def page_requires(*roles: str) -> Callable[..., WebUser]:
    """A dependency admitting signed-in users of ``roles`` (admin always)."""

    def dependency(
        request: Request, user: Annotated[WebUser | None, Depends(current_user)]
    ) -> WebUser:
        if user is None:
            target = request.url.path
            if request.method == "GET" and request.url.query:
                target += "?" + request.url.query
            raise LoginRequired(target)
        require_role(user.actor, roles)
        return user

    dependency.roles = roles  # type: ignore[attr-defined]  # read by the authorization tests
    return dependency


def form_requires(*roles: str) -> Callable[..., Any]:
    """``page_requires`` for POSTs: also checks the session's CSRF token."""
    gate = page_requires(*roles)

    # Depends as a default: a string annotation could not name the local ``gate``.
    async def dependency(request: Request, user: WebUser = Depends(gate)) -> WebUser:
        token = request.headers.get("x-csrf-token")
        if token is None:
            kind = request.headers.get("content-type", "")
            if kind.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
                value = (await request.form()).get("csrf_token")
                token = value if isinstance(value, str) else None
        if not websessions.csrf_matches(user, token):
            raise CsrfRejected()
        return user

    return dependency


def login_url(next_path: str) -> str:
    return f"{LOGIN_PATH}?next={quote(next_path, safe='/')}"


# Annotated aliases, as in ``digitizer.api.deps``.
AnyStaffPage = Annotated[WebUser, Depends(page_requires(*ANY_STAFF))]
AnyStaffForm = Annotated[WebUser, Depends(form_requires(*ANY_STAFF))]
ClerkPage = Annotated[WebUser, Depends(page_requires(*CLERKS))]
ClerkForm = Annotated[WebUser, Depends(form_requires(*CLERKS))]
VerifierPage = Annotated[WebUser, Depends(page_requires(*VERIFIERS))]
VerifierForm = Annotated[WebUser, Depends(form_requires(*VERIFIERS))]
