"""The metadata database: SQLAlchemy 2 models, engine and sessions.

PostgreSQL in deployments and CI; an SQLite file is the embedded default. The
schema is owned by Alembic (``digitizer/migrations``); ``create_all`` is never
used outside throwaway tests of the models themselves.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


def iso_date(value: Any) -> date | None:
    """A ``YYYY-MM-DD`` field value as a date (None when it is not one)."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def utcnow() -> datetime:
    """Timezone-aware now; every stored time is UTC."""
    return datetime.now(UTC)


def new_id() -> str:
    """A random, stable, URL-safe identifier."""
    return uuid.uuid4().hex


class DocumentState(enum.StrEnum):
    """The document state machine of DESIGN.md."""

    UPLOADED = "uploaded"
    QUEUED = "queued"
    PROCESSING = "processing"
    FAILED = "failed"
    NEEDS_REVIEW = "needs_review"
    READY = "ready"
    APPROVED = "approved"
    ISSUED = "issued"
    SUPERSEDED = "superseded"
    REVOKED = "revoked"


#: States at which ``sohoa digitize`` stops waiting.
SETTLED_STATES = frozenset(
    {
        DocumentState.FAILED,
        DocumentState.NEEDS_REVIEW,
        DocumentState.READY,
        DocumentState.APPROVED,
        DocumentState.ISSUED,
        DocumentState.SUPERSEDED,
        DocumentState.REVOKED,
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """DateTime that always comes back timezone-aware in UTC (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base of all tables."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Citizen(Base):
    """A citizen, known by an opaque reference; the personal id is encrypted."""

    __tablename__ = "citizens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    pid_hash: Mapped[str] = mapped_column(String(64), unique=True)
    pid_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Batch(Base):
    """A group of uploads whose progress a clerk watches."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str | None] = mapped_column(String(200))
    citizen_id: Mapped[str | None] = mapped_column(ForeignKey("citizens.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Document(Base):
    """One uploaded file (identified by the SHA-256 of its bytes) and its processing."""

    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    #: Unique per office (``ux_documents_sha256_office``), not globally: the same bytes
    #: uploaded by two offices are two documents, each seen only by its own office.
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(20), default=DocumentState.UPLOADED.value)
    page_count: Mapped[int | None] = mapped_column(Integer)
    citizen_id: Mapped[str | None] = mapped_column(ForeignKey("citizens.id"))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    has_signatures: Mapped[bool] = mapped_column(default=False)
    ocr_confidence: Mapped[float | None] = mapped_column(Float)
    results: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    #: Written every few seconds while a worker processes the document; a stale
    #: heartbeat means the worker died and the sweeper takes the work back.
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    #: Why earlier attempts failed: [{"attempt": n, "at": iso time, "reason": text}].
    failures: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: Text fingerprint for near-duplicate detection (MinHash + numbers).
    fingerprint: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Another document this one looks like a second scan of (clerk to decide).
    duplicate_of: Mapped[str | None] = mapped_column(ForeignKey("documents.id"))
    #: The office of the clerk who uploaded it (staff see only their office's documents).
    office: Mapped[str | None] = mapped_column(String(100))
    uploaded_by: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"))
    #: Document type and number, copied out of ``results`` for queries and search.
    doc_type: Mapped[str | None] = mapped_column(String(50))
    doc_number: Mapped[str | None] = mapped_column(String(100))
    #: The paper's own issue date (its ``issue_date`` field, as reviewed), for search.
    issued_on: Mapped[date | None] = mapped_column(Date)
    #: Version of the classification model that proposed the type and fields.
    model_version: Mapped[str | None] = mapped_column(String(64))
    reviewed_by: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column()
    #: Recognised text (all pages) for clerks' full-text search.
    search_text: Mapped[str | None] = mapped_column(Text)

    def copy_out(self, doc_type: str | None, values: Mapping[str, Any]) -> None:
        """Set the columns queries and search use from the document's effective type and
        field values (as reviewed, corrected or extracted): type, number, issue date."""
        self.doc_type = doc_type
        number = values.get("document_number")
        self.doc_number = str(number)[:100] if number else None
        self.issued_on = iso_date(values.get("issue_date"))

    __table_args__ = (
        Index("ix_documents_state", "state"),
        Index("ix_documents_citizen", "citizen_id"),
        Index("ix_documents_office_state", "office", "state"),
        Index("ix_documents_type_number", "doc_type", "doc_number"),
        Index("ix_documents_office_issued", "office", "issued_on"),
        # coalesce: documents without an office (one-office deployments, the CLI)
        # deduplicate among themselves too (NULLs are distinct in a plain unique index).
        Index(
            "ux_documents_sha256_office",
            "sha256",
            sql_text("coalesce(office, '')"),
            unique=True,
        ),
        # Clerks' accent-insensitive full-text search (migration 0007, PostgreSQL only:
        # SQLite searches with LIKE and has no such index; see digitizer.services.search).
        Index(
            "ix_documents_search",
            sql_text("sohoa_search_vector(search_text)"),
            postgresql_using="gin",
        ).ddl_if(dialect="postgresql"),
    )


class ReviewLabel(Base):
    """A clerk's reviewed answer for a document: labelled data for ``sohoa train``."""

    __tablename__ = "review_labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    doc_type: Mapped[str] = mapped_column(String(50))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The recognised text the label applies to (what the model learns from).
    text: Mapped[str] = mapped_column(Text, default="")
    #: What the pipeline had proposed, and with which model version.
    proposed: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    model_version: Mapped[str | None] = mapped_column(String(64))
    #: True when the clerk changed the type or a field value.
    corrected: Mapped[bool] = mapped_column(default=False)
    labelled_by: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BatchItem(Base):
    """Membership of a document in a batch (one document may be in several batches)."""

    __tablename__ = "batch_items"

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(Integer)


class ECopyStatus(enum.StrEnum):
    """Status of an issued e-copy, shown by the public QR check."""

    VALID = "valid"
    SUPERSEDED = "superseded"
    REVOKED = "revoked"
    #: Never stored: shown instead of ``valid`` once ``valid_until`` has passed.
    EXPIRED = "expired"


def shown_status(status: str, valid_until: datetime | None, now: datetime | None = None) -> str:
    """The status to show: ``expired`` for a valid e-copy whose validity has ended."""
    if status == ECopyStatus.VALID and valid_until is not None:
        until = valid_until if valid_until.tzinfo else valid_until.replace(tzinfo=UTC)
        if until <= (now or utcnow()):
            return ECopyStatus.EXPIRED.value
    return status


#: E-copies whose expiry may still have to be announced (the partial index's rows).
_EXPIRY_DUE = "expiry_notified_at IS NULL AND valid_until IS NOT NULL"


class ECopy(Base):
    """A signed e-copy issued by an office for a document (a new object; the scan stays)."""

    __tablename__ = "ecopies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"))
    #: Random verification code printed as a QR code on the stamp (>= 128 bits).
    code: Mapped[str] = mapped_column(String(64), unique=True)
    office_code: Mapped[str] = mapped_column(String(100))
    issuer: Mapped[str] = mapped_column(String(300))
    doc_type: Mapped[str | None] = mapped_column(String(50))
    object_key: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20), default=ECopyStatus.VALID.value)
    approved_by: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: When a document timestamp was last added (B-LTA renewal); the object then moves
    #: to a new key and earlier versions stay stored.
    renewed_at: Mapped[datetime | None] = mapped_column()
    #: SHA-256 of earlier versions of this e-copy (before renewals), so that a copy
    #: saved by someone before a renewal is still recognised as issued here.
    previous_sha256: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: The citizen whose vault holds it (None: not filed to a citizen).
    citizen_id: Mapped[str | None] = mapped_column(ForeignKey("citizens.id"))
    #: Reviewed fields at issue time (values only; personal id never stored here).
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    doc_number: Mapped[str | None] = mapped_column(String(100))
    valid_until: Mapped[datetime | None] = mapped_column()
    #: The e-copy that replaced this one (a newer document of the same type).
    superseded_by: Mapped[str | None] = mapped_column(String(32))
    revoked_at: Mapped[datetime | None] = mapped_column()
    revocation_reason: Mapped[str | None] = mapped_column(Text)
    #: Changes whenever the status changes (ETag of portal reads).
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    #: When subscribers were sent ``expired`` (None: not yet, or no ``valid_until``).
    expiry_notified_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        Index("ix_ecopies_citizen_status", "citizen_id", "status"),
        Index(
            "ix_ecopies_expiry_due",
            "valid_until",
            postgresql_where=sql_text(_EXPIRY_DUE),
            sqlite_where=sql_text(_EXPIRY_DUE),
        ),
    )

    @property
    def shown_status(self) -> str:
        """:func:`shown_status` now: what the QR check, reports and portals show."""
        return shown_status(self.status, self.valid_until)


