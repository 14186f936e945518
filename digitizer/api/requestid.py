"""Request ids: every request carries one into the audit trail and back in ``X-Request-ID``.

An incoming ``X-Request-ID`` (a proxy's or the caller's) is kept when it is short and made
of safe characters; otherwise, or when absent, a new random id is made. Pure ASGI, so the
id is set in the context the endpoint runs in (sync endpoints copy it into their thread).
"""

from __future__ import annotations

import re
import secrets

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digitizer.services.audit import request_id_var

HEADER = "X-Request-ID"
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def accepted_request_id(value: str | None) -> str | None:
    """``value`` when it is a usable request id (1-64 of ``A-Za-z0-9._:-``), else None."""
    if value is None or not _SAFE.fullmatch(value):
        return None
    return value


def new_request_id() -> str:
    """A fresh random request id (128 bits, hex)."""
    return secrets.token_hex(16)


class RequestIdMiddleware:
    """Sets ``audit.request_id_var`` for the request and answers with ``X-Request-ID``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = accepted_request_id(incoming) or new_request_id()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        token = request_id_var.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
