"""Vault export: a citizen's e-copies as a package signed by the office (ZIP + manifest + CMS).

The citizen must be present: the request carries their identity token (header
``X-Citizen-Token``), which names them (no personal id in the URL or the body). An
approver of the office that signs the package makes the request and states its purpose;
both are written to the audit trail.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import Response
from pydantic import BaseModel, Field

from digitizer.api.deps import Approver, SessionDep, SettingsDep, StoreDep
from digitizer.models import Problem
from digitizer.services import export as svc
from digitizer.services.identity import verify_citizen_token

router = APIRouter(prefix="/v1", tags=["vault"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid key, or no valid citizen token"},
    403: {"model": Problem, "description": "Not an approver"},
    404: {"model": Problem, "description": "No vault for this citizen, or no key for the office"},
    422: {"model": Problem, "description": "No purpose stated"},
    503: {"model": Problem, "description": "No signing key configured, or storage unavailable"},
}


class ExportRequest(BaseModel):
    purpose: str = Field(
        min_length=1, max_length=300, description="Why the vault is exported (audited)"
    )


@router.post(
    "/citizens/export",
    responses={
        **_PROBLEMS,
        200: {"content": {"application/zip": {}}, "description": "The signed package"},
    },
    response_class=Response,
)
def export_vault(
    body: ExportRequest,
    actor: Approver,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    x_citizen_token: Annotated[
        str | None, Header(description="OpenID Connect ID token of the citizen")
    ] = None,
) -> Response:
    """The citizen's current e-copies, ``manifest.json`` and its detached CMS signature
    ``manifest.json.p7s`` by the approver's office, as one ZIP (see ``sohoa verify-package``)."""
    identity = verify_citizen_token(settings, x_citizen_token)
    purpose = svc.check_purpose(body.purpose)
    citizen = svc.find_citizen(session, settings, identity.pid)
    package = svc.build_package(session, settings, store, citizen, actor, purpose=purpose)
    return Response(
        content=package.data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="vault-{citizen.id}.zip"'},
    )
