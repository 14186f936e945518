"""The clerk review queue: list, look at pages and proposals, correct, approve."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import RedirectResponse

from digitizer.api.deps import Clerk, Purpose, SessionDep, StoreDep
from digitizer.models import (
    Problem,
    ReviewApproval,
    ReviewCorrection,
    ReviewDetail,
    ReviewField,
    ReviewLine,
    ReviewPage,
    ReviewQueue,
    ReviewQueueItem,
)
from digitizer.services import review
from storage.db import Document

router = APIRouter(prefix="/v1/review", tags=["review"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid key"},
    403: {"model": Problem, "description": "Wrong role"},
    404: {"model": Problem, "description": "No such document in your office"},
    503: {"model": Problem, "description": "Storage unavailable"},
}
_WRITE_PROBLEMS: dict[int | str, dict[str, Any]] = {
    **_PROBLEMS,
    409: {"model": Problem, "description": "The document is not waiting for review"},
    422: {"model": Problem, "description": "Unknown type or field, or a malformed value"},
}


def _queue_item(doc: Document) -> ReviewQueueItem:
    view = review.view(doc)
    return ReviewQueueItem(
        id=doc.id,
        filename=doc.filename,
        doc_type=view.doc_type,
        type_confidence=view.type_confidence,
        predicted_type=view.predicted_type,
        review_reasons=view.reasons,
        created_at=doc.created_at,
        review_url=f"/v1/review/{doc.id}",
    )


def _detail(doc: Document, store: StoreDep) -> ReviewDetail:
    view = review.view(doc)
    pages = review.ocr_pages(store, doc)
    classification = (doc.results or {}).get("classification") or {}
    below = view.doc_type is not None and (
        view.type_confidence is None
        or (view.type_threshold is not None and view.type_confidence < view.type_threshold)
        or bool(classification.get("needs_review") and not view.type_corrected)
    )
    return ReviewDetail(
        id=doc.id,
        filename=doc.filename,
        state=doc.state,
        page_count=doc.page_count,
        pages=[
            ReviewPage(
                index=index,
                image_url=f"/v1/review/{doc.id}/pages/{index}.png",
                width=page.width,
                height=page.height,
                source=page.source,
                lines=[
                    ReviewLine(text=ln.text, bbox=list(ln.bbox), confidence=ln.confidence)
                    for ln in page.lines
                ],
            )
            for index, page in enumerate(pages)
        ],
        doc_type=view.doc_type,
        type_confidence=view.type_confidence,
        predicted_type=view.predicted_type,
        type_threshold=view.type_threshold,
        type_below_threshold=below,
        type_corrected=view.type_corrected,
        type_scores=dict(classification.get("scores") or {}),
        fields={
            name: ReviewField(
                value=f.value,
                confidence=f.confidence,
                source=f.source,
                threshold=f.threshold,
                below_threshold=f.below_threshold,
                corrected=f.corrected,
                proposed_value=f.proposed_value,
            )
            for name, f in view.fields.items()
        },
        expected_fields=list(view.expected_fields),
        review_reasons=view.reasons,
        model_version=view.model_version,
        error=doc.error,
        duplicate_of=doc.duplicate_of,
        reviewed_by=doc.reviewed_by,
        reviewed_at=doc.reviewed_at,
        created_at=doc.created_at,
    )


@router.get("", response_model=ReviewQueue, responses=_PROBLEMS)
def review_queue(
    actor: Clerk,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=review.MAX_PAGE_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
) -> ReviewQueue:
    """Documents waiting for review in your office, oldest first."""
    page = review.list_queue(session, actor, limit=limit, cursor=cursor)
    return ReviewQueue(
        items=[_queue_item(doc) for doc in page.documents], next_cursor=page.next_cursor
    )


@router.get("/{document_id}", response_model=ReviewDetail, responses=_PROBLEMS)
def review_detail(
    document_id: str, actor: Clerk, session: SessionDep, store: StoreDep, purpose: Purpose = None
) -> ReviewDetail:
    """Pages with recognised lines, the proposed type and fields, and why it needs review."""
    return _detail(review.read(session, actor, document_id, purpose), store)


@router.get("/{document_id}/pages/{index}.png", status_code=307, responses=_PROBLEMS)
def review_page_image(
    document_id: str,
    index: int,
    actor: Clerk,
    session: SessionDep,
    store: StoreDep,
    purpose: Purpose = None,
) -> RedirectResponse:
    """Redirect to a short-lived link to page ``index`` (0-based) as a PNG."""
    link = review.page_image_link(session, store, actor, document_id, index, purpose)
    return RedirectResponse(link, status_code=307)


@router.put("/{document_id}", response_model=ReviewDetail, responses=_WRITE_PROBLEMS)
def correct_document(
    document_id: str,
    body: ReviewCorrection,
    actor: Clerk,
    session: SessionDep,
    store: StoreDep,
) -> ReviewDetail:
    """Store corrections (type, field values; null removes a field) without approving."""
    doc = review.correct(session, store, actor, document_id, body.doc_type, body.fields)
    return _detail(doc, store)


@router.post("/{document_id}/approve", response_model=ReviewApproval, responses=_WRITE_PROBLEMS)
def approve_document(
    document_id: str,
    actor: Clerk,
    session: SessionDep,
    store: StoreDep,
    body: Annotated[ReviewCorrection | None, Body()] = None,
) -> ReviewApproval:
    """Approve (needs_review or ready -> approved), optionally with last corrections; the
    reviewed answer is kept as labelled data for ``sohoa train``."""
    doc, label = review.approve(
        session,
        store,
        actor,
        document_id,
        body.doc_type if body else None,
        body.fields if body else None,
    )
    assert doc.reviewed_at is not None
    return ReviewApproval(
        id=doc.id,
        state=doc.state,
        doc_type=label.doc_type,
        fields=dict(label.fields),
        corrected=label.corrected,
        label_id=label.id,
        reviewed_by=doc.reviewed_by,
        reviewed_at=doc.reviewed_at,
    )
