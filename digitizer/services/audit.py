"""The audit trail: every read and write of personal data, append-only, hash-chained.

Each event's hash covers its content and the previous event's hash, so editing,
inserting, deleting or reordering events breaks the chain from that point on.
Events carry opaque references (citizen id, document id), never personal ids,
names or keys.

Deleting the *newest* events leaves a shorter chain that is still consistent, so
the head is anchored at intervals (:func:`anchor`): an ``AuditAnchor`` row holds
the head's sequence number and hash with an RFC 3161 timestamp token from the
configured TSA, and a copy of the anchor goes to the object store
(``audit/anchors/{seq}.json``). :func:`verify` recomputes the chain, checks every
anchor (database and object store) against it and reports the first bad event.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import json
import logging
import weakref
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from digitizer.errors import BadInputError
from digitizer.services.keys import Actor
from storage.db import AuditAnchor, AuditEvent, utcnow
from storage.statements import Sql

if TYPE_CHECKING:
    from digitizer.config import Settings
    from storage.asyncdb import AsyncDatabase
    from storage.objects import ObjectStore

log = logging.getLogger(__name__)

#: The hash before the first event.
GENESIS = "0" * 64

#: The id of the HTTP request being served (set by the API's middleware).
request_id_var: ContextVar[str | None] = ContextVar("sohoa_request_id", default=None)

#: Where copies of the anchors go in the object store.
ANCHOR_PREFIX = "audit/anchors/"

#: Rows fetched per round trip while verifying (the log is streamed, never loaded whole).
VERIFY_CHUNK = 1000

#: Problems listed in a report at most (the first one is what matters).
MAX_PROBLEMS = 100

_CHAINED = (
    "seq",
    "at",
    "request_id",
    "actor_id",
    "actor_name",
    "role",
    "office",
    "action",
    "citizen_id",
    "document_id",
    "purpose",
    "detail",
)


#: What format 2 digests (the place, ``seq``, is linked separately).
_CONTENT = _CHAINED[1:]


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        # The same instant gives the same text whatever zone the driver returns it in.
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.isoformat(timespec="microseconds")
    return value


def _canonical(event: Any, names: tuple[str, ...]) -> str:
    body = {name: _value(getattr(event, name)) for name in names}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def content_digest(event: Any) -> str:
    """SHA-256 of the event's canonical JSON without ``seq`` (hash format 2)."""
    return hashlib.sha256(_canonical(event, _CONTENT).encode()).hexdigest()


def link_hash(prev_hash: str, seq: int, digest: str) -> str:
    """Format 2: the previous hash, the event's place and its content digest.

    PostgreSQL computes the same in ``sohoa_audit_append`` (migration 0009).
    """
    return hashlib.sha256(f"{prev_hash}\n{seq}\n{digest}".encode()).hexdigest()


def event_hash(event: Any, prev_hash: str) -> str:
    """The hash an event must carry, in the format it was written with.

    Format 1 (events before migration 0009): SHA-256 over the previous hash and the
    event's canonical JSON (``seq`` included). Format 2: :func:`link_hash`.
    """
    if getattr(event, "hash_version", None) == 1:
        return hashlib.sha256(f"{prev_hash}\n{_canonical(event, _CHAINED)}".encode()).hexdigest()
    return link_hash(prev_hash, int(event.seq), content_digest(event))


def _lock_chain(session: Session) -> None:
    """SQLite: a no-op UPDATE takes the database's write lock now (waiting
    ``busy_timeout``), before the head is read, instead of at the INSERT."""
    session.execute(update(AuditEvent).where(AuditEvent.seq < 0).values(seq=AuditEvent.seq))


_APPEND_ARGS = (*_CONTENT, "digest")


#: One event's append (migration 0009), for SQLAlchemy.
_APPEND = text(
    "SELECT new_seq, new_hash FROM sohoa_audit_append({})".format(
        ", ".join(f"CAST(:{n} AS json)" if n == "detail" else f":{n}" for n in _APPEND_ARGS)
    )
)

#: A batch's append in one statement (migration 0010): one array per column, in order.
_APPEND_MANY = Sql(
    "SELECT new_seq, new_hash FROM sohoa_audit_append_many({})".format(
        ", ".join(f"%({n})s::{'timestamptz' if n == 'at' else 'text'}[]" for n in _APPEND_ARGS)
    )
)


