"""Uploads, document status, batch progress."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse

from digitizer.api.deps import (
    Approver,
    Clerk,
    IntakeDep,
    Purpose,
    SessionDep,
    SettingsDep,
    StoreDep,
)
from digitizer.config import Settings
from digitizer.errors import FileTooLargeError
from digitizer.models import (
    BatchProgress,
    BatchPublic,
    DocumentPublic,
    ECopyPublic,
    FieldPublic,
    IssueRequest,
    Problem,
    RejectedFile,
    UploadedDocument,
    UploadResponse,
)
from digitizer.services import access, audit, review
from digitizer.services import documents as docs
from digitizer.services.intake import IntakeResult, Upload
from digitizer.services.issuing import IssuingService, verification_url
from digitizer.services.keys import Actor
from digitizer.services.signing import SigningService
from storage.db import Batch, Document, ECopy
from workers.sweeper import relay_outbox

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["documents"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid key"},
    403: {"model": Problem, "description": "Wrong role"},
    413: {"model": Problem, "description": "Too large"},
    415: {"model": Problem, "description": "Unsupported type"},
    422: {"model": Problem, "description": "File refused"},
    503: {"model": Problem, "description": "Storage unavailable; nothing accepted"},
}


def _read(upload: UploadFile, limit: int) -> Upload:
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise FileTooLargeError(f"{upload.filename or 'the file'} is larger than {limit} bytes")
    return Upload(filename=upload.filename or "upload", data=data)


def _doc_public(doc: Document) -> DocumentPublic:
    base = f"/v1/documents/{doc.id}"
    results = doc.results or {}
    reviewed = review.view(doc)
    return DocumentPublic(
        id=doc.id,
        filename=doc.filename,
        sha256=doc.sha256,
        media_type=doc.media_type,
        size=doc.size,
        state=doc.state,
        page_count=doc.page_count,
        has_signatures=doc.has_signatures,
        ocr_confidence=doc.ocr_confidence,
        error=doc.error,
        attempts=doc.attempts,
        created_at=doc.created_at,
        updated_at=doc.updated_at,
        finished_at=doc.finished_at,
        status_url=base,
        searchable_pdf_url=f"{base}/searchable.pdf" if results.get("searchable_pdf") else None,
        text_url=f"{base}/text" if results.get("text") else None,
        failures=list(doc.failures or []),
        duplicate_of=doc.duplicate_of,
        doc_type=reviewed.doc_type,
        type_confidence=reviewed.type_confidence,
        fields={
            name: FieldPublic(value=f.value, confidence=f.confidence)
            for name, f in reviewed.fields.items()
            if f.value is not None
        },
        review_reasons=reviewed.reasons,
        model_version=reviewed.model_version,
    )


def _uploaded(doc: Document, filename: str, duplicate: bool) -> UploadedDocument:
    return UploadedDocument(
        id=doc.id,
        filename=filename,
        sha256=doc.sha256,
        state=doc.state,
        duplicate=duplicate,
        status_url=f"/v1/documents/{doc.id}",
    )


def _batch_public(batch: Batch, rows: list[tuple[str, Document]]) -> BatchPublic:
    progress = docs.progress_of([doc for _, doc in rows])
    return BatchPublic(
        id=batch.id,
        name=batch.name,
        created_at=batch.created_at,
        status_url=f"/v1/batches/{batch.id}",
        progress=BatchProgress(
            total=progress.total,
            settled=progress.settled,
            done=progress.done,
            by_state=progress.by_state,
            percent=progress.percent,
        ),
        documents=[_uploaded(doc, name, False) for name, doc in rows],
    )


def _relay(settings: Settings) -> None:
    # Best effort right after the response; the workers' relay catches up otherwise.
    try:
        relay_outbox(settings)
    except Exception:
        log.warning("outbox relay after upload failed; the workers' relay will retry")


def _answer(result: IntakeResult) -> UploadResponse:
    rejected = [
        RejectedFile(
            filename=r.filename,
            problem=Problem(
                type=r.error.type_uri(),
                title=r.error.title,
                status=r.error.status,
                detail=r.error.detail,
            ),
        )
        for r in result.rejected
    ]
    batch = None
    if result.batch is not None:
        batch = _batch_public(result.batch, [(a.filename, a.document) for a in result.accepted])
    return UploadResponse(
        documents=[_uploaded(a.document, a.filename, a.duplicate) for a in result.accepted],
        rejected=rejected,
        batch=batch,
    )


@router.post("/documents", status_code=202, response_model=UploadResponse, responses=_PROBLEMS)
def upload_document(
    actor: Clerk,
    settings: SettingsDep,
    intake: IntakeDep,
    background: BackgroundTasks,
    file: Annotated[UploadFile, File(description="PDF, JPEG, PNG or TIFF (multi-page allowed)")],
    citizen_pid: Annotated[
        str | None, Form(description="12-digit personal identification number (never in URLs)")
    ] = None,
) -> UploadResponse:
    """Upload one scan. The same bytes again return the same document and queue nothing."""
    upload = _read(file, settings.limits.max_upload_bytes)
    result = intake.ingest([upload], citizen_pid=citizen_pid, actor=actor)
    background.add_task(_relay, settings)
    return _answer(result)


@router.post("/batches", status_code=202, response_model=UploadResponse, responses=_PROBLEMS)
def upload_batch(
    actor: Clerk,
    settings: SettingsDep,
    intake: IntakeDep,
    background: BackgroundTasks,
    files: Annotated[list[UploadFile], File(description="Several scans, or one ZIP of scans")],
    name: Annotated[str | None, Form(max_length=200)] = None,
    citizen_pid: Annotated[str | None, Form()] = None,
) -> UploadResponse:
    """Upload a batch: several files, or ZIP archives of files. Bad files are listed."""
    limit = settings.limits.max_zip_total_bytes
    uploads = [_read(f, limit) for f in files]
    result = intake.ingest(
        uploads, as_batch=True, batch_name=name, citizen_pid=citizen_pid, actor=actor
    )
    background.add_task(_relay, settings)
    return _answer(result)


@router.get("/documents/{document_id}", response_model=DocumentPublic, responses=_PROBLEMS)
def get_document(
    document_id: str, actor: Clerk, session: SessionDep, purpose: Purpose = None
) -> DocumentPublic:
    """A document's state (uploaded, queued, processing, failed, needs_review, ready, ...)."""
    doc = docs.get_document(session, document_id, actor, purpose)
    _audit_read(session, actor, doc, purpose, "status")
    return _doc_public(doc)


