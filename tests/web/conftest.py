"""Helpers for the page tests: sign in through the form like a browser would."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from digitizer.api.app import create_app
from digitizer.config import Settings
from tests.helpers import make_key

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(
    settings: Settings, role: str = "clerk", office: str | None = None, key: str | None = None
) -> tuple[TestClient, str]:
    """A client with a session (cookie) of a fresh key of ``role``; returns it and the key."""
    api = TestClient(create_app(settings), raise_server_exceptions=False)
    key = key or make_key(settings, role, name=f"Nguyễn Thị {role}", office=office)
    form = api.get("/web/login")
    assert form.status_code == 200
    answer = api.post(
        "/web/login",
        data={"api_key": key, "csrf_token": csrf_of(form.text), "next": "/web/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/web/"
    return api, key