@dataclasses.dataclass(frozen=True)
class Appended:
    """An event as written: its place in the chain and its hash."""

    seq: int
    hash: str
    action: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Content:
    """What an event says (hash format 2's content: :data:`_CONTENT`), before it has a
    place in the chain; cheaper to build than an ORM row where none is stored."""

    at: datetime
    request_id: str | None
    actor_id: str | None
    actor_name: str | None
    role: str | None
    office: str | None
    action: str
    citizen_id: str | None
    document_id: str | None
    purpose: str | None
    detail: dict[str, Any]


def _content(
    actor: Actor | None,
    action: str,
    *,
    citizen_id: str | None = None,
    document_id: str | None = None,
    purpose: str | None = None,
    detail: dict[str, Any] | None = None,
) -> _Content:
    return _Content(
        at=utcnow(),
        request_id=request_id_var.get(),
        actor_id=actor.key_id if actor else None,
        actor_name=actor.name if actor else None,
        role=actor.role if actor else None,
        office=actor.office if actor else None,
        action=action,
        citizen_id=citizen_id,
        document_id=document_id,
        purpose=purpose,
        detail=detail or {},
    )


def _event(actor: Actor | None, action: str, **event: Any) -> AuditEvent:
    content = _content(actor, action, **event)
    return AuditEvent(**{name: getattr(content, name) for name in _CONTENT}, hash_version=2)


def _append_params(event: AuditEvent | _Content) -> dict[str, Any]:
    params = {name: getattr(event, name) for name in _CONTENT}
    params["detail"] = json.dumps(event.detail, ensure_ascii=False)
    params["digest"] = content_digest(event)
    return params


def _append(connection: Any, event: AuditEvent) -> Appended:
    """PostgreSQL: lock, link and insert in one statement of the server's."""
    seq, digest = connection.execute(_APPEND, _append_params(event)).one()
    return Appended(int(seq), str(digest), event.action)


def record(
    session: Session,
    actor: Actor | None,
    action: str,
    *,
    citizen_id: str | None = None,
    document_id: str | None = None,
    purpose: str | None = None,
    detail: dict[str, Any] | None = None,
) -> Appended:
    """Append an event in the caller's transaction (it lands or vanishes with the change).

    ``action`` is a dotted verb such as ``document.read`` or ``consent.create``;
    ``detail`` holds ids and statuses only, never personal data. Call it last in a
    transaction: the chain stays locked until the transaction ends. Reads that change
    nothing use :func:`record_read` instead.
    """
    event = _event(
        actor,
        action,
        citizen_id=citizen_id,
        document_id=document_id,
        purpose=purpose,
        detail=detail,
    )
    if session.get_bind().dialect.name == "postgresql":
        return _append(session, event)
    _lock_chain(session)
    head = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    event.seq, event.prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS)
    event.hash = event_hash(event, event.prev_hash)
    session.add(event)
    session.flush()
    return Appended(event.seq, event.hash, action)


def record_read(session: Session, actor: Actor | None, action: str, **event: Any) -> Appended:
    """Append the event of a read, committed before this returns (so before the answer);
    ``event`` as for :func:`record`.

    PostgreSQL: one autocommit statement on a connection of the audit pool (the chain is
    locked only inside the server, for microseconds, instead of until the request's own
    transaction ends). An event whose request then fails still stands: a read recorded
    that did not happen is harmless, the reverse is not. SQLite (embedded, one writer):
    in the caller's transaction, as :func:`record`.
    """
    if session.get_bind().dialect.name != "postgresql":
        return record(session, actor, action, **event)
    with audit_engine(session.get_bind().engine.url).connect() as connection:
        return _append(connection, _event(actor, action, **event))


async def record_read_async(
    db: AsyncDatabase, actor: Actor | None, action: str, **event: Any
) -> Appended:
    """:func:`record_read` over the API's async pool (PostgreSQL), committed before it
    returns; the events of concurrent reads of one process share a transaction
    (:class:`ReadAuditBatcher`)."""
    batcher = _batchers.get(db)
    if batcher is None:
        batcher = _batchers[db] = ReadAuditBatcher(db)
    return await batcher.append(_content(actor, action, **event))


