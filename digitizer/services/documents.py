"""Reading documents and batches: status, progress, derived objects."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from digitizer.errors import ConflictError, NotFoundError
from digitizer.services import access
from digitizer.services.keys import Actor
from storage.db import (
    SETTLED_STATES,
    Batch,
    BatchItem,
    Document,
    DocumentState,
    OutboxEntry,
)
from storage.objects import ObjectStore


@dataclass(frozen=True)
class Progress:
    """Counts of a batch's documents by state."""

    total: int
    settled: int
    by_state: dict[str, int]

    @property
    def done(self) -> bool:
        return self.settled == self.total

    @property
    def percent(self) -> float:
        return round(100.0 * self.settled / self.total, 1) if self.total else 100.0


def get_document(
    session: Session,
    document_id: str,
    actor: Actor | None = None,
    purpose: str | None = None,
    *,
    write: bool = False,
) -> Document:
    """A document by id; for an ``actor``, only one they may see (``access``).

    Without an actor (workers, the CLI) every document is found.

    Raises:
        NotFoundError: no such document (or another office's: the same answer).
    """
    if actor is not None:
        return access.visible_document(session, actor, document_id, purpose, write=write)
    doc = session.get(Document, document_id) if len(document_id) <= 64 else None
    if doc is None:
        raise NotFoundError("no document with this id")
    return doc


def get_batch(
    session: Session, batch_id: str, actor: Actor | None = None, purpose: str | None = None
) -> tuple[Batch, list[tuple[BatchItem, Document]]]:
    """A batch and its documents in upload order; for an ``actor``, only their own.

    Raises:
        NotFoundError: no such batch (or another office's: the same answer).
    """
    if actor is not None:
        return access.visible_batch(session, actor, batch_id, purpose)
    batch = session.get(Batch, batch_id) if len(batch_id) <= 64 else None
    if batch is None:
        raise NotFoundError("no batch with this id")
    rows = session.execute(
        select(BatchItem, Document)
        .join(Document, Document.id == BatchItem.document_id)
        .where(BatchItem.batch_id == batch_id)
        .order_by(BatchItem.position)
    ).all()
    return batch, [(item, doc) for item, doc in rows]


def progress_of(documents: list[Document]) -> Progress:
    """Progress of a set of documents."""
    counts = Counter(doc.state for doc in documents)
    settled = sum(n for state, n in counts.items() if state in SETTLED_STATES)
    return Progress(total=len(documents), settled=settled, by_state=dict(counts))


def derived_link(store: ObjectStore, doc: Document, what: str) -> str:
    """A short-lived link to one of a document's outputs (``searchable_pdf``, ``text``).

    Raises:
        NotFoundError: the output does not exist (yet).
    """
    key = (doc.results or {}).get(what)
    if not key:
        raise NotFoundError(f"the document has no {what.replace('_', ' ')} yet (state {doc.state})")
    return store.presigned_get(key)


#: States from which a document may be run through the pipeline again. Approved
#: and later documents carry a person's decision and a signature: never silently.
REPROCESSABLE = frozenset(
    {
        DocumentState.UPLOADED,
        DocumentState.QUEUED,
        DocumentState.FAILED,
        DocumentState.NEEDS_REVIEW,
        DocumentState.READY,
    }
)


def reprocess(session: Session, document_id: str, actor: Actor | None = None) -> Document:
    """Queue a document for the pipeline again (e.g. after a new OCR engine or model).

    Outputs whose step versions did not change are reused (derived-object keys
    carry the versions); the rest is recomputed.

    Raises:
        NotFoundError: no such document.
        ConflictError: the document is being processed, or was approved or issued.
    """
    doc = get_document(session, document_id, actor, write=True)
    if doc.state not in REPROCESSABLE:
        raise ConflictError(f"a document in state {doc.state} cannot be reprocessed")
    doc.state = DocumentState.UPLOADED
    doc.attempts = 0
    doc.error = None
    doc.duplicate_of = None
    doc.heartbeat_at = None
    session.add(OutboxEntry(topic="process_document", document_id=doc.id))
    session.flush()
    return doc


def reprocess_where(session: Session, states: list[str]) -> list[str]:
    """Reprocess every document in ``states``; returns their ids."""
    wanted = [s for s in states if s in REPROCESSABLE]
    ids = list(session.scalars(select(Document.id).where(Document.state.in_(wanted))))
    for document_id in ids:
        reprocess(session, document_id)
    return ids
