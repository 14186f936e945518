"""The clerk review queue: what the pipeline proposed, a person's corrections, approval.

A processed document carries the pipeline's proposal in ``results``: ``doc_type``,
``classification``, ``fields`` (DESIGN.md's shape) and ``review`` (why a person must look).
A clerk may correct the type and field values (kept in ``results["corrections"]``; they
survive a reprocess) and approves the document: ``needs_review`` or ``ready`` becomes
``approved``, the reviewed answer is kept in ``results["reviewed"]`` and a
:class:`~storage.db.ReviewLabel` row records it as labelled data for ``sohoa train``.

Staff see only their own office's documents (``Document.office == actor.office``; a key
without an office sees documents without one). Every read and write is audited; audit
details and logs carry ids, types and field names, never values.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from itertools import chain
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from digitizer.doctypes import DOC_TYPES
from digitizer.errors import (
    ConflictError,
    InvalidCorrectionError,
    InvalidPersonalIdError,
    NotFoundError,
)
from digitizer.pipeline import pageimg
from digitizer.pipeline.classify import ClassifyConfig
from digitizer.pipeline.extract import (
    FIELDS_BY_TYPE,
    OPTIONAL_FIELDS,
    ExtractConfig,
    extract,
    fields_to_dict,
)
from digitizer.pipeline.ocr import OcrPage
from digitizer.pipeline.training import LabelledExample
from digitizer.services import access, audit, cursors
from digitizer.services.citizens import validate_pid
from digitizer.services.keys import Actor
from storage.db import Document, DocumentState, ReviewLabel, utcnow
from storage.objects import ObjectStore, derived_key, original_key

log = logging.getLogger(__name__)

#: States a clerk may correct and approve.
REVIEWABLE = frozenset({DocumentState.NEEDS_REVIEW, DocumentState.READY})

#: Training weight of a label whose type or a field the clerk changed: one corrected
#: document of a wording the generator never produced stands against hundreds of generated
#: ones, and must win for its wording (a confirmed proposal adds nothing new: weight 1).
CORRECTED_WEIGHT = 5.0

#: Every field name the extractor knows.
KNOWN_FIELDS: frozenset[str] = frozenset(chain.from_iterable(FIELDS_BY_TYPE.values()))

_DATE_BASES = frozenset({"date_of_birth", "issue_date", "date_of_death", "valid_until"})
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SEXES = {"nam": "Nam", "nữ": "Nữ", "nu": "Nữ"}
MAX_VALUE_LENGTH = 500
MAX_PAGE_LIMIT = 200
#: Lifetime of a page image link (seconds).
PAGE_LINK_SECONDS = 300

_CLASSIFY = ClassifyConfig()
_EXTRACT = ExtractConfig()


# --------------------------------------------------------------------------------------------
# Corrections


@dataclass(frozen=True)
class Correction:
    """A clerk's validated corrections: a type, and field values (None removes a field)."""

    doc_type: str | None = None
    fields: dict[str, str | None] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.doc_type is None and not self.fields


def _base(name: str) -> str:
    return re.sub(r"^(husband|wife)_", "", name)


def _normal_value(name: str, value: str) -> str:
    """A corrected value in the extractor's normal form.

    Raises:
        InvalidCorrectionError: a malformed value (the message names the field only).
    """
    value = " ".join(value.split())
    if not value:
        raise InvalidCorrectionError(f"{name}: empty value (send null to remove the field)")
    if len(value) > MAX_VALUE_LENGTH:
        raise InvalidCorrectionError(f"{name}: longer than {MAX_VALUE_LENGTH} characters")
    base = _base(name)
    if base in _DATE_BASES:
        try:
            if not _ISO_DATE.match(value):
                raise ValueError
            date.fromisoformat(value)
        except ValueError:
            raise InvalidCorrectionError(
                f"{name}: dates are ISO YYYY-MM-DD calendar dates"
            ) from None
        return value
    if base == "personal_id":
        try:
            return validate_pid(value)
        except InvalidPersonalIdError as exc:
            raise InvalidCorrectionError(f"{name}: {exc.detail}") from None
    if base == "sex":
        sex = _SEXES.get(value.lower())
        if sex is None:
            raise InvalidCorrectionError(f"{name}: Nam or Nữ")
        return sex
    return value


