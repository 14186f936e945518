"""What a portal reads of the vault, and the audit event of each read.

The portal's list and fetch calls are the vault's hottest path (every portal polls every
citizen it serves). Two implementations of one interface:

* :class:`PgPortalReads`: PostgreSQL over the API's async pool, on the event loop (no
  thread hop, no ORM objects), the audit event appended in one autocommit statement;
* :class:`SessionPortalReads`: any database through SQLAlchemy sessions in the thread pool
  (SQLite, the embedded stack), with the same functions the rest of the service uses
  (``consent.active_grants``, ``vault.current_listing``, ``audit.record_read``).

The rules are the same in both (and tested on both): a client's grants from a citizen
are those neither revoked nor expired, newest first; the listing shows the citizen's
e-copies of the granted types that are valid, or revoked with nothing replacing them
yet, newest first (``vault.CURRENT_STATUSES``).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Protocol

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from digitizer.services import audit, consent, vault
from digitizer.services.keys import Actor
from storage.asyncdb import AsyncDatabase
from storage.db import ECopy, session_scope, utcnow


@dataclasses.dataclass(frozen=True, slots=True)
class Grant:
    """A consent grant as reads need it."""

    id: str
    purpose: str
    doc_types: list[str]


@dataclasses.dataclass(frozen=True, slots=True)
class EcopyView:
    """An e-copy as portals see it (the columns of ``vault.LISTED``, and for one fetched
    e-copy its owner, document, object and replacement)."""

    id: str
    doc_type: str | None
    issuer: str
    issued_at: datetime
    status: str
    valid_until: datetime | None
    fields: dict[str, Any]
    code: str
    updated_at: datetime
    citizen_id: str | None = None
    document_id: str | None = None
    object_key: str | None = None
    superseded_by: str | None = None
    revoked_at: datetime | None = None


_DETAIL = ("citizen_id", "document_id", "object_key", "superseded_by", "revoked_at")
_LISTED_NAMES = tuple(column.key for column in vault.LISTED)


class PortalReads(Protocol):
    async def listing(self, citizen_ref: str, client_id: str) -> tuple[list[Grant], list[Any]]:
        """The client's active grants from the citizen, and the citizen's current e-copies
        of the granted types (none without a grant)."""

    async def one(
        self, citizen_ref: str, client_id: str, ecopy_id: str
    ) -> tuple[list[Grant], EcopyView | None]:
        """The client's active grants from the citizen, and an e-copy by id (whoever
        owns it: the caller checks)."""

    async def record(self, actor: Actor, action: str, **event: Any) -> None:
        """Append the read's audit event, committed before this returns."""


# -- PostgreSQL, async --------------------------------------------------------------------
_GRANTS = (
    "SELECT id, purpose, doc_types FROM consent_grants "
    "WHERE citizen_id = %s AND client_id = %s AND revoked_at IS NULL AND expires_at > %s "
    "ORDER BY created_at DESC, id"
)
_LISTING = (
    f"SELECT {', '.join(_LISTED_NAMES)} FROM ecopies "
    "WHERE citizen_id = %s AND status = ANY(%s) AND superseded_by IS NULL "
    "AND doc_type = ANY(%s) ORDER BY issued_at DESC, id"
)
_ONE = f"SELECT {', '.join(_LISTED_NAMES + _DETAIL)} FROM ecopies WHERE id = %s"


class PgPortalReads:
    """The reads over the API's async PostgreSQL pool."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db

    async def _grants(self, citizen_ref: str, client_id: str) -> list[Grant]:
        rows = await self.db.fetch_all(_GRANTS, (citizen_ref, client_id, utcnow()))
        return [Grant(**row) for row in rows]

    async def listing(self, citizen_ref: str, client_id: str) -> tuple[list[Grant], list[Any]]:
        grants = await self._grants(citizen_ref, client_id)
        types = sorted(consent.granted_types(grants))
        if not types:
            return grants, []
        rows = await self.db.fetch_all(_LISTING, (citizen_ref, list(vault.CURRENT_STATUSES), types))
        return grants, [EcopyView(**row) for row in rows]

    async def one(
        self, citizen_ref: str, client_id: str, ecopy_id: str
    ) -> tuple[list[Grant], EcopyView | None]:
        grants = await self._grants(citizen_ref, client_id)
        if not grants:
            return grants, None
        row = await self.db.fetch_one(_ONE, (ecopy_id,))
        return grants, EcopyView(**row) if row is not None else None

    async def record(self, actor: Actor, action: str, **event: Any) -> None:
        await audit.record_read_async(self.db, actor, action, **event)


# -- any database, sessions in the thread pool --------------------------------------------
def _grant(row: Any) -> Grant:
    return Grant(id=row.id, purpose=row.purpose, doc_types=list(row.doc_types or []))


class SessionPortalReads:
    """The reads through SQLAlchemy sessions (a short transaction each)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _listing(self, citizen_ref: str, client_id: str) -> tuple[list[Grant], list[Any]]:
        with session_scope(self.url) as session:
            grants = [_grant(g) for g in consent.active_grants(session, citizen_ref, client_id)]
            rows = vault.current_listing(session, citizen_ref, consent.granted_types(grants))
            return grants, [EcopyView(**row._asdict()) for row in rows]

    def _one(
        self, citizen_ref: str, client_id: str, ecopy_id: str
    ) -> tuple[list[Grant], EcopyView | None]:
        with session_scope(self.url) as session:
            grants = [_grant(g) for g in consent.active_grants(session, citizen_ref, client_id)]
            if not grants:
                return grants, None
            columns = [*vault.LISTED, *(getattr(ECopy, name) for name in _DETAIL)]
            row = session.execute(select(*columns).where(ECopy.id == ecopy_id)).first()
            return grants, EcopyView(**row._asdict()) if row is not None else None

    def _record(self, actor: Actor, action: str, event: dict[str, Any]) -> None:
        with session_scope(self.url) as session:
            audit.record_read(session, actor, action, **event)

    async def listing(self, citizen_ref: str, client_id: str) -> tuple[list[Grant], list[Any]]:
        return await run_in_threadpool(self._listing, citizen_ref, client_id)

    async def one(
        self, citizen_ref: str, client_id: str, ecopy_id: str
    ) -> tuple[list[Grant], EcopyView | None]:
        return await run_in_threadpool(self._one, citizen_ref, client_id, ecopy_id)

    async def record(self, actor: Actor, action: str, **event: Any) -> None:
        await run_in_threadpool(self._record, actor, action, event)


def portal_reads(url: str, db: AsyncDatabase | None) -> PortalReads:
    """The implementation for a database: async PostgreSQL where there is a pool."""
    return PgPortalReads(db) if db is not None else SessionPortalReads(url)
