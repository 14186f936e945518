"""Public API models (what routes return); database rows never leave the services."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

#: The statuses an e-copy is shown with (``storage.db.shown_status``).
_STATUS_DOC = "valid, superseded, revoked, or expired (valid_until has passed; never stored)"


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="Stable problem type URI")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class DocumentPublic(BaseModel):
    """A document's processing status and, once classified, its type and field values
    (personal data for staff of its office: fields may hold a personal id)."""

    id: str
    filename: str
    sha256: str
    media_type: str
    size: int
    state: str = Field(description="uploaded, queued, processing, failed, needs_review, ready, ...")
    page_count: int | None
    has_signatures: bool
    ocr_confidence: float | None
    error: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    status_url: str
    searchable_pdf_url: str | None = Field(
        default=None, description="API path that redirects to a short-lived download link"
    )
    text_url: str | None = None
    failures: list[dict[str, object]] = Field(
        default_factory=list, description="why earlier attempts failed (attempt, at, reason)"
    )
    duplicate_of: str | None = Field(
        default=None, description="another document this looks like a second scan of"
    )
    doc_type: str | None = Field(default=None, description="type code (the clerk's if corrected)")
    type_confidence: float | None = None
    fields: dict[str, FieldPublic] = Field(
        default_factory=dict, description="name -> value and confidence (clerk's values: 1.0)"
    )
    review_reasons: list[str] = Field(default_factory=list)
    model_version: str | None = Field(default=None, description="model that proposed the type")


class UploadedDocument(BaseModel):
    """One accepted file of an upload."""

    id: str
    filename: str
    sha256: str
    state: str
    duplicate: bool = Field(description="the same bytes were uploaded before")
    status_url: str


class RejectedFile(BaseModel):
    """One file of a batch that was refused."""

    filename: str
    problem: Problem


class BatchProgress(BaseModel):
    """How far a batch is."""

    total: int
    settled: int = Field(description="documents that reached failed, needs_review, ready or later")
    done: bool
    by_state: dict[str, int]
    percent: float


class BatchPublic(BaseModel):
    """A batch and its progress."""

    id: str
    name: str | None
    created_at: datetime
    status_url: str
    progress: BatchProgress
    documents: list[UploadedDocument] = Field(default_factory=list)


class UploadResponse(BaseModel):
    """Answer to an upload: 202 Accepted, processing continues in the background."""

    documents: list[UploadedDocument]
    rejected: list[RejectedFile] = Field(default_factory=list)
    batch: BatchPublic | None = None


class Health(BaseModel):
    """Liveness and readiness."""

    status: str
    checks: dict[str, str] = Field(default_factory=dict)


class PublicCheck(BaseModel):
    """What anyone scanning an e-copy's QR code may see."""

    status: str = Field(
        description="valid, superseded, revoked, or expired (valid_until has passed)"
    )
    label: str = Field(description="the status in Vietnamese")
    doc_type: str | None
    issuer: str
    issue_date: str


class IssueRequest(BaseModel):
    """Approve a document and sign its e-copy."""

    office: str = Field(description="code of the issuing office whose key signs")
    signer_name: str | None = Field(default=None, max_length=200)


class ECopyPublic(BaseModel):
    """An issued e-copy."""

    id: str
    document_id: str
    status: str
    issuer: str
    issued_at: datetime
    verify_url: str
    download_url: str


# -- the citizen vault -------------------------------------------------------------------
class RevokeRequest(BaseModel):
    """Revoke an e-copy (by its issuing office)."""

    reason: str = Field(min_length=1, max_length=500, description="why, for the record")


class ECopyDetail(BaseModel):
    """An e-copy's metadata for staff (fields never include a personal id)."""

    id: str
    document_id: str
    citizen_ref: str | None = Field(description="opaque citizen reference (None: not filed)")
    doc_type: str | None
    doc_number: str | None
    office: str
    issuer: str
    issued_at: datetime
    status: str = Field(
        description="valid, superseded, revoked, or expired (valid_until has passed)"
    )
    valid_until: date | None
    fields: dict[str, Any]
    superseded_by: str | None
    revoked_at: datetime | None
    revocation_reason: str | None
    updated_at: datetime
    verify_url: str
    download_url: str


class ConsentRequest(BaseModel):
    """A citizen's consent for a portal client (header X-Citizen-Token required)."""

    client_id: str | None = Field(
        default=None, max_length=32, description="portal client key id; default: the caller"
    )
    doc_types: list[str] = Field(min_length=1, max_length=20, description="document type codes")
    purpose: str = Field(min_length=1, max_length=300)
    expires_at: datetime | None = Field(default=None, description="end of the grant (with zone)")
    valid_days: int | None = Field(default=None, ge=1, description="or: days from now")


class ConsentGrantPublic(BaseModel):
    """A consent grant as its citizen and portal see it."""

    id: str
    citizen_ref: str
    client_id: str
    doc_types: list[str]
    purpose: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    status: str = Field(description="active, expired or revoked (at the time of the read)")


