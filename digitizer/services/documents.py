"""Reading documents and batches: status, progress, derived objects."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from digitizer.errors import NotFoundError
from storage.db import SETTLED_STATES, Batch, BatchItem, Document
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


def get_document(session: Session, document_id: str) -> Document:
    """A document by id.

    Raises:
        NotFoundError: no such document.
    """
    doc = session.get(Document, document_id) if len(document_id) <= 64 else None
    if doc is None:
        raise NotFoundError("no document with this id")
    return doc


def get_batch(session: Session, batch_id: str) -> tuple[Batch, list[tuple[BatchItem, Document]]]:
    """A batch and its documents in upload order.

    Raises:
        NotFoundError: no such batch.
    """
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
