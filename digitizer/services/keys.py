"""Personal and client API keys: named, role-bound, stored hashed, shown once.

A key looks like ``sohoa_<prefix>_<secret>``; the prefix finds the row without
scanning, the SHA-256 of the whole key is compared in constant time. Keys are
high-entropy random strings, so a plain hash is enough (no password KDF needed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digitizer.errors import ForbiddenError, NotAuthenticatedError
from storage.db import ApiKey, utcnow
from storage.statements import Sql

if TYPE_CHECKING:
    from storage.asyncdb import AsyncDatabase

ROLES = ("clerk", "approver", "verifier", "portal", "admin")
#: Roles of people who work for an office; their keys normally carry its code.
STAFF_ROLES = ("clerk", "approver", "verifier", "admin")
LAST_USED_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True)
class Actor:
    """Who is calling: the key's id, name, role and office."""

    key_id: str
    name: str
    role: str
    office: str | None


def key_digest(key: str) -> str:
    """What is stored of a key (``api_keys.key_hash``)."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    session: Session,
    *,
    name: str,
    role: str,
    office: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the key itself (shown once, never stored)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if role == "portal" and office:
        raise ValueError("portal keys are clients acting under citizens' consent: no office")
    prefix = secrets.token_hex(6)
    key = f"sohoa_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        name=name,
        role=role,
        office=office,
        prefix=prefix,
        key_hash=key_digest(key),
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return row, key


_FAILURE = "a valid API key is required (header X-API-Key)"


def key_prefix(key: str | None) -> str:
    """The prefix that finds a key's row.

    Raises:
        NotAuthenticatedError: missing or malformed key.
    """
    if not key or not key.startswith("sohoa_"):
        raise NotAuthenticatedError(_FAILURE)
    parts = key.split("_", 2)
    if len(parts) != 3:
        raise NotAuthenticatedError(_FAILURE)
    return parts[1]


def check_key(key: str, row: Any | None, now: datetime) -> Actor:
    """The actor of a key's row (attributes or mapping keys ``id``, ``name``, ``role``,
    ``office``, ``key_hash``, ``revoked_at``, ``expires_at``), after the checks.

    Raises:
        NotAuthenticatedError: unknown (``row`` None), wrong secret, revoked or expired
            (one message for all, so a caller learns nothing about which).
    """

    def get(name: str) -> Any:
        return row[name] if isinstance(row, dict) else getattr(row, name)

    if row is None or not hmac.compare_digest(get("key_hash"), key_digest(key)):
        raise NotAuthenticatedError(_FAILURE)
    expires = get("expires_at")
    if get("revoked_at") is not None or (expires is not None and expires <= now):
        raise NotAuthenticatedError(_FAILURE)
    return Actor(key_id=get("id"), name=get("name"), role=get("role"), office=get("office"))


def stale_use(last_used_at: datetime | None, now: datetime) -> bool:
    """Whether ``last_used_at`` is due for an update (coarse, so that reads do not each
    write a row)."""
    return last_used_at is None or now - last_used_at > LAST_USED_GRANULARITY


def authenticate(session: Session, key: str | None) -> Actor:
    """The actor behind a presented key.

    Raises:
        NotAuthenticatedError: missing, malformed, unknown, revoked or expired key
            (one message for all, so a caller learns nothing about which).
    """
    prefix = key_prefix(key)
    assert key is not None
    row = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    now = utcnow()
    actor = check_key(key, row, now)
    assert row is not None
    if stale_use(row.last_used_at, now):
        row.last_used_at = now
    return actor


#: The columns of a key's row that :func:`check_key` and :func:`admit_async` read.
KEY_COLUMNS = (
    "id",
    "name",
    "role",
    "office",
    "key_hash",
    "revoked_at",
    "expires_at",
    "last_used_at",
)
_KEY_ROW = Sql(f"SELECT {', '.join(KEY_COLUMNS)} FROM api_keys WHERE prefix = %(prefix)s")
_NOTE_USE = Sql("UPDATE api_keys SET last_used_at = %(now)s WHERE id = %(id)s")


async def authenticate_async(db: AsyncDatabase, key: str | None) -> Actor:
    """:func:`authenticate` over the API's async pool (no thread, no ORM)."""
    prefix = key_prefix(key)
    assert key is not None
    return await admit_async(db, key, await db.fetch_one(_KEY_ROW, {"prefix": prefix}))


async def admit_async(db: AsyncDatabase, key: str, row: dict[str, Any] | None) -> Actor:
    """The actor of a key's row (:data:`_KEY_ROW`'s columns) read over the async pool,
    after :func:`check_key`; its use is noted (coarsely, :func:`stale_use`)."""
    now = utcnow()
    actor = check_key(key, row, now)
    assert row is not None
    if stale_use(row["last_used_at"], now):
        await db.execute(_NOTE_USE, {"now": now, "id": row["id"]})
    return actor


def require_role(actor: Actor, roles: tuple[str, ...]) -> None:
    """Raise ForbiddenError unless the actor has one of ``roles`` (admin has all)."""
    if actor.role != "admin" and actor.role not in roles:
        raise ForbiddenError(f"the role {actor.role!r} may not do this")


def revoke_key(session: Session, key_id: str) -> bool:
    """Revoke a key by id; False when no such key."""
    row = session.get(ApiKey, key_id)
    if row is None:
        return False
    row.revoked_at = row.revoked_at or utcnow()
    return True


def list_keys(session: Session) -> list[ApiKey]:
    """All keys, newest first (hashes only)."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc())))
