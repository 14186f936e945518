"""Staff routes of the citizen vault: e-copy metadata and revocation by the issuing office."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from digitizer.api.deps import Approver, Clerk, Purpose, SessionDep, SettingsDep
from digitizer.config import Settings
from digitizer.models import ECopyDetail, Problem, RevokeRequest
from digitizer.services import access, audit, vault
from digitizer.services.issuing import verification_url
from storage.db import ECopy

router = APIRouter(prefix="/v1", tags=["vault"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid key"},
    403: {"model": Problem, "description": "Wrong role or office"},
    404: {"model": Problem, "description": "No such e-copy"},
}


def ecopy_detail(settings: Settings, ecopy: ECopy) -> ECopyDetail:
    """The staff view of an e-copy."""
    return ECopyDetail(
        id=ecopy.id,
        document_id=ecopy.document_id,
        citizen_ref=ecopy.citizen_id,
        doc_type=ecopy.doc_type,
        doc_number=ecopy.doc_number,
        office=ecopy.office_code,
        issuer=ecopy.issuer,
        issued_at=ecopy.issued_at,
        status=ecopy.status,
        valid_until=ecopy.valid_until.date() if ecopy.valid_until else None,
        fields=dict(ecopy.fields or {}),
        superseded_by=ecopy.superseded_by,
        revoked_at=ecopy.revoked_at,
        revocation_reason=ecopy.revocation_reason,
        updated_at=ecopy.updated_at,
        verify_url=verification_url(settings, ecopy.code),
        download_url=f"/v1/ecopies/{ecopy.id}/download",
    )


@router.get("/ecopies/{ecopy_id}", response_model=ECopyDetail, responses=_PROBLEMS)
def get_ecopy(
    ecopy_id: str,
    actor: Clerk,
    session: SessionDep,
    settings: SettingsDep,
    purpose: Purpose = None,
) -> ECopyDetail:
    """An e-copy's metadata: citizen reference, type, fields, status, versions (audited).
    Staff see their own office's e-copies (another office's with an allowed X-Purpose)."""
    ecopy = access.visible_ecopy(session, actor, ecopy_id, purpose)
    audit.record(
        session,
        actor,
        "ecopy.read",
        citizen_id=ecopy.citizen_id,
        document_id=ecopy.document_id,
        purpose=purpose,
        detail={"ecopy_id": ecopy.id, "status": ecopy.status},
    )
    return ecopy_detail(settings, ecopy)


@router.post(
    "/ecopies/{ecopy_id}/revoke",
    response_model=ECopyDetail,
    responses={**_PROBLEMS, 409: {"model": Problem, "description": "Already revoked"}},
)
def revoke_ecopy(
    ecopy_id: str,
    body: RevokeRequest,
    actor: Approver,
    session: SessionDep,
    settings: SettingsDep,
) -> ECopyDetail:
    """Revoke an e-copy (an approver of the issuing office, or admin): at once the QR check,
    verification reports and portal reads say ``revoked``; subscribers are notified."""
    ecopy = vault.revoke(session, ecopy_id, actor, body.reason.strip() or body.reason)
    return ecopy_detail(settings, ecopy)
