"""What a portal reads of the vault, and the audit event of each read.

The portal's list and fetch calls are the vault's hottest path (every portal polls every
citizen it serves). Two implementations of one interface:

* :class:`PgPortalReads`: PostgreSQL over the API's async pool, on the event loop (no
  thread hop, no ORM objects), one statement per read (grants and e-copies together),
  the audit event group-committed with other reads' (``audit.ReadAuditBatcher``);
* :class:`SessionPortalReads`: any database through SQLAlchemy sessions in the thread pool
  (SQLite, the embedded stack), with the same functions the rest of the service uses
  (``consent.active_grants``, ``vault.current_listing``, ``audit.record_read``).

Each read authenticates the client's key itself: on PostgreSQL the key's row comes in the
same statement as the data (one round trip per read instead of two; the grants are read
only for a key whose digest matches and that is neither revoked nor expired, and the row
is checked again in Python by ``keys.admit_async``, as every other key is). The caller
checks the role before it answers.

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
from digitizer.services.keys import (
    KEY_COLUMNS,
    Actor,
    admit_async,
    authenticate,
    key_digest,
    key_prefix,
)
from storage.asyncdb import AsyncDatabase
from storage.db import ECopy, session_scope, utcnow
from storage.statements import Sql


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
    async def listing(
        self, key: str | None, citizen_ref: str
    ) -> tuple[Actor, list[Grant], list[Any]]:
        """The key's actor (NotAuthenticatedError otherwise), its active grants from the
        citizen, and the citizen's current e-copies of the granted types (none without a
        grant)."""

    async def one(
        self, key: str | None, citizen_ref: str, ecopy_id: str
    ) -> tuple[Actor, list[Grant], EcopyView | None]:
        """The key's actor (NotAuthenticatedError otherwise), its active grants from the
        citizen, and an e-copy by id (whoever owns it: the caller checks)."""

    async def record(self, actor: Actor, action: str, **event: Any) -> None:
        """Append the read's audit event, committed before this returns."""


# -- PostgreSQL, async --------------------------------------------------------------------
# Each read is one statement (one round trip, one snapshot): the key's row, the client's
# active grants from the citizen (as JSON text, parsed once) on every row, joined to what
# they open. ``(SELECT 1) LEFT JOIN`` makes one row even for an unknown key.
# The statuses are the code's own constants (no input): literals, not an array parameter
# to encode on every call.
_CURRENT = ", ".join(f"'{status}'" for status in vault.CURRENT_STATUSES)
_KEY_SELECT = ", ".join(f"k.{name} AS key_{name}" for name in KEY_COLUMNS)
_GRANTS_CTE = (
    f"WITH k AS MATERIALIZED (SELECT {', '.join(KEY_COLUMNS)} FROM api_keys "
    "WHERE prefix = %(prefix)s), "
    "g AS MATERIALIZED (SELECT id, purpose, doc_types, created_at FROM consent_grants "
    "WHERE citizen_id = %(citizen)s AND client_id = (SELECT id FROM k WHERE key_hash = "
    "%(digest)s AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > %(now)s)) "
    "AND revoked_at IS NULL AND expires_at > %(now)s) "
    f"SELECT {_KEY_SELECT}, (SELECT json_agg(json_build_object('id', g.id, 'purpose', "
    "g.purpose, 'doc_types', g.doc_types) ORDER BY g.created_at DESC, g.id)::text FROM g) "
    "AS grants, e.* FROM (SELECT 1) AS one LEFT JOIN k ON true LEFT JOIN LATERAL "
)
_LISTING = Sql(
    _GRANTS_CTE + f"(SELECT {', '.join(_LISTED_NAMES)} FROM ecopies "
    f"WHERE citizen_id = %(citizen)s AND status IN ({_CURRENT}) AND superseded_by IS NULL "
    "AND doc_type IN (SELECT json_array_elements_text(g.doc_types) FROM g)) AS e ON true "
    "ORDER BY e.issued_at DESC, e.id"
)
_ONE = Sql(
    _GRANTS_CTE + f"(SELECT {', '.join(_LISTED_NAMES + _DETAIL)} FROM ecopies "
    "WHERE id = %(ecopy)s AND EXISTS (SELECT 1 FROM g)) AS e ON true"
)