@dataclasses.dataclass
class _LoopQueue:
    """Events waiting to be written, and the lock of whoever writes them (one event loop)."""

    pending: list[tuple[dict[str, Any], asyncio.Future[Appended]]] = dataclasses.field(
        default_factory=list
    )
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)


class ReadAuditBatcher:
    """Group commit of read events: one transaction (one chain lock, one WAL flush) for
    the events that arrived while the previous batch was being written.

    Measured with ``bench.vault`` (16 portal clients, 2 API processes, 2 cores): one
    autocommit append per read cost PostgreSQL 2.6-3.9 ms of CPU per read under load
    (0.2 ms alone), 16 backends queueing on the chain's lock and flushing the WAL one by
    one; without auditing the same reads cost it 0.35 ms. (Those runs had the head read's
    sequential scans that migration 0014 removed. Measured again after it, appending
    alone on one database: 16 connections appending one event each cost 470 us of
    backend CPU per event, at most 1,778 events/s; two connections appending batches of
    four cost 85 us per event, 9,392 events/s.) Each caller still returns only
    once its own event is committed. Whoever holds the lock writes everything pending
    (its own event, or others' that arrived meanwhile); a failed batch fails its callers;
    a cancelled writer leaves its batch pending for the next one (written twice at worst,
    which is harmless: a read recorded that did not happen).
    """

    def __init__(self, db: AsyncDatabase, max_batch: int = 64) -> None:
        self.db = db
        self.max_batch = max_batch
        # Per event loop (Starlette's TestClient serves from several loops).
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopQueue] = (
            weakref.WeakKeyDictionary()
        )

    async def append(self, event: _Content) -> Appended:
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _LoopQueue()
        pending, lock = queue.pending, queue.lock
        mine: asyncio.Future[Appended] = loop.create_future()
        pending.append((_append_params(event), mine))
        async with lock:
            if not mine.done():
                batch = pending[: self.max_batch]
                del pending[: self.max_batch]
                try:
                    written = await self.db.run(
                        lambda conn: _append_many(conn, [params for params, _ in batch])
                    )
                except Exception as exc:
                    for _, waiting in batch:
                        waiting.set_exception(exc)
                except BaseException:
                    pending[:0] = batch
                    raise
                else:
                    for (params, waiting), (seq, digest) in zip(batch, written, strict=True):
                        waiting.set_result(Appended(seq, digest, params["action"]))
        return mine.result()


_batchers: weakref.WeakKeyDictionary[AsyncDatabase, ReadAuditBatcher] = weakref.WeakKeyDictionary()