class ConsentList(BaseModel):
    """A citizen's grants, newest first."""

    citizen_ref: str | None = Field(description="None: the citizen has no vault yet")
    grants: list[ConsentGrantPublic]


class PortalDocument(BaseModel):
    """A citizen's e-copy as a portal client with consent sees it."""

    id: str = Field(description="stable e-copy id")
    doc_type: str | None
    issuer: str
    issued_at: datetime
    status: str = Field(
        description="valid, superseded, revoked, or expired (valid_until has passed)"
    )
    valid_until: date | None
    fields: dict[str, Any]
    verify_url: str


class PortalDocumentList(BaseModel):
    """The citizen's current e-copies of the granted types (ETag for cheap polling)."""

    citizen_ref: str
    documents: list[PortalDocument]


class PortalDocumentDetail(PortalDocument):
    """One e-copy with a short-lived link to the signed file (valid e-copies only)."""

    superseded_by: str | None
    revoked_at: datetime | None
    download_url: str | None = Field(
        description="presigned link to the signed PDF; None when superseded or revoked"
    )
    link_expires_at: datetime | None


class AuditEventPublic(BaseModel):
    """One audit event: who did what to which citizen's data, when, and why."""

    seq: int = Field(description="position in the hash chain (1, 2, 3, ...)")
    at: datetime
    request_id: str | None
    actor_id: str | None = Field(description="API key id; None for the CLI and workers")
    actor_name: str | None
    role: str | None
    office: str | None
    action: str = Field(description="dotted verb, e.g. document.read, ecopy.issue")
    citizen_id: str | None = Field(description="opaque citizen reference (never the PID)")
    document_id: str | None
    purpose: str | None
    detail: dict[str, Any] = Field(description="ids and statuses only")
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    """A page of audit events, newest first."""

    events: list[AuditEventPublic]
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the next (older) page; None on the last page"
    )


# -- the clerk review queue --------------------------------------------------------------
class FieldPublic(BaseModel):
    """A field value with its confidence (1.0 for a value a clerk entered)."""

    value: str | None
    confidence: float | None


class ReviewField(BaseModel):
    """A proposed field for review; ``below_threshold`` values are to be highlighted."""

    value: str | None = Field(description="the value in force: the clerk's if corrected")
    confidence: float | None
    source: dict[str, object] | None = Field(
        description="page (0-based), bbox in the page's pixel space, text of the line"
    )
    threshold: float = Field(description="the field's review threshold")
    below_threshold: bool
    corrected: bool = Field(description="the value is the clerk's, not the pipeline's")
    proposed_value: str | None = Field(description="what the pipeline proposed")


class ReviewQueueItem(BaseModel):
    """A document waiting for review."""

    id: str
    filename: str
    doc_type: str | None
    type_confidence: float | None
    predicted_type: str | None = Field(description="the most probable type, even below threshold")
    review_reasons: list[str] = Field(description="type:X, low:FIELD, missing:FIELD")
    created_at: datetime
    review_url: str


class ReviewQueue(BaseModel):
    """One page of the review queue, oldest first."""

    items: list[ReviewQueueItem]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class ReviewLine(BaseModel):
    """A recognised line: text, box (x0, y0, x1, y1 in the page's pixel space), confidence."""

    text: str
    bbox: list[int]
    confidence: float = Field(description="0-100")


class ReviewPage(BaseModel):
    """A page: an image link and the recognised lines.

    The image is the page scaled down: multiply boxes by ``image width / width``.
    """

    index: int = Field(description="0-based, as fields' source.page")
    image_url: str = Field(description="API path redirecting to a short-lived PNG link")
    width: int
    height: int
    source: str = Field(description="ocr or text-layer")
    lines: list[ReviewLine]


class ReviewDetail(BaseModel):
    """Everything a clerk needs to review a document."""

    id: str
    filename: str
    state: str
    page_count: int | None
    pages: list[ReviewPage]
    doc_type: str | None
    type_confidence: float | None
    predicted_type: str | None
    type_threshold: float | None
    type_below_threshold: bool
    type_corrected: bool
    type_scores: dict[str, float] = Field(default_factory=dict)
    fields: dict[str, ReviewField]
    expected_fields: list[str] = Field(description="fields the type should carry")
    review_reasons: list[str]
    model_version: str | None
    error: str | None
    duplicate_of: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    created_at: datetime


class ReviewCorrection(BaseModel):
    """A clerk's corrections: type code and field values (null removes a field)."""

    model_config = {"extra": "forbid"}

    doc_type: str | None = Field(default=None, max_length=50)
    fields: dict[str, str | None] = Field(
        default_factory=dict, description="name -> value; dates ISO YYYY-MM-DD"
    )


class ReviewApproval(BaseModel):
    """An approved document and the reviewed answer recorded for training."""

    id: str
    state: str
    doc_type: str
    fields: dict[str, str]
    corrected: bool
    label_id: int
    reviewed_by: str | None
    reviewed_at: datetime