@router.get("/batches/{batch_id}", response_model=BatchPublic, responses=_PROBLEMS)
def get_batch(
    batch_id: str, actor: Clerk, session: SessionDep, purpose: Purpose = None
) -> BatchPublic:
    """A batch's progress and its documents' states."""
    batch, rows = docs.get_batch(session, batch_id, actor, purpose)
    audit.record(
        session,
        actor,
        "batch.read",
        citizen_id=batch.citizen_id,
        purpose=purpose,
        detail={"batch_id": batch.id, "documents": len(rows)},
    )
    return _batch_public(batch, [(item.filename, doc) for item, doc in rows])


@router.post(
    "/documents/{document_id}/reprocess",
    status_code=202,
    response_model=DocumentPublic,
    responses={**_PROBLEMS, 409: {"model": Problem, "description": "Not reprocessable now"}},
)
def reprocess_document(
    document_id: str,
    actor: Clerk,
    session: SessionDep,
    settings: SettingsDep,
    background: BackgroundTasks,
) -> DocumentPublic:
    """Run a document through the pipeline again (new engine or model: unchanged steps skip)."""
    doc = docs.reprocess(session, document_id, actor)
    audit.record(
        session,
        actor,
        "document.reprocess",
        citizen_id=doc.citizen_id,
        document_id=doc.id,
        detail={"state": doc.state},
    )
    session.commit()
    background.add_task(_relay, settings)
    return _doc_public(doc)


