"""Verification of signed e-copies by departments (upload a PDF, get a verdict)."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response

from digitizer.api.deps import SessionDep, SettingsDep, requires
from digitizer.errors import FileTooLargeError, SohoaError, UnreadablePdfError
from digitizer.models import Problem, PublicCheck
from digitizer.services import audit, issuing
from digitizer.services.keys import Actor
from digitizer.services.verify import VerifyService
from digitizer.web.routes import verify as web_verify
from signing import report as reports
from signing.validator import Verdict

router = APIRouter(prefix="/v1", tags=["verification"])

#: Departments verifying e-copies, and staff who check uploads.
Verifier = Annotated[Actor, Depends(requires("verifier", "clerk", "approver"))]


def _service(request: Request) -> VerifyService:
    service = getattr(request.app.state, "verify", None)
    if service is None:
        service = VerifyService(request.app.state.settings)
        request.app.state.verify = service
    return service


@router.post(
    "/verify",
    responses={
        200: {"description": "A verdict (valid, invalid, indeterminate, no_signature)"},
        401: {"model": Problem},
        403: {"model": Problem},
        422: {"model": Problem, "description": "Not a readable PDF"},
        503: {"model": Problem, "description": "Verification not configured"},
    },
)
def verify(
    request: Request,
    actor: Verifier,
    settings: SettingsDep,
    session: SessionDep,
    file: Annotated[UploadFile, File(description="The signed PDF to verify")],
    format: Annotated[
        Literal["json", "detailed", "html", "pdf", "xml"], Query(description="Report format")
    ] = "json",
) -> Response:
    """Verify every signature of a PDF; the verdict and reasons are in Vietnamese for people.

    Runs in the threadpool (validation is CPU-bound and must not block the event loop).
    """
    limit = settings.limits.max_upload_bytes
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise FileTooLargeError(f"the file is larger than {limit} bytes")
    ecopy = issuing.ecopy_of_file(session, hashlib.sha256(data).hexdigest())
    status = ecopy.shown_status if ecopy is not None else None
    report = _service(request).verify(data, etsi=format == "xml", document_status=status)
    if ecopy is not None:
        # Verifying an e-copy issued here tells the verifier about that citizen's document.
        audit.record(
            session,
            actor,
            "ecopy.verify",
            citizen_id=ecopy.citizen_id,
            document_id=ecopy.document_id,
            detail={"ecopy_id": ecopy.id, "status": ecopy.status, "verdict": str(report.verdict)},
        )
    if report.verdict == Verdict.UNREADABLE:
        raise UnreadablePdfError(
            report.error or "the file is not a readable PDF", label=reports.label(report)
        )
    name = file.filename or "document.pdf"
    if format == "html":
        return HTMLResponse(reports.to_html(report, filename=name))
    if format == "pdf":
        return Response(reports.to_pdf(report, filename=name), media_type="application/pdf")
    if format == "xml":
        xml = reports.to_etsi_xml(report)
        if xml is None:
            raise SohoaError("an ETSI report is not available for this file")
        return Response(xml, media_type="application/xml")
    body: dict[str, Any] = reports.to_json(report, detailed=format == "detailed")
    return JSONResponse(body)


#: The QR check states the document's standing (the signature itself is checked by
#: POST /v1/verify): a revoked or replaced e-copy must not be taken as current.
_STATUS_LABELS = {
    "valid": "Hợp lệ",
    "superseded": "Đã có bản mới thay thế",
    "revoked": "Văn bản đã bị thu hồi",
    "expired": "Văn bản đã hết hiệu lực",
}


@router.get(
    "/verify/{code}",
    response_model=PublicCheck,
    responses={404: {"model": Problem, "description": "Unknown code"}},
)
def public_check(code: str, request: Request, session: SessionDep) -> PublicCheck | Response:
    """Public QR check (no key): only type, issuer, issue date and status (a page for
    browsers, JSON for programs)."""
    ecopy = issuing.by_code(session, code)
    if web_verify.wants_html(request):
        return web_verify.public_check_page(request, ecopy)
    return PublicCheck(
        status=ecopy.shown_status,
        label=_STATUS_LABELS.get(ecopy.shown_status, ecopy.shown_status),
        doc_type=ecopy.doc_type,
        issuer=ecopy.issuer,
        issue_date=ecopy.issued_at.date().isoformat(),
    )
