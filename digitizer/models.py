"""Public API models (what routes return); database rows never leave the services."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="Stable problem type URI")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class DocumentPublic(BaseModel):
    """A document's processing status (no personal data beyond the file name)."""

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

    status: str = Field(description="valid, superseded or revoked")
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
