"""Intake: accept uploads, store originals, record documents, queue their processing.

Order matters (DESIGN.md, "Rules that keep data safe"): the original is stored
before anything else; then one database transaction writes the document, its
batch membership and an outbox row; only then is the queue told. A second
upload of the same bytes finds the same document (SHA-256) and queues nothing.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from digitizer.config import Settings
from digitizer.errors import BadInputError, FileTooLargeError, ServiceUnavailableError
from digitizer.pipeline.preflight import (
    FileInfo,
    inspect_file,
    limits_from,
    sniff,
    store_preflight,
)
from digitizer.services import audit
from digitizer.services.archive import ArchiveLimits, Member, read_zip
from digitizer.services.citizens import CitizenRegistry, validate_pid
from digitizer.services.keys import Actor
from storage.db import Batch, BatchItem, Citizen, Document, OutboxEntry, session_scope
from storage.errors import ObjectStoreUnavailableError
from storage.objects import ObjectStore, original_key

log = logging.getLogger(__name__)

MAX_FILENAME = 255


@dataclass(frozen=True)
class Upload:
    """One uploaded file."""

    filename: str
    data: bytes


@dataclass
class Accepted:
    """A file that became (or already was) a document."""

    filename: str
    document: Document
    duplicate: bool


@dataclass
class Rejected:
    """A file of a batch that could not be accepted."""

    filename: str
    error: BadInputError


@dataclass
class IntakeResult:
    """What an upload request produced."""

    accepted: list[Accepted] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    batch: Batch | None = None


@dataclass
class _Prepared:
    filename: str
    data: bytes
    sha256: str
    info: FileInfo


def _clean_name(name: str | None) -> str:
    base = (name or "upload").replace("\\", "/").rsplit("/", 1)[-1].strip() or "upload"
    return "".join(ch for ch in base if ch.isprintable())[:MAX_FILENAME]


class IntakeService:
    """Accepts single files and batches (several files, or ZIP archives)."""

    def __init__(
        self, settings: Settings, store: ObjectStore, citizens: CitizenRegistry | None
    ) -> None:
        self.settings = settings
        self.store = store
        self.citizens = citizens
        self.limits = limits_from(settings)
        lim = settings.limits
        self.archive_limits = ArchiveLimits(
            max_entries=lim.max_zip_entries,
            max_total_bytes=lim.max_zip_total_bytes,
            max_member_bytes=lim.max_upload_bytes,
            max_ratio=lim.max_zip_ratio,
        )

    # -- preparation (pure, before anything is stored) -----------------------------------
    def _expand(self, uploads: list[Upload]) -> tuple[list[Member], bool]:
        """Files of the request with archives opened; True when an archive was seen."""
        members: list[Member] = []
        archive = False
        for upload in uploads:
            if len(uploads) == 1 or upload.data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
                kind = sniff(upload.data)  # a lone bad file is refused before anything else
            else:
                kind = None  # checked with the other members, one by one
            if kind == "zip":
                if len(upload.data) > self.archive_limits.max_total_bytes:
                    raise FileTooLargeError("the archive is larger than the batch limit")
                members.extend(read_zip(upload.data, self.archive_limits))
                archive = True
            else:
                members.append(Member(name=_clean_name(upload.filename), data=upload.data))
        return members, archive

    def _prepare(self, member: Member) -> _Prepared:
        info = inspect_file(member.data, self.limits)
        if info.kind == "zip":
            raise BadInputError("an archive inside a batch is not accepted; upload it on its own")
        return _Prepared(
            filename=_clean_name(member.name),
            data=member.data,
            sha256=hashlib.sha256(member.data).hexdigest(),
            info=info,
        )

    # -- the request -----------------------------------------------------------------------
    def ingest(
        self,
        uploads: list[Upload],
        *,
        as_batch: bool = False,
        batch_name: str | None = None,
        citizen_pid: str | None = None,
        actor: Actor | None = None,
    ) -> IntakeResult:
        """Accept files; returns accepted documents and, for batches, rejected files.

        Documents are stamped with the uploading ``actor``'s office and key id.

        A single file that cannot be accepted raises its ``BadInputError``. In a batch,
        bad files are reported one by one and the good ones are accepted; an archive
        that is unsafe as a whole is refused as a whole.

        Raises:
            BadInputError: the single file, or every file of a batch, was refused.
            ServiceUnavailableError: object store or database unreachable; nothing
                was accepted (originals already written are harmless: content-addressed).
        """
        if citizen_pid is not None:
            validate_pid(citizen_pid)  # refuse before storing anything
        if not uploads:
            raise BadInputError("the upload holds no files")
        members, archive = self._expand(uploads)
        if not members:
            raise BadInputError("the archive holds no files")
        batch_mode = as_batch or archive or len(members) > 1
        result = IntakeResult()
        prepared: list[_Prepared] = []
        for member in members:
            try:
                prepared.append(self._prepare(member))
            except BadInputError as exc:
                if not batch_mode:
                    raise
                result.rejected.append(Rejected(_clean_name(member.name), exc))
        if not prepared:
            first = result.rejected[0].error
            raise type(first)(
                f"none of the {len(result.rejected)} files could be accepted; "
                f"first problem: {first.detail}"
            )

        self._store_originals(prepared)
        try:
            with session_scope(self.settings.db.url) as session:
                citizen = self._citizen(session, citizen_pid)
                batch: Batch | None = None
                if batch_mode:
                    batch = Batch(
                        name=(batch_name or None), citizen_id=citizen.id if citizen else None
                    )
                    session.add(batch)
                    session.flush()
                seen: set[str] = set()
                for position, item in enumerate(prepared):
                    doc, duplicate = self._document(session, item, citizen, actor)
                    if batch is not None and doc.id not in seen:
                        session.add(
                            BatchItem(
                                batch_id=batch.id,
                                document_id=doc.id,
                                filename=item.filename,
                                position=position,
                            )
                        )
                    seen.add(doc.id)
                    result.accepted.append(Accepted(item.filename, doc, duplicate))
                result.batch = batch
                self._audit(session, actor, result, citizen)
        except OperationalError as exc:
            raise ServiceUnavailableError(
                "the database is unavailable; the upload was not accepted, try again"
            ) from exc
        return result

    @staticmethod
    def _audit(
        session: Session, actor: Actor | None, result: IntakeResult, citizen: Citizen | None
    ) -> None:
        # Last in the transaction: the audit chain stays locked until the commit.
        recorded: set[str] = set()
        for accepted in result.accepted:
            doc = accepted.document
            if doc.id in recorded:
                continue
            recorded.add(doc.id)
            detail: dict[str, str | bool] = {"duplicate": accepted.duplicate}
            if result.batch is not None:
                detail["batch_id"] = result.batch.id
            audit.record(
                session,
                actor,
                "document.create",
                citizen_id=citizen.id if citizen else doc.citizen_id,
                document_id=doc.id,
                detail=detail,
            )

    def _store_originals(self, prepared: list[_Prepared]) -> None:
        try:
            for item in prepared:
                if self.store.put_if_absent(
                    original_key(item.sha256), item.data, item.info.media_type
                ):
                    # The worker reuses these findings instead of decoding the file again.
                    store_preflight(self.store, item.sha256, item.info)
        except ObjectStoreUnavailableError as exc:
            raise ServiceUnavailableError(
                "the object store is unavailable; the upload was not accepted, try again"
            ) from exc

    def _citizen(self, session: Session, pid: str | None) -> Citizen | None:
        if pid is None:
            return None
        if self.citizens is None:
            raise BadInputError("citizens cannot be recorded: no secret key is configured")
        return self.citizens.get_or_create(session, pid)

    def _document(
        self, session: Session, item: _Prepared, citizen: Citizen | None, actor: Actor | None
    ) -> tuple[Document, bool]:
        # Deduplication is per office (unique index on sha256 and office): the same bytes
        # from another office become a document of that office, never the first office's
        # document, and its upload does not reveal that another office holds them. The
        # original object (originals/{sha256}) and derived outputs are shared by hash.
        office = actor.office if actor else None
        same = select(Document).where(
            Document.sha256 == item.sha256,
            Document.office == office if office is not None else Document.office.is_(None),
        )
        existing = session.scalars(same).first()
        if existing is None:
            doc = Document(
                sha256=item.sha256,
                filename=item.filename,
                media_type=item.info.media_type,
                size=len(item.data),
                page_count=item.info.page_count,
                has_signatures=item.info.has_signatures,
                citizen_id=citizen.id if citizen else None,
                office=office,
                uploaded_by=actor.key_id if actor else None,
                results={},
            )
            try:
                with session.begin_nested():
                    session.add(doc)
                    session.flush()
                    session.add(OutboxEntry(topic="process_document", document_id=doc.id))
                    session.flush()
                return doc, False
            except IntegrityError:
                # Another request stored the same bytes at the same moment.
                existing = session.scalars(same).one()
        if citizen is not None and existing.citizen_id is None:
            existing.citizen_id = citizen.id
        return existing, True