def validate_correction(
    doc_type: str | None, fields: Mapping[str, str | None] | None, current_type: str | None
) -> Correction:
    """Check a correction: known type code, known field names (for the resulting type),
    ISO dates, structure-checked personal ids, sex Nam/Nữ.

    Raises:
        InvalidCorrectionError: what is wrong, naming the type or field, never the value.
    """
    if doc_type is not None and doc_type not in DOC_TYPES:
        raise InvalidCorrectionError(
            f"unknown document type {doc_type[:60]!r}; known: {', '.join(DOC_TYPES)}"
        )
    target = doc_type or current_type
    allowed = set(FIELDS_BY_TYPE.get(target or "", ())) or set(KNOWN_FIELDS)
    out: dict[str, str | None] = {}
    for name, value in (fields or {}).items():
        if name not in KNOWN_FIELDS:
            raise InvalidCorrectionError(f"unknown field {name[:60]!r}")
        if name not in allowed:
            raise InvalidCorrectionError(f"a {target} has no field {name!r}")
        out[name] = None if value is None else _normal_value(name, str(value))
    return Correction(doc_type, out)


# --------------------------------------------------------------------------------------------
# What the clerk sees


@dataclass(frozen=True)
class ReviewField:
    """One field as shown for review: the proposal and, when made, the clerk's value."""

    name: str
    value: str | None
    confidence: float | None
    source: dict[str, Any] | None
    threshold: float
    below_threshold: bool
    corrected: bool
    proposed_value: str | None


@dataclass(frozen=True)
class ReviewView:
    """The effective answer for a document: proposal with corrections applied."""

    doc_type: str | None
    type_confidence: float | None
    predicted_type: str | None
    type_threshold: float | None
    type_corrected: bool
    fields: dict[str, ReviewField]
    expected_fields: tuple[str, ...]
    reasons: list[str]
    model_version: str | None

    def values(self) -> dict[str, str]:
        """name -> value of every field that has one."""
        return {n: f.value for n, f in self.fields.items() if f.value is not None}


def view(doc: Document) -> ReviewView:
    """The proposal of a document with the clerk's corrections applied."""
    results = doc.results or {}
    corrections = results.get("corrections") or {}
    proposed_type = results.get("doc_type")
    classification = results.get("classification") or {}
    corrected_type = corrections.get("doc_type")
    doc_type = corrected_type or proposed_type
    type_corrected = corrected_type is not None and corrected_type != proposed_type
    # A corrected type comes with the fields extracted for that type (see correct()).
    proposals: dict[str, Any] = (
        corrections.get("extracted") or {} if type_corrected else results.get("fields") or {}
    )
    pipeline_values = {n: (v or {}).get("value") for n, v in (results.get("fields") or {}).items()}
    clerk_values: dict[str, str | None] = corrections.get("fields") or {}
    out: dict[str, ReviewField] = {}
    for name in [*proposals, *(n for n in clerk_values if n not in proposals)]:
        proposal = proposals.get(name) or {}
        threshold = _EXTRACT.threshold_for(name)
        if name in clerk_values:
            value = clerk_values[name]
            out[name] = ReviewField(
                name=name,
                value=value,
                confidence=1.0 if value is not None else None,
                source=proposal.get("source"),
                threshold=threshold,
                below_threshold=False,
                corrected=value != proposal.get("value"),
                proposed_value=proposal.get("value"),
            )
            continue
        confidence = proposal.get("confidence")
        out[name] = ReviewField(
            name=name,
            value=proposal.get("value"),
            confidence=confidence,
            source=proposal.get("source"),
            threshold=threshold,
            below_threshold=confidence is None or confidence < threshold,
            corrected=type_corrected and proposal.get("value") != pipeline_values.get(name),
            proposed_value=proposal.get("value"),
        )
    expected = tuple(
        n
        for n in FIELDS_BY_TYPE.get(doc_type or "", ())
        if n not in OPTIONAL_FIELDS.get(doc_type or "", frozenset()) or n in out
    )
    return ReviewView(
        doc_type=doc_type,
        type_confidence=1.0 if type_corrected else classification.get("confidence"),
        predicted_type=classification.get("predicted"),
        type_threshold=_CLASSIFY.threshold_for(doc_type) if doc_type else None,
        type_corrected=type_corrected,
        fields=out,
        expected_fields=expected,
        reasons=list(results.get("review") or []),
        model_version=doc.model_version or results.get("model_version"),
    )


# --------------------------------------------------------------------------------------------
# Access


def _office_clause(actor: Actor) -> Any:
    if actor.office is None:
        return Document.office.is_(None)
    return Document.office == actor.office


def get_for_review(
    session: Session,
    actor: Actor,
    document_id: str,
    purpose: str | None = None,
    *,
    lock: bool = False,
) -> Document:
    """A document of the caller's office (:mod:`.access`: another office's answers like a
    missing one unless an allowed purpose is stated for a read); ``lock`` for a write: the
    row is locked for the transaction and never another office's.

    Raises:
        NotFoundError: no such document, or another office's.
        BadInputError, ForbiddenError: a purpose that is unknown or not the role's.
    """
    doc = access.visible_document(session, actor, document_id, purpose, write=lock)
    if lock:
        session.refresh(doc, with_for_update=True)
    return doc