def _issuing(request: Request) -> IssuingService:
    service = getattr(request.app.state, "issuing", None)
    if service is None:
        settings = request.app.state.settings
        service = IssuingService(settings, request.app.state.store, SigningService(settings))
        request.app.state.issuing = service
    return service


def _ecopy_public(settings: Settings, ecopy: ECopy) -> ECopyPublic:
    return ECopyPublic(
        id=ecopy.id,
        document_id=ecopy.document_id,
        status=ecopy.status,
        issuer=ecopy.issuer,
        issued_at=ecopy.issued_at,
        verify_url=verification_url(settings, ecopy.code),
        download_url=f"/v1/ecopies/{ecopy.id}/download",
    )


@router.post(
    "/documents/{document_id}/issue",
    status_code=201,
    response_model=ECopyPublic,
    responses={**_PROBLEMS, 409: {"model": Problem, "description": "Not ready to issue"}},
)
def issue_document(
    document_id: str,
    body: IssueRequest,
    request: Request,
    actor: Approver,
    session: SessionDep,
    settings: SettingsDep,
) -> ECopyPublic:
    """Approve a document and sign its e-copy with the office key (PAdES, stamp with QR)."""
    ecopy = _issuing(request).issue(session, document_id, actor, body.office, body.signer_name)
    return _ecopy_public(settings, ecopy)


@router.get("/ecopies/{ecopy_id}/download", status_code=307, responses=_PROBLEMS)
def download_ecopy(
    ecopy_id: str, actor: Clerk, session: SessionDep, store: StoreDep, purpose: Purpose = None
) -> RedirectResponse:
    """Redirect to a short-lived link to a signed e-copy (issuing the link is an audited read)."""
    ecopy = access.visible_ecopy(session, actor, ecopy_id, purpose)
    link = store.presigned_get(ecopy.object_key)
    audit.record(
        session,
        actor,
        "ecopy.download",
        citizen_id=ecopy.citizen_id,
        document_id=ecopy.document_id,
        purpose=purpose,
        detail={"ecopy_id": ecopy.id, "status": ecopy.status},
    )
    return RedirectResponse(link, status_code=307)


def _audit_read(
    session: SessionDep, actor: Actor, doc: Document, purpose: str | None, part: str
) -> None:
    audit.record(
        session,
        actor,
        "document.read",
        citizen_id=doc.citizen_id,
        document_id=doc.id,
        purpose=purpose,
        detail={"part": part},
    )


def _redirect(
    session: SessionDep,
    store: StoreDep,
    actor: Actor,
    doc: Document,
    what: str,
    purpose: str | None,
) -> RedirectResponse:
    # Issuing a download link is a read of the document.
    link = docs.derived_link(store, doc, what)
    _audit_read(session, actor, doc, purpose, what)
    return RedirectResponse(link, status_code=307)


@router.get("/documents/{document_id}/searchable.pdf", status_code=307, responses=_PROBLEMS)
def searchable_pdf(
    document_id: str, actor: Clerk, session: SessionDep, store: StoreDep, purpose: Purpose = None
) -> RedirectResponse:
    """Redirect to a short-lived link to the searchable PDF."""
    doc = docs.get_document(session, document_id, actor, purpose)
    return _redirect(session, store, actor, doc, "searchable_pdf", purpose)


@router.get("/documents/{document_id}/text", status_code=307, responses=_PROBLEMS)
def document_text(
    document_id: str, actor: Clerk, session: SessionDep, store: StoreDep, purpose: Purpose = None
) -> RedirectResponse:
    """Redirect to a short-lived link to the recognised text (pages separated by form feeds)."""
    doc = docs.get_document(session, document_id, actor, purpose)
    return _redirect(session, store, actor, doc, "text", purpose)
