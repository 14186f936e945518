"""Verification page: drop a PDF, get DESIGN.md's verdict label, reasons and a report.

Also the public QR page: ``GET /v1/verify/{code}`` answers browsers with
:func:`public_check_page` (type, issuer, issue date and status only).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import Response

from digitizer.api.deps import SessionDep, SettingsDep
from digitizer.services import audit, issuing
from digitizer.services.verify import VerifyService
from digitizer.web.deps import PREFIX, VerifierForm, VerifierPage, render
from signing import report as reports
from signing.validator import Verdict
from storage.db import ECopy

router = APIRouter(prefix=PREFIX, include_in_schema=False)

#: CSS class of each verdict's banner.
TONES = {
    Verdict.VALID: "good",
    Verdict.INVALID: "bad",
    Verdict.INDETERMINATE: "warn",
    Verdict.NO_SIGNATURE: "muted",
    Verdict.UNREADABLE: "muted",
}
STATUS_LABELS = {
    "valid": "Còn hiệu lực",
    "superseded": "Đã có bản mới thay thế",
    "revoked": "Văn bản đã bị thu hồi",
    "expired": "Văn bản đã hết hiệu lực",
}


def _service(request: Request) -> VerifyService:
    service = getattr(request.app.state, "verify", None)
    if service is None:
        service = VerifyService(request.app.state.settings)
        request.app.state.verify = service
    return service


def _words(table: dict[str, str], *groups: tuple[str, ...]) -> list[str]:
    """Codes in words, each once, in order."""
    out: list[str] = []
    for codes in groups:
        for code in codes:
            text = table.get(code, code)
            if text not in out:
                out.append(text)
    return out


@router.get("/verify")
def verify_form(request: Request, user: VerifierPage) -> Response:
    """The form: choose or drop a PDF."""
    return render(request, "verify.html", user)


@router.post("/verify")
def verify_file(
    request: Request,
    user: VerifierForm,
    settings: SettingsDep,
    session: SessionDep,
    file: Annotated[UploadFile, File()],
) -> Response:
    """The verdict of every signature of the PDF, in words, with the report to download."""
    limit = settings.limits.max_upload_bytes
    data = file.file.read(limit + 1)
    name = file.filename or "tep.pdf"
    if len(data) > limit:
        return render(
            request,
            "verify.html",
            user,
            status_code=413,
            error="Tệp lớn hơn giới hạn cho phép.",
        )
    ecopy = issuing.ecopy_of_file(session, hashlib.sha256(data).hexdigest())
    report = _service(request).verify(data, document_status=ecopy.shown_status if ecopy else None)
    if ecopy is not None:
        audit.record(
            session,
            user.actor,
            "ecopy.verify",
            citizen_id=ecopy.citizen_id,
            document_id=ecopy.document_id,
            detail={"ecopy_id": ecopy.id, "status": ecopy.status, "verdict": str(report.verdict)},
        )
    reasons = [reports.REASONS.get(code, code) for code in report.reasons]
    for sig in report.signatures:
        reasons += [
            reports.REASONS.get(c, c)
            for c in sig.reasons
            if reports.REASONS.get(c, c) not in reasons
        ]
    warnings = [reports.WARNINGS.get(code, code) for code in report.warnings]
    for sig in report.signatures:
        warnings += [
            reports.WARNINGS.get(c, c)
            for c in sig.warnings
            if reports.WARNINGS.get(c, c) not in warnings
        ]
    pdf = base64.b64encode(reports.to_pdf(report, filename=name)).decode()
    html = base64.b64encode(reports.to_html(report, filename=name).encode()).decode()
    return render(
        request,
        "verify.html",
        user,
        status_code=422 if report.verdict == Verdict.UNREADABLE else 200,
        result=report,
        label=reports.label(report),
        summary=reports.SUMMARIES[report.verdict],
        tone=TONES[report.verdict],
        reasons=reasons,
        warnings=warnings,
        filename=name,
        status_note=reports.DOCUMENT_STATUS_LABELS.get(report.document_status or ""),
        report_pdf=pdf,
        report_html=html,
        report_name=name.rsplit(".", 1)[0] or "bao-cao",
    )


def public_check_page(request: Request, ecopy: ECopy) -> Response:
    """The public QR page: type, issuer, issue date and status, nothing else."""
    return render(
        request,
        "public_check.html",
        None,
        doc_type=ecopy.doc_type,
        issuer=ecopy.issuer,
        issue_date=ecopy.issued_at.date(),
        status=ecopy.shown_status,
        status_label=STATUS_LABELS.get(ecopy.shown_status, ecopy.shown_status),
        tone={"valid": "good", "revoked": "bad"}.get(ecopy.shown_status, "warn"),
    )


def wants_html(request: Request) -> bool:
    """A browser (``Accept: text/html`` before any JSON) rather than a program."""
    accept = request.headers.get("accept", "")
    if "text/html" not in accept:
        return False
    json_at = accept.find("application/json")
    return json_at < 0 or accept.find("text/html") < json_at
