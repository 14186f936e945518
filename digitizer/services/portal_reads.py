"""What a portal reads of the vault, and the audit event of each read.

The portal's list and fetch calls are the vault's hottest path (every portal polls every
citizen it serves). Two implementations of one interface:

* :class:`PgPortalReads`: PostgreSQL over the API's async pool, on the event loop (no
  thread hop, no ORM objects), one statement per read (grants and e-copies together),
  the audit event group-committed with other reads' (``audit.ReadAuditBatcher``);
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
import json
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
# Each read is one statement (one round trip, one snapshot): the client's active grants
# from the citizen (as JSON text, parsed once) on every row, joined to what they open.
_GRANTS_CTE = (
    "WITH g AS MATERIALIZED (SELECT id, purpose, doc_types, created_at FROM consent_grants "
    "WHERE citizen_id = %(citizen)s AND client_id = %(client)s AND revoked_at IS NULL "
    "AND expires_at > %(now)s) "
    "SELECT (SELECT json_agg(json_build_object('id', g.id, 'purpose', g.purpose, "
    "'doc_types', g.doc_types) ORDER BY g.created_at DESC, g.id)::text FROM g) AS grants, e.* "
    "FROM (SELECT 1) AS one LEFT JOIN LATERAL "
)
_LISTING = (
    _GRANTS_CTE + f"(SELECT {', '.join(_LISTED_NAMES)} FROM ecopies "
    "WHERE citizen_id = %(citizen)s AND status = ANY(%(statuses)s) AND superseded_by IS NULL "
    "AND doc_type IN (SELECT json_array_elements_text(g.doc_types) FROM g)) AS e ON true "
    "ORDER BY e.issued_at DESC, e.id"
)
_ONE = (
    _GRANTS_CTE + f"(SELECT {', '.join(_LISTED_NAMES + _DETAIL)} FROM ecopies "
    "WHERE id = %(ecopy)s AND EXISTS (SELECT 1 FROM g)) AS e ON true"
)


def _split(rows: list[dict[str, Any]]) -> tuple[list[Grant], list[EcopyView]]:
    """Grants and e-copies out of the rows of :data:`_LISTING` or :data:`_ONE`."""
    grants_json = rows[0]["grants"] if rows else None
    grants = [Grant(**g) for g in json.loads(grants_json)] if grants_json else []
    views = []
    for row in rows:
        if row["id"] is not None:
            del row["grants"]
            views.append(EcopyView(**row))
    return grants, views


class PgPortalReads:
    """The reads over the API's async PostgreSQL pool."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db

    async def listing(self, citizen_ref: str, client_id: str) -> tuple[list[Grant], list[Any]]:
        params = {
            "citizen": citizen_ref,
            "client": client_id,
            "now": utcnow(),
            "statuses": list(vault.CURRENT_STATUSES),
        }
        return _split(await self.db.fetch_all(_LISTING, params))  # no grant, no rows

    async def one(
        self, citizen_ref: str, client_id: str, ecopy_id: str
    ) -> tuple[list[Grant], EcopyView | None]:
        params = {"citizen": citizen_ref, "client": client_id, "now": utcnow(), "ecopy": ecopy_id}
        grants, views = _split(await self.db.fetch_all(_ONE, params))  # no grant, no row
        return grants, views[0] if views else None

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
