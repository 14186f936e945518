"""Sessions of the web pages: a staff member signs in once with their personal API key.

- The browser gets a cookie ``{token}.{mac}``: a random 256-bit token and an HMAC of it
  under a key derived from the master secret (forged or altered cookies are refused
  before the database is asked). The database keeps only the token's SHA-256.
- A session resolves to the same :class:`~digitizer.services.keys.Actor` as its key, so
  roles and office scope apply unchanged; revoking or expiring the key ends every session
  opened with it (checked on every request).
- A session ends when unused for ``web.idle_minutes``, ``web.max_hours`` after sign-in,
  or at sign-out (its row is deleted).
- Each session has its own CSRF token; every form carries it and every POST is checked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete
from sqlalchemy.orm import Session

from digitizer.config import Settings
from digitizer.services.keys import Actor
from digitizer.services.secrets import master_secret
from storage.db import ApiKey, WebSession, utcnow

COOKIE = "sohoa_session"
#: The pre-session CSRF cookie of the sign-in form (double submit).
LOGIN_COOKIE = "sohoa_login"
#: ``last_seen_at`` is written at most this often (reads do not each write a row).
TOUCH_GRANULARITY = timedelta(seconds=15)
#: Roles that sign in to the pages (portals are programs acting for citizens).
WEB_ROLES = frozenset({"clerk", "approver", "verifier", "admin"})


@dataclass(frozen=True)
class WebUser:
    """A signed-in person: who (as for the API) and the session's CSRF token."""

    actor: Actor
    session_id: str
    csrf_token: str


def _mac_key(settings: Settings) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"sohoa/web-session/v1")
    return hkdf.derive(master_secret(settings))


def _mac(settings: Settings, token: str) -> str:
    digest = hmac.new(_mac_key(settings), token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign(settings: Settings, token: str) -> str:
    """A cookie value: the token and its MAC."""
    return f"{token}.{_mac(settings, token)}"


def unsign(settings: Settings, cookie: str | None) -> str | None:
    """The token of a cookie whose MAC is right; None otherwise."""
    if not cookie or len(cookie) > 200 or "." not in cookie:
        return None
    token, mac = cookie.rsplit(".", 1)
    if not token or not hmac.compare_digest(mac, _mac(settings, token)):
        return None
    return token


def open_session(session: Session, settings: Settings, actor: Actor) -> tuple[str, WebUser]:
    """Start a session for an authenticated actor; returns the cookie value and the user."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = WebSession(
        id=_session_id(token),
        key_id=actor.key_id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
    )
    session.add(row)
    session.flush()
    return sign(settings, token), WebUser(actor, row.id, row.csrf_token)


def resolve(session: Session, settings: Settings, cookie: str | None) -> WebUser | None:
    """The signed-in user of a cookie, or None (no, forged, ended or idle session, or a key
    that was revoked or expired since: that session is deleted)."""
    token = unsign(settings, cookie)
    if token is None:
        return None
    row = session.get(WebSession, _session_id(token))
    if row is None:
        return None
    now = utcnow()
    key = session.get(ApiKey, row.key_id)
    idle = timedelta(minutes=settings.web.idle_minutes)
    lifetime = timedelta(hours=settings.web.max_hours)
    if (
        key is None
        or key.revoked_at is not None
        or (key.expires_at is not None and key.expires_at <= now)
        or now - row.last_seen_at > idle
        or now - row.created_at > lifetime
    ):
        session.delete(row)
        session.flush()
        return None
    if now - row.last_seen_at > TOUCH_GRANULARITY:
        row.last_seen_at = now
    actor = Actor(key_id=key.id, name=key.name, role=key.role, office=key.office)
    return WebUser(actor, row.id, row.csrf_token)


def close(session: Session, session_id: str) -> None:
    """End a session (sign-out)."""
    session.execute(delete(WebSession).where(WebSession.id == session_id))


def purge(session: Session, settings: Settings) -> int:
    """Delete sessions idle or older than allowed; returns how many."""
    now = utcnow()
    result = session.execute(
        delete(WebSession).where(
            (WebSession.last_seen_at < now - timedelta(minutes=settings.web.idle_minutes))
            | (WebSession.created_at < now - timedelta(hours=settings.web.max_hours))
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def csrf_matches(user: WebUser, presented: str | None) -> bool:
    """Whether a form's (or header's) CSRF token is this session's."""
    return bool(presented) and hmac.compare_digest(str(presented), user.csrf_token)