@dataclass(frozen=True)
class QueuePage:
    """One page of the queue and the cursor of the next (None: the last page)."""

    documents: list[Document]
    next_cursor: str | None


def list_queue(
    session: Session, actor: Actor, *, limit: int = 50, cursor: str | None = None
) -> QueuePage:
    """Documents waiting for review in the caller's office, oldest first."""
    limit = max(1, min(limit, MAX_PAGE_LIMIT))
    query = select(Document).where(
        Document.state == DocumentState.NEEDS_REVIEW.value, _office_clause(actor)
    )
    if cursor:
        after, after_id = cursors.decode(cursor)
        query = query.where(
            or_(
                Document.created_at > after,
                and_(Document.created_at == after, Document.id > after_id),
            )
        )
    rows = list(session.scalars(query.order_by(Document.created_at, Document.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    audit.record(
        session,
        actor,
        "review.list",
        detail={"count": len(rows), "document_ids": [d.id for d in rows]},
    )
    return QueuePage(
        rows, cursors.encode(rows[-1].created_at, rows[-1].id) if more and rows else None
    )


def read(session: Session, actor: Actor, document_id: str, purpose: str | None = None) -> Document:
    """A document for the review screen (audited as a read of its personal data)."""
    doc = get_for_review(session, actor, document_id, purpose)
    audit.record(
        session,
        actor,
        "review.read",
        citizen_id=doc.citizen_id,
        document_id=doc.id,
        purpose=purpose,
        detail={"state": doc.state},
    )
    return doc


# --------------------------------------------------------------------------------------------
# Pages


def ocr_pages(store: ObjectStore, doc: Document) -> list[OcrPage]:
    """The recognised pages of a document (empty before OCR)."""
    key = (doc.results or {}).get("ocr")
    if not key:
        return []
    data = json.loads(store.get_bytes(key))
    return [OcrPage.from_dict(p) for p in data.get("pages", [])]


def page_image_key(doc: Document, index: int) -> str:
    """Where the review image of page ``index`` (0-based) is kept."""
    return derived_key(doc.sha256, pageimg.NAME, pageimg.VERSION, f"{index}.png")


def page_image_link(
    session: Session,
    store: ObjectStore,
    actor: Actor,
    document_id: str,
    index: int,
    purpose: str | None = None,
) -> str:
    """A short-lived link to page ``index``'s image, rendered on first use.

    Raises:
        NotFoundError: no such document or page.
    """
    doc = get_for_review(session, actor, document_id, purpose)
    count = doc.page_count or 0
    if not 0 <= index < count:
        raise NotFoundError(f"the document has {count} page(s), numbered from 0")
    key = page_image_key(doc, index)
    if not store.exists(key):
        pages = ocr_pages(store, doc)
        png = pageimg.render_page(
            store.get_bytes(original_key(doc.sha256)),
            "pdf" if doc.media_type == "application/pdf" else "image",
            index,
            pages[index] if index < len(pages) else None,
        )
        store.put_bytes(key, png, "image/png")
    audit.record(
        session,
        actor,
        "review.page",
        citizen_id=doc.citizen_id,
        document_id=doc.id,
        purpose=purpose,
        detail={"page": index},
    )
    return store.presigned_get(key, PAGE_LINK_SECONDS)


# --------------------------------------------------------------------------------------------
# Writes


def _require_reviewable(doc: Document, what: str) -> None:
    if doc.state not in REVIEWABLE:
        raise ConflictError(
            f"a document in state {doc.state} cannot be {what}; only needs_review or ready"
        )


def _apply(
    store: ObjectStore, doc: Document, correction: Correction, actor: Actor
) -> dict[str, Any]:
    """Merge a correction into ``results["corrections"]``; returns the new corrections."""
    results = dict(doc.results or {})
    previous = dict(results.get("corrections") or {})
    merged_fields = dict(previous.get("fields") or {})
    merged_fields.update(correction.fields)
    doc_type = correction.doc_type or previous.get("doc_type")
    corrections: dict[str, Any] = {
        "doc_type": doc_type,
        "fields": merged_fields,
        "by": actor.key_id,
        "at": utcnow().isoformat(),
    }
    if doc_type and doc_type != results.get("doc_type"):
        # Propose the fields of the corrected type from the recognised text.
        if correction.doc_type is None and previous.get("extracted") is not None:
            corrections["extracted"] = previous["extracted"]
        else:
            pages = ocr_pages(store, doc)
            corrections["extracted"] = fields_to_dict(extract(pages, doc_type)) if pages else {}
    results["corrections"] = corrections
    doc.results = results
    effective = view(doc)
    doc.copy_out(effective.doc_type, {n: f.value for n, f in effective.fields.items()})
    return corrections


def correct(
    session: Session,
    store: ObjectStore,
    actor: Actor,
    document_id: str,
    doc_type: str | None,
    fields: Mapping[str, str | None] | None,
) -> Document:
    """Validate and store a clerk's corrections without approving.

    Raises:
        NotFoundError: no such document in the caller's office.
        ConflictError: the document is not waiting for review.
        InvalidCorrectionError: see :func:`validate_correction`.
    """
    doc = get_for_review(session, actor, document_id, lock=True)
    _require_reviewable(doc, "corrected")
    correction = validate_correction(doc_type, fields, doc.doc_type)
    _apply(store, doc, correction, actor)
    audit.record(
        session,
        actor,
        "review.correct",
        citizen_id=doc.citizen_id,
        document_id=doc.id,
        detail={"doc_type": correction.doc_type, "fields": sorted(correction.fields)},
    )
    return doc


def _text(store: ObjectStore, doc: Document) -> str:
    if doc.search_text:
        return doc.search_text
    key = (doc.results or {}).get("text")
    return store.get_bytes(key).decode() if key else ""


def approve(
    session: Session,
    store: ObjectStore,
    actor: Actor,
    document_id: str,
    doc_type: str | None = None,
    fields: Mapping[str, str | None] | None = None,
) -> tuple[Document, ReviewLabel]:
    """Approve a document (``needs_review`` or ``ready`` -> ``approved``) with optional last
    corrections; records the reviewed answer as a label for training.

    Raises:
        NotFoundError: no such document in the caller's office.
        ConflictError: the document is in another state.
        InvalidCorrectionError: a bad correction, or nothing says what type the document is.
    """
    doc = get_for_review(session, actor, document_id, lock=True)
    _require_reviewable(doc, "approved")
    correction = validate_correction(doc_type, fields, doc.doc_type)
    if not correction.empty:
        _apply(store, doc, correction, actor)
    effective = view(doc)
    if effective.doc_type is None:
        raise InvalidCorrectionError("doc_type: the document has no type yet; give one")
    results = dict(doc.results or {})
    proposed_fields = {n: (v or {}).get("value") for n, v in (results.get("fields") or {}).items()}
    values = effective.values()
    corrected = effective.doc_type != results.get("doc_type") or values != {
        n: v for n, v in proposed_fields.items() if v is not None
    }
    now = utcnow()
    results["reviewed"] = {
        "doc_type": effective.doc_type,
        "fields": values,
        "corrected": corrected,
        "by": actor.key_id,
        "at": now.isoformat(),
    }
    doc.results = results
    doc.copy_out(effective.doc_type, values)
    doc.state = DocumentState.APPROVED
    doc.reviewed_by = actor.key_id
    doc.reviewed_at = now
    label = ReviewLabel(
        document_id=doc.id,
        doc_type=effective.doc_type,
        fields=values,
        text=_text(store, doc),
        proposed={
            "doc_type": results.get("doc_type"),
            "predicted": (results.get("classification") or {}).get("predicted"),
            "confidence": (results.get("classification") or {}).get("confidence"),
            "fields": proposed_fields,
            "review": list(results.get("review") or []),
        },
        model_version=doc.model_version or results.get("model_version"),
        corrected=corrected,
        labelled_by=actor.key_id,
    )
    session.add(label)
    session.flush()
    audit.record(
        session,
        actor,
        "review.approve",
        citizen_id=doc.citizen_id,
        document_id=doc.id,
        detail={"doc_type": effective.doc_type, "corrected": corrected, "label": label.id},
    )
    log.info("document %s approved (corrected: %s)", doc.id, corrected)
    return doc, label


# --------------------------------------------------------------------------------------------
# Learning


def labelled_examples(session: Session) -> list[LabelledExample]:
    """Reviewed documents as training examples: the latest label per document, corrected
    ones weighted by :data:`CORRECTED_WEIGHT`; labels without text are skipped."""
    latest: dict[str, ReviewLabel] = {}
    for label in session.scalars(select(ReviewLabel).order_by(ReviewLabel.id)):
        latest[label.document_id] = label
    out = []
    for label in latest.values():
        if not label.text.strip() or label.doc_type not in DOC_TYPES:
            continue
        out.append(
            LabelledExample(
                text=label.text,
                doc_type=label.doc_type,
                fields={k: str(v) for k, v in (label.fields or {}).items()},
                source="clerk",
                document_id=label.document_id,
                weight=CORRECTED_WEIGHT if label.corrected else 1.0,
            )
        )
    return out