class ApiKey(Base):
    """A personal or client key; only its hash is stored, the key is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    office: Mapped[str | None] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()


class WebSession(Base):
    """A signed-in browser of the web pages (``digitizer.services.websessions``).

    Keyed by the SHA-256 of the cookie's token; lives as long as its key is valid,
    the browser is not idle too long and nobody signs out.
    """

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxEntry(Base):
    """Work to hand to the queue, written in the same transaction as the state change."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(50))
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_outbox_pending", "dispatched_at"),)


class AuditEvent(Base):
    """One read or write of personal data; append-only, hash-chained to the previous."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    request_id: Mapped[str | None] = mapped_column(String(64))
    actor_id: Mapped[str | None] = mapped_column(String(32))
    actor_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(20))
    office: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    #: Opaque citizen reference (never the personal id).
    citizen_id: Mapped[str | None] = mapped_column(String(32), index=True)
    document_id: Mapped[str | None] = mapped_column(String(32), index=True)
    purpose: Mapped[str | None] = mapped_column(String(300))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: How ``hash`` was computed (``digitizer.services.audit.event_hash``): 1 before
    #: migration 0009, 2 since.
    hash_version: Mapped[int] = mapped_column(SmallInteger, default=2, server_default="2")


class AuditAnchor(Base):
    """The chain head at a point in time, timestamped by the TSA (RFC 3161)."""

    __tablename__ = "audit_anchors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    #: DER TimeStampToken over the head hash (None when no TSA is configured).
    token: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsentGrant(Base):
    """A citizen's consent for a portal client to read some document types."""

    __tablename__ = "consent_grants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    citizen_id: Mapped[str] = mapped_column(ForeignKey("citizens.id"), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), index=True)
    doc_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    purpose: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class Subscriber(Base):
    """A registered receiver of change webhooks (an allow-listed host)."""

    __tablename__ = "subscribers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(500))
    #: HMAC secret, encrypted with the deployment key.
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    #: The secret before the last rotation, still signing deliveries (beside the new one)
    #: until ``previous_secret_until``.
    previous_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_until: Mapped[datetime | None] = mapped_column()
    #: The portal client whose consent grants decide which citizens it hears about.
    client_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()


