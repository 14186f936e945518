"""Document view (original, searchable PDF, signed e-copies and their versions, the audit
trail) and the search page (the personal id only in a POSTed form, never in a URL)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from digitizer.api.deps import SessionDep, SettingsDep, StoreDep
from digitizer.doctypes import DOC_TYPES
from digitizer.errors import InvalidPersonalIdError, InvalidRequestError
from digitizer.services import access, audit, review
from digitizer.services import documents as docs
from digitizer.services import search as svc
from digitizer.services.issuing import verification_url
from digitizer.services.wiring import citizen_registry
from digitizer.web.deps import PREFIX, ClerkForm, ClerkPage, render
from storage.db import Document, ECopy
from storage.objects import original_key

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/documents/{document_id}")
def document_page(
    request: Request,
    document_id: str,
    user: ClerkPage,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Everything about one document (an audited read, as is its trail)."""
    doc = docs.get_document(session, document_id, user.actor)
    ecopies = list(
        session.scalars(
            select(ECopy).where(ECopy.document_id == doc.id).order_by(ECopy.issued_at.desc())
        )
    )
    events, _ = audit.search(session, document_id=doc.id, limit=100)
    audit.record(
        session,
        user.actor,
        "document.read",
        citizen_id=doc.citizen_id,
        document_id=doc.id,
        detail={"part": "page", "events": len(events)},
    )
    return render(
        request,
        "document.html",
        user,
        doc=doc,
        view=review.view(doc),
        ecopies=[(e, verification_url(settings, e.code)) for e in ecopies],
        events=events,
        results=doc.results or {},
    )


def _audit_part(session: SessionDep, user: ClerkPage, doc: Document, part: str) -> None:
    audit.record(
        session,
        user.actor,
        "document.read",
        citizen_id=doc.citizen_id,
        document_id=doc.id,
        detail={"part": part},
    )


@router.get("/documents/{document_id}/original")
def original(document_id: str, user: ClerkPage, session: SessionDep, store: StoreDep) -> Response:
    """The uploaded file as it was received (a short-lived link; an audited read)."""
    doc = docs.get_document(session, document_id, user.actor)
    _audit_part(session, user, doc, "original")
    return RedirectResponse(store.presigned_get(original_key(doc.sha256)), status_code=307)


@router.get("/documents/{document_id}/searchable.pdf")
def searchable(document_id: str, user: ClerkPage, session: SessionDep, store: StoreDep) -> Response:
    """The searchable PDF (a short-lived link; an audited read)."""
    doc = docs.get_document(session, document_id, user.actor)
    link = docs.derived_link(store, doc, "searchable_pdf")
    _audit_part(session, user, doc, "searchable_pdf")
    return RedirectResponse(link, status_code=307)


@router.get("/ecopies/{ecopy_id}/download")
def ecopy_download(
    ecopy_id: str, user: ClerkPage, session: SessionDep, store: StoreDep
) -> Response:
    """The signed e-copy (a short-lived link; an audited read)."""
    ecopy = access.visible_ecopy(session, user.actor, ecopy_id)
    link = store.presigned_get(ecopy.object_key)
    audit.record(
        session,
        user.actor,
        "ecopy.download",
        citizen_id=ecopy.citizen_id,
        document_id=ecopy.document_id,
        detail={"ecopy_id": ecopy.id, "status": ecopy.status},
    )
    return RedirectResponse(link, status_code=307)


@router.get("/search")
def search_form(request: Request, user: ClerkPage) -> Response:
    """The search form."""
    return render(request, "search.html", user, doc_types=DOC_TYPES, form={})


def _date(value: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequestError("dates are YYYY-MM-DD") from None


@router.post("/search")
def search(
    request: Request,
    user: ClerkForm,
    session: SessionDep,
    settings: SettingsDep,
    citizen_pid: Annotated[str, Form(max_length=40)] = "",
    doc_type: Annotated[str, Form(max_length=50)] = "",
    doc_number: Annotated[str, Form(max_length=100)] = "",
    date_from: Annotated[str, Form(max_length=10)] = "",
    date_to: Annotated[str, Form(max_length=10)] = "",
    issued_from: Annotated[str, Form(max_length=10)] = "",
    issued_to: Annotated[str, Form(max_length=10)] = "",
    q: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Results, newest first (audited as ``search.query``; the personal id never leaves
    this request and is not shown again)."""
    form = {
        "doc_type": doc_type, "doc_number": doc_number, "date_from": date_from,
        "date_to": date_to, "issued_from": issued_from, "issued_to": issued_to, "q": q,
    }  # fmt: skip
    try:
        query = svc.SearchQuery(
            citizen_pid=citizen_pid.strip() or None,
            doc_type=doc_type or None,
            doc_number=doc_number.strip() or None,
            date_from=_date(date_from),
            date_to=_date(date_to),
            issued_from=_date(issued_from),
            issued_to=_date(issued_to),
            q=q.strip() or None,
            limit=svc.MAX_LIMIT,
        )
        page = svc.search(session, citizen_registry(settings), user.actor, query)
    except (InvalidRequestError, InvalidPersonalIdError) as exc:
        message = (
            "Số định danh cá nhân không hợp lệ (12 chữ số)."
            if isinstance(exc, InvalidPersonalIdError)
            else "Điều kiện tìm kiếm không hợp lệ (ngày viết dạng năm-tháng-ngày, từ ngày "
            "không sau đến ngày)."
        )
        return render(
            request, "search.html", user, status_code=422, doc_types=DOC_TYPES, form=form,
            error=message,
        )  # fmt: skip
    return render(
        request, "search.html", user, doc_types=DOC_TYPES, form=form, results=page.items,
        more=page.next_cursor is not None,
    )  # fmt: skip
