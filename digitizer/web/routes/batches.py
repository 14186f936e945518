"""Batch digitization: drop files or a ZIP for a citizen, watch their progress, retry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from digitizer.api.deps import IntakeDep, SessionDep, SettingsDep
from digitizer.api.routes.documents import _read, _relay
from digitizer.errors import SohoaError
from digitizer.services import audit
from digitizer.services import documents as docs
from digitizer.web.deps import PREFIX, ClerkForm, ClerkPage, render, safe_next
from digitizer.web.labels import PROBLEMS

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/batches/new")
def batch_form(request: Request, user: ClerkPage) -> Response:
    """The upload form: files or a ZIP, the citizen, the procedure."""
    return render(request, "batch_new.html", user)


@router.post("/batches")
def batch_upload(
    request: Request,
    user: ClerkForm,
    settings: SettingsDep,
    intake: IntakeDep,
    background: BackgroundTasks,
    files: Annotated[list[UploadFile], File()],
    name: Annotated[str, Form(max_length=200)] = "",
    citizen_pid: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Store the files as a batch; go to its progress page (listing refused files first)."""
    chosen = [f for f in files if f.filename]
    form = {"name": name}
    if not chosen:
        return render(
            request, "batch_new.html", user, status_code=422, form=form,
            error="Chưa chọn tệp nào.",
        )  # fmt: skip
    try:
        uploads = [_read(f, settings.limits.max_zip_total_bytes) for f in chosen]
        result = intake.ingest(
            uploads,
            as_batch=True,
            batch_name=name.strip() or None,
            citizen_pid=citizen_pid.strip() or None,
            actor=user.actor,
        )
    except SohoaError as exc:
        return render(
            request, "batch_new.html", user, status_code=exc.status, form=form,
            error=PROBLEMS.get(exc.slug, PROBLEMS["bad-input"]),
        )  # fmt: skip
    background.add_task(_relay, settings)
    rejected = [
        (r.filename, PROBLEMS.get(r.error.slug, PROBLEMS["bad-input"])) for r in result.rejected
    ]
    if result.batch is None or not result.accepted:
        return render(
            request, "batch_new.html", user, status_code=422, form=form, rejected=rejected,
            error="Không tệp nào được nhận.",
        )  # fmt: skip
    target = f"{PREFIX}/batches/{result.batch.id}"
    if rejected:
        return render(
            request, "batch_rejected.html", user, rejected=rejected, target=target,
            accepted=len(result.accepted),
        )  # fmt: skip
    return RedirectResponse(target, status_code=303)


def _rows(request: Request, user: ClerkPage, session: SessionDep, batch_id: str) -> dict:
    batch, rows = docs.get_batch(session, batch_id, user.actor)
    progress = docs.progress_of([doc for _, doc in rows])
    return {
        "batch": batch,
        "rows": [(item.filename, doc) for item, doc in rows],
        "progress": progress,
    }


@router.get("/batches/{batch_id}")
def batch_page(request: Request, batch_id: str, user: ClerkPage, session: SessionDep) -> Response:
    """A batch's documents and their states, refreshed live by the page's script."""
    context = _rows(request, user, session, batch_id)
    batch = context["batch"]
    audit.record(
        session,
        user.actor,
        "batch.read",
        citizen_id=batch.citizen_id,
        detail={"batch_id": batch.id, "documents": len(context["rows"])},
    )
    return render(request, "batch.html", user, **context)


@router.get("/batches/{batch_id}/rows")
def batch_rows(request: Request, batch_id: str, user: ClerkPage, session: SessionDep) -> Response:
    """The progress part of the batch page (polled; states of the documents shown by the
    audited page load, so not audited again)."""
    response = render(request, "batch_rows.html", user, **_rows(request, user, session, batch_id))
    return response


@router.post("/documents/{document_id}/reprocess")
def reprocess(
    document_id: str,
    user: ClerkForm,
    session: SessionDep,
    settings: SettingsDep,
    background: BackgroundTasks,
    back: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Retry a document (a failed one, typically) and go back to the page it was asked from."""
    doc = docs.reprocess(session, document_id, user.actor)
    audit.record(
        session,
        user.actor,
        "document.reprocess",
        citizen_id=doc.citizen_id,
        document_id=doc.id,
        detail={"state": doc.state},
    )
    session.commit()
    background.add_task(_relay, settings)
    return RedirectResponse(safe_next(back or f"{PREFIX}/documents/{doc.id}"), status_code=303)