class WebhookDelivery(Base):
    """One webhook to send, retried with backoff until delivered or given up."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[str] = mapped_column(ForeignKey("subscribers.id"))
    event: Mapped[str] = mapped_column(String(30))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the API read while a worker writes; busy_timeout waits instead of failing.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class _NoRowLogging(logging.Filter):
    """Drops SQLAlchemy's DEBUG log of result rows: rows hold personal data (never in logs).

    Statement parameters are hidden by ``hide_parameters`` (in logs and in exception
    messages alike); rows have no such switch.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Row %r"


logging.getLogger("sqlalchemy.engine.Engine").addFilter(_NoRowLogging())

_ENGINES: list[Engine] = []


def dispose_engines() -> None:
    """Drop pooled connections inherited through fork (the parent keeps its own)."""
    for engine in _ENGINES:
        engine.dispose(close=False)


@lru_cache(maxsize=8)
def get_engine(url: str, echo: bool = False) -> Engine:
    """One engine per URL and process (cached)."""
    return new_engine(url, echo=echo)


def ping(url: str) -> None:
    """Ask the database for ``SELECT 1`` (readiness, waiting out an outage).

    Raises:
        sqlalchemy.exc.OperationalError: (or another driver error) it does not answer.
    """
    with get_engine(url).connect() as conn:
        conn.execute(sql_text("SELECT 1"))


def new_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = 5,
    max_overflow: int = 10,
    isolation_level: str | None = None,
) -> Engine:
    """An engine with the project's settings (callers cache it; see :func:`get_engine`)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, hide_parameters=True, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        options = {"isolation_level": isolation_level} if isolation_level else {}
        engine = create_engine(
            url,
            echo=echo,
            # parameters hold personal data: never in logs or exception messages
            hide_parameters=True,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=max_overflow,
            connect_args={"connect_timeout": 5},
            **options,
        )
    _ENGINES.append(engine)
    return engine


@lru_cache(maxsize=8)
def get_sessionmaker(url: str) -> sessionmaker[Session]:
    """Session factory bound to the engine of a URL."""
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = get_sessionmaker(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
