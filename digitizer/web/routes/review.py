"""The review queue: the page image beside the recognised text, the proposed type and
fields (low-confidence ones highlighted), a correction form usable by keyboard, approve
(and, for approvers, approve and sign)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from digitizer.api.deps import SessionDep, SettingsDep, StoreDep
from digitizer.api.routes.documents import _issuing
from digitizer.doctypes import DOC_TYPES
from digitizer.errors import ForbiddenError, InvalidCorrectionError, NotFoundError
from digitizer.services import review
from digitizer.services.keys import Actor
from digitizer.web import labels
from digitizer.web.deps import PREFIX, ClerkForm, ClerkPage, render
from storage.db import Document

router = APIRouter(prefix=PREFIX, include_in_schema=False)

FIELD_PREFIX = "field."


async def _form(request: Request) -> FormData:
    return await request.form()


FormDep = Annotated[FormData, Depends(_form)]


def signing_office(settings: Any, actor: Actor) -> str | None:
    """The office whose key an approver signs with here (None: cannot sign)."""
    if actor.role not in ("approver", "admin"):
        return None
    codes = [o.code for o in settings.signing.offices]
    if actor.office is not None:
        return actor.office if actor.office in codes else None
    return codes[0] if len(codes) == 1 else None


@router.get("/review")
def queue(request: Request, user: ClerkPage, session: SessionDep) -> Response:
    """Documents of your office waiting for review, oldest first."""
    page = review.list_queue(session, user.actor, limit=review.MAX_PAGE_LIMIT)
    items = [(doc, review.view(doc)) for doc in page.documents]
    return render(request, "review_queue.html", user, items=items, more=page.next_cursor)


def _page(
    request: Request,
    user: ClerkPage,
    settings: Any,
    store: StoreDep,
    doc: Document,
    *,
    status_code: int = 200,
    error: str | None = None,
    typed: dict[str, str] | None = None,
    saved: bool = False,
) -> Response:
    view = review.view(doc)
    pages = review.ocr_pages(store, doc)
    names = list(view.expected_fields) + [n for n in view.fields if n not in view.expected_fields]
    return render(
        request,
        "review.html",
        user,
        status_code=status_code,
        doc=doc,
        view=view,
        pages=pages,
        field_names=names,
        doc_types=DOC_TYPES,
        can_sign=signing_office(settings, user.actor) is not None,
        reviewable=doc.state in review.REVIEWABLE,
        error=error,
        typed=typed or {},
        saved=saved,
    )


@router.get("/review/{document_id}")
def review_page(
    request: Request,
    document_id: str,
    user: ClerkPage,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    saved: bool = False,
) -> Response:
    """The review page (an audited read)."""
    doc = review.read(session, user.actor, document_id)
    return _page(request, user, settings, store, doc, saved=saved)


@router.get("/review/{document_id}/pages/{index}.png")
def page_image(
    document_id: str, index: int, user: ClerkPage, session: SessionDep, store: StoreDep
) -> Response:
    """Page ``index`` as a PNG, served from here (the page's CSP allows only this site)."""
    review.page_image_link(session, store, user.actor, document_id, index)
    doc = session.get(Document, document_id)
    if doc is None:  # pragma: no cover - page_image_link found it
        raise NotFoundError("no document with this id")
    return Response(
        store.get_bytes(review.page_image_key(doc, index)),
        media_type="image/png",
        headers={"Cache-Control": "private, max-age=300"},
    )


def _correction(
    doc: Document, form: FormData
) -> tuple[str | None, dict[str, str | None], dict[str, str]]:
    """What the clerk changed: the type (None: unchanged) and the changed field values
    (None: emptied, i.e. removed); also everything typed, to show it again on an error."""
    view = review.view(doc)
    typed = {k[len(FIELD_PREFIX) :]: str(v) for k, v in form.items() if k.startswith(FIELD_PREFIX)}
    chosen = str(form.get("doc_type") or "") or None
    doc_type = chosen if chosen and chosen != view.doc_type else None
    fields: dict[str, str | None] = {}
    for name, value in typed.items():
        value = " ".join(value.split())
        current = view.fields[name].value if name in view.fields else None
        if value == (current or ""):
            continue
        fields[name] = value or None
    if doc_type is not None:
        # Another type has other fields: keep only those of the new type the clerk typed.
        fields = {n: v for n, v in fields.items() if v is not None}
    return doc_type, fields, typed


def _correction_message(exc: InvalidCorrectionError) -> str:
    name = exc.detail.split(":", 1)[0].strip()
    if name == "doc_type":
        return "Cần chọn loại giấy tờ trước khi duyệt."
    if " " in name or not name:
        return labels.PROBLEMS["invalid-correction"]
    hint = ""
    base = name.removeprefix("husband_").removeprefix("wife_")
    if base in ("date_of_birth", "issue_date", "date_of_death", "valid_until"):
        hint = " Ngày viết theo dạng năm-tháng-ngày, ví dụ 2025-06-09."
    elif base == "personal_id":
        hint = " Số định danh cá nhân gồm 12 chữ số."
    elif base == "sex":
        hint = " Giới tính là Nam hoặc Nữ."
    return f"Giá trị không hợp lệ: {labels.field(name)}.{hint}"


@router.post("/review/{document_id}")
def review_submit(
    request: Request,
    document_id: str,
    user: ClerkForm,
    form: FormDep,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
) -> Response:
    """Save corrections (the default action: Enter), approve, or approve and sign."""
    action = str(form.get("action") or "save")
    if action == "approve_sign" and signing_office(settings, user.actor) is None:
        raise ForbiddenError("only an approver of an office with a signing key signs")
    doc = review.get_for_review(session, user.actor, document_id)
    doc_type, fields, typed = _correction(doc, form)
    try:
        if action == "save":
            if doc_type is not None or fields:
                review.correct(session, store, user.actor, document_id, doc_type, fields)
            return RedirectResponse(
                f"{PREFIX}/review/{document_id}?saved=1#review-form", status_code=303
            )
        doc, _ = review.approve(session, store, user.actor, document_id, doc_type, fields)
    except InvalidCorrectionError as exc:
        session.rollback()
        doc = review.get_for_review(session, user.actor, document_id)
        return _page(
            request, user, settings, store, doc, status_code=422,
            error=_correction_message(exc), typed=typed,
        )  # fmt: skip
    if action == "approve_sign":
        office = signing_office(settings, user.actor)
        assert office is not None
        session.commit()
        _issuing(request).issue(session, document_id, user.actor, office, user.actor.name)
    return RedirectResponse(f"{PREFIX}/documents/{document_id}", status_code=303)
