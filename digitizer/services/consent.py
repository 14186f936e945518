"""Consent grants: a citizen lets a portal client read some of their document types.

A grant is created, listed and revoked only with the citizen present (an ID token
from the identity provider, checked by the route); a portal key alone can do none
of it. A grant names the client, the document types, the purpose (recorded with
every read it allows) and an expiry, enforced at every read: an expired or revoked
grant gives nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from digitizer.doctypes import DOC_TYPES
from digitizer.errors import InvalidRequestError, NotFoundError
from digitizer.services import audit
from digitizer.services.keys import Actor
from storage.db import ApiKey, ConsentGrant, utcnow

#: Slack for clocks when a grant's end is given as a time: ``max_days`` plus this.
EXPIRY_SLACK = timedelta(minutes=5)


class GrantStatus(enum.StrEnum):
    """Where a grant stands now."""

    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


def status_of(grant: ConsentGrant, now: datetime | None = None) -> GrantStatus:
    """A grant's status at ``now``."""
    if grant.revoked_at is not None:
        return GrantStatus.REVOKED
    if grant.expires_at <= (now or utcnow()):
        return GrantStatus.EXPIRED
    return GrantStatus.ACTIVE


def resolve_expiry(
    expires_at: datetime | None, valid_days: int | None, max_days: int, now: datetime
) -> datetime:
    """The end of a new grant from exactly one of ``expires_at`` and ``valid_days``.

    Raises:
        InvalidRequestError: both or neither given, in the past, or longer than ``max_days``.
    """
    if (expires_at is None) == (valid_days is None):
        raise InvalidRequestError("give exactly one of expires_at and valid_days")
    if valid_days is not None:
        if not 1 <= valid_days <= max_days:
            raise InvalidRequestError(f"valid_days must be between 1 and {max_days}")
        return now + timedelta(days=valid_days)
    assert expires_at is not None
    if expires_at.tzinfo is None:
        raise InvalidRequestError("expires_at needs a time zone (for example 2026-01-31T00:00Z)")
    if expires_at <= now:
        raise InvalidRequestError("expires_at is in the past")
    if expires_at > now + timedelta(days=max_days) + EXPIRY_SLACK:
        raise InvalidRequestError(f"a grant lasts at most {max_days} days")
    return expires_at


def _doc_types(values: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(values))
    unknown = [v for v in chosen if v not in DOC_TYPES]
    if unknown:
        raise InvalidRequestError(
            f"unknown document types {', '.join(unknown)}; codes are {', '.join(DOC_TYPES)}"
        )
    if not chosen:
        raise InvalidRequestError("name at least one document type")
    return chosen


def _check_client(session: Session, client_id: str) -> None:
    key = session.get(ApiKey, client_id) if len(client_id) <= 32 else None
    now = utcnow()
    if (
        key is None
        or key.role != "portal"
        or key.revoked_at is not None
        or (key.expires_at is not None and key.expires_at <= now)
    ):
        raise InvalidRequestError("client_id is not an active portal client")


def create_grant(
    session: Session,
    actor: Actor,
    *,
    citizen_id: str,
    client_id: str,
    doc_types: Iterable[str],
    purpose: str,
    expires_at: datetime,
) -> ConsentGrant:
    """Record a citizen's consent (the caller has checked the citizen's token).

    Raises:
        InvalidRequestError: unknown client or document type, or an empty purpose.
    """
    purpose = " ".join(purpose.split())
    if not purpose:
        raise InvalidRequestError("purpose is required")
    types = _doc_types(doc_types)
    _check_client(session, client_id)
    grant = ConsentGrant(
        citizen_id=citizen_id,
        client_id=client_id,
        doc_types=types,
        purpose=purpose[:300],
        created_at=utcnow(),
        expires_at=expires_at,
    )
    session.add(grant)
    session.flush()
    audit.record(
        session,
        actor,
        "consent.create",
        citizen_id=citizen_id,
        purpose=grant.purpose,
        detail={"grant_id": grant.id, "client_id": client_id, "doc_types": types},
    )
    return grant


def grants_of(session: Session, actor: Actor, citizen_id: str) -> list[ConsentGrant]:
    """Every grant of a citizen (active, expired and revoked), newest first (an audited read)."""
    grants = list(
        session.scalars(
            select(ConsentGrant)
            .where(ConsentGrant.citizen_id == citizen_id)
            .order_by(ConsentGrant.created_at.desc(), ConsentGrant.id)
        )
    )
    audit.record(
        session, actor, "consent.list", citizen_id=citizen_id, detail={"count": len(grants)}
    )
    return grants


def revoke_grant(session: Session, actor: Actor, citizen_id: str, grant_id: str) -> ConsentGrant:
    """Revoke one of the citizen's grants (again: no change).

    Raises:
        NotFoundError: no grant with this id belongs to this citizen.
    """
    grant = session.get(ConsentGrant, grant_id) if len(grant_id) <= 32 else None
    if grant is None or grant.citizen_id != citizen_id:
        raise NotFoundError("no consent grant with this id")
    if grant.revoked_at is None:
        grant.revoked_at = utcnow()
        audit.record(
            session,
            actor,
            "consent.revoke",
            citizen_id=citizen_id,
            detail={"grant_id": grant.id, "client_id": grant.client_id},
        )
        session.flush()
    return grant


def active_grants(
    session: Session, citizen_id: str, client_id: str, now: datetime | None = None
) -> list[ConsentGrant]:
    """The client's grants from this citizen that are neither revoked nor expired now,
    newest first."""
    return list(
        session.scalars(
            select(ConsentGrant)
            .where(
                ConsentGrant.citizen_id == citizen_id,
                ConsentGrant.client_id == client_id,
                ConsentGrant.revoked_at.is_(None),
                ConsentGrant.expires_at > (now or utcnow()),
            )
            .order_by(ConsentGrant.created_at.desc(), ConsentGrant.id)
        )
    )


class CoversTypes(Protocol):
    """A grant, as row or view: the document types it opens."""

    @property
    def doc_types(self) -> list[str]: ...


G = TypeVar("G", bound=CoversTypes)


def granted_types(grants: Iterable[CoversTypes]) -> set[str]:
    """The document types any of ``grants`` covers."""
    return {t for g in grants for t in (g.doc_types or [])}


def grant_for(grants: Iterable[G], doc_type: str | None) -> G | None:
    """The first (newest) grant covering ``doc_type``: its purpose goes with the read."""
    return next((g for g in grants if doc_type is not None and doc_type in g.doc_types), None)
