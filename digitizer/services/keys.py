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

from sqlalchemy import select
from sqlalchemy.orm import Session

from digitizer.errors import ForbiddenError, NotAuthenticatedError
from storage.db import ApiKey, utcnow

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


def _hash(key: str) -> str:
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
        key_hash=_hash(key),
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return row, key


def authenticate(session: Session, key: str | None) -> Actor:
    """The actor behind a presented key.

    Raises:
        NotAuthenticatedError: missing, malformed, unknown, revoked or expired key
            (one message for all, so a caller learns nothing about which).
    """
    failure = NotAuthenticatedError("a valid API key is required (header X-API-Key)")
    if not key or not key.startswith("sohoa_"):
        raise failure
    parts = key.split("_", 2)
    if len(parts) != 3:
        raise failure
    row = session.scalars(select(ApiKey).where(ApiKey.prefix == parts[1])).first()
    if row is None or not hmac.compare_digest(row.key_hash, _hash(key)):
        raise failure
    now = utcnow()
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        raise failure
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_GRANULARITY:
        row.last_used_at = now  # coarse, so that reads do not each write a row
    return Actor(key_id=row.id, name=row.name, role=row.role, office=row.office)


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