async def _append_many(conn: Any, batch: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """Append events in order with one statement (one lock, one head lookup, one INSERT)."""
    columns = [[params[name] for params in batch] for name in _APPEND_MANY.names]
    # One statement outside any transaction block: its own transaction, no BEGIN / COMMIT
    # round trips.
    rows = await conn.fetch(_APPEND_MANY.text, *columns)
    return [(int(row["new_seq"]), str(row["new_hash"])) for row in rows]


def audit_engine(url: Any) -> Engine:
    """The audit pool of a database (autocommit; cached per URL and process)."""
    key = url.render_as_string(hide_password=False) if hasattr(url, "render_as_string") else url
    return _audit_engine(str(key))


@lru_cache(maxsize=8)
def _audit_engine(url: str) -> Engine:
    from storage.db import new_engine

    # Its own small pool: a request holding its session's connection never waits for
    # a connection of the pool it holds one of.
    return new_engine(url, pool_size=4, max_overflow=4, isolation_level="AUTOCOMMIT")


# -- queries ------------------------------------------------------------------------------
def _utc(moment: datetime) -> datetime:
    # Stored times are UTC; SQLite compares them as text, so the bound value must be UTC too.
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def search(
    session: Session,
    *,
    citizen_id: str | None = None,
    document_id: str | None = None,
    actor_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[AuditEvent], str | None]:
    """Events matching every given filter, newest first; and the cursor of the next page.

    ``since`` is inclusive, ``until`` exclusive. The cursor is opaque to callers.

    Raises:
        BadInputError: a malformed cursor.
    """
    query = select(AuditEvent)
    if cursor is not None:
        if not cursor.isdigit() or len(cursor) > 18:
            raise BadInputError("the cursor is not one this API returned")
        query = query.where(AuditEvent.seq < int(cursor))
    for column, value in (
        (AuditEvent.citizen_id, citizen_id),
        (AuditEvent.document_id, document_id),
        (AuditEvent.actor_id, actor_id),
        (AuditEvent.action, action),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(AuditEvent.at >= _utc(since))
    if until is not None:
        query = query.where(AuditEvent.at < _utc(until))
    rows = list(session.scalars(query.order_by(AuditEvent.seq.desc()).limit(limit + 1)))
    following = str(rows[limit - 1].seq) if len(rows) > limit else None
    return rows[:limit], following


# -- anchors ------------------------------------------------------------------------------
def anchor_key(seq: int) -> str:
    """Object-store key of the anchor copy for head ``seq``."""
    return f"{ANCHOR_PREFIX}{seq:012d}.json"


def anchor_message(seq: int, head_hash: str) -> bytes:
    """What the TSA timestamps: the head's sequence number and hash."""
    return f"sohoa-audit-anchor:{seq}:{head_hash}".encode()


def head(session: Session) -> tuple[int, str] | None:
    """The newest event's (seq, hash), or None for an empty log."""
    row = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return (int(row[0]), str(row[1])) if row else None


@dataclasses.dataclass(frozen=True)
class AnchorResult:
    """What :func:`anchor` did."""

    seq: int
    head_hash: str
    timestamped: bool
    object_key: str


def anchor(
    session: Session,
    settings: Settings,
    store: ObjectStore,
    *,
    min_interval_s: float | None = None,
) -> AnchorResult | None:
    """Anchor the current head: TSA token (when a TSA is configured), object-store copy, row.

    Returns None when there is nothing to anchor: an empty log, a head already
    anchored, or (with ``min_interval_s``) an anchor younger than that. The copy goes
    to the object store before the row is written, so every anchor row has its copy.

    Raises:
        signing.errors.TimestampUnavailableError: the TSA did not answer (nothing written).
        storage.errors.ObjectStoreUnavailableError: the copy could not be written
            (nothing written).
    """
    current = head(session)
    if current is None:
        return None
    seq, head_hash = current
    last = session.scalars(
        select(AuditAnchor).order_by(AuditAnchor.seq.desc(), AuditAnchor.id.desc()).limit(1)
    ).first()
    if last is not None and last.seq >= seq:
        return None
    if (
        min_interval_s
        and last is not None
        and utcnow() - last.created_at < timedelta(seconds=min_interval_s)
    ):
        return None
    token: bytes | None = None
    tsa_url = settings.signing.tsa_url
    if tsa_url:
        from signing.signer import TimestampConfig
        from signing.timestamp import timestamp_message

        token = timestamp_message(TimestampConfig(tsa_url), anchor_message(seq, head_hash))
    created = utcnow()
    copy = {
        "version": 1,
        "seq": seq,
        "head_hash": head_hash,
        "created_at": created.isoformat(timespec="microseconds"),
        "token": base64.b64encode(token).decode() if token else None,
    }
    key = anchor_key(seq)
    store.put_bytes(key, json.dumps(copy, indent=1).encode(), "application/json")
    session.add(AuditAnchor(seq=seq, head_hash=head_hash, token=token, created_at=created))
    session.flush()
    log.info("audit chain anchored at event %d (timestamped: %s)", seq, token is not None)
    return AnchorResult(seq=seq, head_hash=head_hash, timestamped=token is not None, object_key=key)


def anchor_now(settings: Settings, *, min_interval_s: float | None = None) -> AnchorResult | None:
    """:func:`anchor` in a transaction of its own, with the configured object store."""
    from digitizer.services.wiring import object_store
    from storage.db import session_scope

    store = object_store(settings)
    store.ensure_bucket()
    with session_scope(settings.db.url) as session:
        return anchor(session, settings, store, min_interval_s=min_interval_s)


# -- verification -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Problem:
    """Something wrong at one event of the chain."""

    seq: int
    problem: str

    def line(self) -> str:
        return f"event {self.seq}: {self.problem}"


@dataclasses.dataclass
class _Anchor:
    source: str  # "database" or "object store"
    name: str  # anchor row id or object key
    seq: int
    head_hash: str
    token: bytes | None
    created_at: str | None


@dataclasses.dataclass
class VerifyReport:
    """The outcome of :func:`verify`."""

    events: int = 0
    first_seq: int | None = None
    head_seq: int | None = None
    head_hash: str | None = None
    db_anchors: int = 0
    store_anchors: int = 0
    timestamped_anchors: int = 0
    tsa_signatures_checked: bool = False
    newest_anchor_seq: int | None = None
    newest_anchor_time: str | None = None
    problems: list[Problem] = dataclasses.field(default_factory=list)
    more_problems: int = 0
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return min(self.problems, key=lambda p: p.seq) if self.problems else None

    def add(self, seq: int, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(seq, problem))
        else:
            self.more_problems += 1

    def summary(self) -> str:
        """One line: the first bad event, or what was checked."""
        first = self.first_problem
        if first is not None:
            return f"audit trail broken at {first.line()}"
        anchors = f"{self.db_anchors} anchors ({self.timestamped_anchors} timestamped)"
        return (
            f"audit trail intact: {self.events} events up to {self.head_seq or 0}, "
            f"{anchors}, {self.store_anchors} anchor copies in the object store"
        )

    def to_json(self) -> dict[str, Any]:
        first = self.first_problem
        return {
            "ok": self.ok,
            "events": self.events,
            "first_seq": self.first_seq,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "anchors": {
                "database": self.db_anchors,
                "object_store": self.store_anchors,
                "timestamped": self.timestamped_anchors,
                "tsa_signatures_checked": self.tsa_signatures_checked,
                "newest_seq": self.newest_anchor_seq,
                "newest_at": self.newest_anchor_time,
            },
            "first_problem": dataclasses.asdict(first) if first else None,
            "problems": [dataclasses.asdict(p) for p in sorted(self.problems, key=lambda p: p.seq)],
            "more_problems": self.more_problems,
            "warnings": self.warnings,
        }


def _db_anchors(session: Session) -> list[_Anchor]:
    return [
        _Anchor(
            source="database",
            name=f"anchor {row.id}",
            seq=int(row.seq),
            head_hash=row.head_hash,
            token=row.token,
            created_at=_value(row.created_at),
        )
        for row in session.scalars(select(AuditAnchor).order_by(AuditAnchor.seq, AuditAnchor.id))
    ]


def _store_anchors(store: ObjectStore, report: VerifyReport) -> list[_Anchor]:
    from storage.errors import ObjectNotFoundError

    out: list[_Anchor] = []
    try:
        keys = sorted(store.list_keys(ANCHOR_PREFIX))
    except ObjectNotFoundError:
        report.warnings.append("the object store's bucket does not exist: no anchor copies")
        return out
    for key in keys:
        name = key.rsplit("/", 1)[-1]
        try:
            body = json.loads(store.get_bytes(key))
            seq, head_hash = int(body["seq"]), str(body["head_hash"])
            token = base64.b64decode(body["token"], validate=True) if body.get("token") else None
        except (ValueError, KeyError, TypeError, binascii.Error):
            stem = name.removesuffix(".json")
            report.add(int(stem) if stem.isdigit() else 0, f"the anchor copy {key} is unreadable")
            continue
        if key != anchor_key(seq):
            report.add(seq, f"the anchor copy {key} names event {seq} (moved or forged)")
        out.append(_Anchor("object store", key, seq, head_hash, token, body.get("created_at")))
    return out


def _check_tokens(anchors: list[_Anchor], settings: Settings | None, report: VerifyReport) -> None:
    stamped = [a for a in anchors if a.token]
    if not stamped:
        return
    from signing.timestamp import check_tokens

    config = None
    if settings is not None and settings.signing.trust_store_dir is not None:
        from digitizer.services.verify import validation_config

        config = validation_config(settings)
        report.tsa_signatures_checked = True
    unique: dict[tuple[bytes, int, str], list[_Anchor]] = {}
    for a in stamped:
        assert a.token is not None
        unique.setdefault((a.token, a.seq, a.head_hash), []).append(a)
    keys = list(unique)
    results = check_tokens(
        [(token, anchor_message(seq, h)) for token, seq, h in keys], trust=config
    )
    for key, result in zip(keys, results, strict=True):
        if not result.ok:
            for a in unique[key]:
                report.add(a.seq, f"{a.source} {a.name}: {result.problem}")


def verify(
    session: Session,
    settings: Settings | None = None,
    store: ObjectStore | None = None,
    *,
    chunk: int = VERIFY_CHUNK,
) -> VerifyReport:
    """Recompute the chain and check it against every anchor.

    Detects an edited event (its hash no longer matches its content), a deleted one
    (a gap in the sequence), an inserted or moved one (a broken link to the previous
    hash), and deleted newest events (an anchor, in the database or the object store,
    beyond the head, or one whose hash differs from the event at its seq). Timestamp
    tokens must cover their anchor; with a trust store configured the TSA's signature
    must validate too. Anchors are read before the events, so events appended while
    verifying never look like a problem.
    """
    report = VerifyReport()
    anchors = _db_anchors(session)
    report.db_anchors = len(anchors)
    if store is not None:
        copies = _store_anchors(store, report)
        report.store_anchors = len(copies)
        db_seqs = {a.seq for a in anchors}
        for missing in sorted({c.seq for c in copies} - db_seqs):
            report.warnings.append(f"anchor copy of event {missing} has no database row")
        store_seqs = {c.seq for c in copies}
        for missing in sorted(db_seqs - store_seqs):
            report.warnings.append(f"anchor of event {missing} has no copy in the object store")
        anchors += copies
    else:
        report.warnings.append("the object store's anchor copies were not checked")
    report.timestamped_anchors = len({(a.seq, a.token) for a in anchors if a.token})
    if anchors:
        newest = max(anchors, key=lambda a: a.seq)
        report.newest_anchor_seq, report.newest_anchor_time = newest.seq, newest.created_at
    _check_tokens(anchors, settings, report)
    if not any(a.token for a in anchors) and anchors:
        report.warnings.append("no anchor is timestamped (no TSA configured)")

    pending: dict[int, list[_Anchor]] = {}
    for a in anchors:
        pending.setdefault(a.seq, []).append(a)
    expected, prev = 1, GENESIS
    events = session.scalars(
        select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=chunk)
    )
    for event in events:
        seq = int(event.seq)
        if report.first_seq is None:
            report.first_seq = seq
        if seq != expected:
            gap = "deleted" if seq == expected + 1 else f"deleted with events up to {seq - 1}"
            jump = f"jumps from event {expected - 1} to" if expected > 1 else "starts at"
            report.add(expected, f"missing: {gap} (the log {jump} event {seq})")
        elif event.prev_hash != prev:
            before = f"event {seq - 1}" if seq > 1 else "the start of the chain"
            report.add(
                seq,
                f"does not link to {before} (an event was inserted, deleted or moved here, "
                "or the previous one rewritten)",
            )
        if event_hash(event, event.prev_hash) != event.hash:
            report.add(seq, f"edited: its content does not match its hash ({event.action})")
        for a in pending.pop(seq, []):
            if a.head_hash != event.hash:
                report.add(
                    seq, f"its hash differs from the {a.source} {a.name} made at {a.created_at}"
                )
        report.events += 1
        report.head_seq, report.head_hash = seq, event.hash
        expected, prev = seq + 1, event.hash
        session.expunge(event)
    head_seq = report.head_seq or 0
    for seq in sorted(pending):
        where = ", ".join(sorted({f"{a.source} {a.name}" for a in pending[seq]}))
        if seq > head_seq:
            report.add(
                head_seq + 1,
                f"missing: the log ends at event {head_seq} but {where} covers event {seq} "
                "(the newest events were deleted)",
            )
        else:
            report.add(seq, f"missing: anchored by {where} but not in the log")
    return report


def verify_now(settings: Settings, *, with_store: bool = True) -> VerifyReport:
    """:func:`verify` against the configured database and object store."""
    from digitizer.services.wiring import object_store
    from storage.db import session_scope

    with session_scope(settings.db.url) as session:
        store = object_store(settings) if with_store else None
        return verify(session, settings, store)