def _split(
    rows: list[dict[str, Any]], names: tuple[str, ...]
) -> tuple[dict[str, Any] | None, list[Grant], list[EcopyView]]:
    """The key's row, the grants and the e-copies (columns ``names``) out of the rows of
    :data:`_LISTING` or :data:`_ONE`."""
    first = rows[0]
    key_row = (
        {name: first[f"key_{name}"] for name in KEY_COLUMNS}
        if first["key_id"] is not None
        else None
    )
    grants = [Grant(**g) for g in json.loads(first["grants"])] if first["grants"] else []
    views = [EcopyView(**{n: row[n] for n in names}) for row in rows if row["id"] is not None]
    return key_row, grants, views


class PgPortalReads:
    """The reads over the API's async PostgreSQL pool."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db

    async def _read(
        self, sql: Sql, names: tuple[str, ...], key: str | None, params: dict[str, Any]
    ) -> tuple[Actor, list[Grant], list[EcopyView]]:
        """Run :data:`_LISTING` or :data:`_ONE` for ``key``; the key is admitted from the
        row the statement returned."""
        prefix = key_prefix(key)
        assert key is not None
        params.update(prefix=prefix, digest=key_digest(key), now=utcnow())
        key_row, grants, views = _split(await self.db.fetch_all(sql, params), names)
        return await admit_async(self.db, key, key_row), grants, views

    async def listing(
        self, key: str | None, citizen_ref: str
    ) -> tuple[Actor, list[Grant], list[Any]]:
        return await self._read(_LISTING, _LISTED_NAMES, key, {"citizen": citizen_ref})

    async def one(
        self, key: str | None, citizen_ref: str, ecopy_id: str
    ) -> tuple[Actor, list[Grant], EcopyView | None]:
        params = {"citizen": citizen_ref, "ecopy": ecopy_id}
        actor, grants, views = await self._read(_ONE, _LISTED_NAMES + _DETAIL, key, params)
        return actor, grants, views[0] if views else None

    async def record(self, actor: Actor, action: str, **event: Any) -> None:
        await audit.record_read_async(self.db, actor, action, **event)


# -- any database, sessions in the thread pool --------------------------------------------
def _grant(row: Any) -> Grant:
    return Grant(id=row.id, purpose=row.purpose, doc_types=list(row.doc_types or []))


class SessionPortalReads:
    """The reads through SQLAlchemy sessions (a short transaction each)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _listing(self, key: str | None, citizen_ref: str) -> tuple[Actor, list[Grant], list[Any]]:
        with session_scope(self.url) as session:
            actor = authenticate(session, key)
            grants = [_grant(g) for g in consent.active_grants(session, citizen_ref, actor.key_id)]
            rows = vault.current_listing(session, citizen_ref, consent.granted_types(grants))
            return actor, grants, [EcopyView(**row._asdict()) for row in rows]

    def _one(
        self, key: str | None, citizen_ref: str, ecopy_id: str
    ) -> tuple[Actor, list[Grant], EcopyView | None]:
        with session_scope(self.url) as session:
            actor = authenticate(session, key)
            grants = [_grant(g) for g in consent.active_grants(session, citizen_ref, actor.key_id)]
            if not grants:
                return actor, grants, None
            columns = [*vault.LISTED, *(getattr(ECopy, name) for name in _DETAIL)]
            row = session.execute(select(*columns).where(ECopy.id == ecopy_id)).first()
            return actor, grants, EcopyView(**row._asdict()) if row is not None else None

    def _record(self, actor: Actor, action: str, event: dict[str, Any]) -> None:
        with session_scope(self.url) as session:
            audit.record_read(session, actor, action, **event)

    async def listing(
        self, key: str | None, citizen_ref: str
    ) -> tuple[Actor, list[Grant], list[Any]]:
        return await run_in_threadpool(self._listing, key, citizen_ref)

    async def one(
        self, key: str | None, citizen_ref: str, ecopy_id: str
    ) -> tuple[Actor, list[Grant], EcopyView | None]:
        return await run_in_threadpool(self._one, key, citizen_ref, ecopy_id)

    async def record(self, actor: Actor, action: str, **event: Any) -> None:
        await run_in_threadpool(self._record, actor, action, event)


def portal_reads(url: str, db: AsyncDatabase | None) -> PortalReads:
    """The implementation for a database: async PostgreSQL where there is a pool."""
    return PgPortalReads(db) if db is not None else SessionPortalReads(url)
