"""Portal API: consent grants made by citizens, and the e-copies those grants open.

Two credentials work together. The portal key (role ``portal``) says which client
is calling; an ID token of the identity provider (header ``X-Citizen-Token``) says
the citizen is present. Creating, listing and revoking grants needs both: a portal
key alone cannot grant itself access. Reading documents needs the portal key and an
active grant of that citizen to that client; without one the answer is the same
404 as for an unknown citizen.

Revoked and superseded e-copies are shown with their status but without a link: a
portal must not reuse them, and a copy downloaded earlier verifies as revoked or
superseded anyway.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic_core import to_json

from digitizer.api.deps import (
    PresentedKey,
    SessionDep,
    SettingsDep,
    StoreDep,
    key_for,
    requires,
    unavailable_as_503,
)
from digitizer.api.lean import lean_route
from digitizer.config import Settings
from digitizer.errors import NotFoundError
from digitizer.models import (
    ConsentGrantPublic,
    ConsentList,
    ConsentRequest,
    PortalDocumentDetail,
    PortalDocumentList,
    Problem,
)
from digitizer.services import consent, vault
from digitizer.services.citizens import CitizenRegistry
from digitizer.services.identity import CitizenIdentity, verify_citizen_token
from digitizer.services.issuing import verification_url
from digitizer.services.keys import Actor, require_role
from digitizer.services.portal_reads import Grant, PortalReads
from digitizer.services.wiring import citizen_registry
from storage.db import ConsentGrant, ECopyStatus, shown_status, utcnow

router = APIRouter(prefix="/v1/portal", tags=["portal"])

_ROLES = ("portal",)
#: Portal clients (admin passes every role check).
Portal = Annotated[Actor, Depends(requires(*_ROLES))]
#: The same, for the two polling reads, which check the key in their own statement.
PortalKey = Annotated[PresentedKey, Depends(key_for(*_ROLES))]

CitizenToken = Annotated[
    str | None,
    Header(description="OpenID Connect ID token of the citizen (identity provider)"),
]

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid key, or no valid citizen token"},
    403: {"model": Problem, "description": "Not a portal key"},
    404: {"model": Problem, "description": "Unknown citizen, no active grant, or no such item"},
}

_NO_ACCESS = "no such citizen, or no active consent for this client"


def _registry(request: Request) -> CitizenRegistry:
    registry = getattr(request.app.state, "citizens", None)
    if registry is None:
        registry = citizen_registry(request.app.state.settings)
        request.app.state.citizens = registry
    return registry


def _identity(settings: Settings, token: str | None) -> CitizenIdentity:
    return verify_citizen_token(settings, token)


def _grant_public(grant: ConsentGrant) -> ConsentGrantPublic:
    return ConsentGrantPublic(
        id=grant.id,
        citizen_ref=grant.citizen_id,
        client_id=grant.client_id,
        doc_types=list(grant.doc_types or []),
        purpose=grant.purpose,
        created_at=grant.created_at,
        expires_at=grant.expires_at,
        revoked_at=grant.revoked_at,
        status=consent.status_of(grant),
    )


# -- consent ------------------------------------------------------------------------------
@router.post(
    "/consents",
    status_code=201,
    response_model=ConsentGrantPublic,
    responses={**_PROBLEMS, 422: {"model": Problem, "description": "Invalid grant"}},
)
def create_consent(
    body: ConsentRequest,
    request: Request,
    actor: Portal,
    session: SessionDep,
    settings: SettingsDep,
    x_citizen_token: CitizenToken = None,
) -> ConsentGrantPublic:
    """The citizen (ID token) lets a portal client read some document types for a purpose,
    until an expiry (at most ``SOHOA_VAULT__MAX_CONSENT_DAYS``). Returns the grant and the
    citizen's opaque reference ``citizen_ref`` for the portal API."""
    identity = _identity(settings, x_citizen_token)
    expires_at = consent.resolve_expiry(
        body.expires_at, body.valid_days, settings.vault.max_consent_days, utcnow()
    )
    citizen = _registry(request).get_or_create(session, identity.pid)
    grant = consent.create_grant(
        session,
        actor,
        citizen_id=citizen.id,
        client_id=body.client_id or actor.key_id,
        doc_types=body.doc_types,
        purpose=body.purpose,
        expires_at=expires_at,
    )
    return _grant_public(grant)


@router.get("/consents", response_model=ConsentList, responses=_PROBLEMS)
def list_consents(
    request: Request,
    actor: Portal,
    session: SessionDep,
    settings: SettingsDep,
    x_citizen_token: CitizenToken = None,
) -> ConsentList:
    """The citizen's grants (active, expired, revoked), newest first."""
    identity = _identity(settings, x_citizen_token)
    citizen = _registry(request).find(session, identity.pid)
    if citizen is None:
        return ConsentList(citizen_ref=None, grants=[])
    grants = consent.grants_of(session, actor, citizen.id)
    return ConsentList(citizen_ref=citizen.id, grants=[_grant_public(g) for g in grants])


@router.delete("/consents/{grant_id}", response_model=ConsentGrantPublic, responses=_PROBLEMS)
def revoke_consent(
    grant_id: str,
    request: Request,
    actor: Portal,
    session: SessionDep,
    settings: SettingsDep,
    x_citizen_token: CitizenToken = None,
) -> ConsentGrantPublic:
    """The citizen revokes one of their grants; reads under it stop at once."""
    identity = _identity(settings, x_citizen_token)
    citizen = _registry(request).find(session, identity.pid)
    if citizen is None:
        raise NotFoundError("no consent grant with this id")
    return _grant_public(consent.revoke_grant(session, actor, citizen.id, grant_id))


# -- documents ----------------------------------------------------------------------------
# The two reads below are every portal's polling loop: async, over ``portal_reads`` (the
# async PostgreSQL pool where there is one: the key is checked in the read's own round
# trip), answered without a second validation pass.
def _reads(request: Request) -> PortalReads:
    reads: PortalReads = request.app.state.portal_reads
    return reads


def _json(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(to_json(body), media_type="application/json", headers=headers)


def _document(settings: Settings, ecopy: Any) -> dict[str, Any]:
    """An e-copy (``EcopyView``, ORM object or :data:`vault.LISTED` row) as portals see it."""
    return {
        "id": ecopy.id,
        "doc_type": ecopy.doc_type,
        "issuer": ecopy.issuer,
        "issued_at": ecopy.issued_at,
        "status": shown_status(ecopy.status, ecopy.valid_until),
        "valid_until": ecopy.valid_until.date() if ecopy.valid_until else None,
        "fields": dict(ecopy.fields or {}),
        "verify_url": verification_url(settings, ecopy.code),
    }


def _ref(citizen_ref: str) -> str:
    """The citizen reference to look up: one that cannot exist matches nothing (the same
    404 as any other, after the key's checks)."""
    return citizen_ref if 0 < len(citizen_ref) <= 32 else ""


def _purposes(grants: list[Grant]) -> str:
    return "; ".join(dict.fromkeys(g.purpose for g in grants))[:300]


@router.get(
    "/citizens/{citizen_ref}/documents",
    response_model=PortalDocumentList,
    responses={**_PROBLEMS, 304: {"description": "Not modified (If-None-Match)"}},
)
async def list_documents(
    citizen_ref: str,
    request: Request,
    presented: PortalKey,
    settings: SettingsDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Any:
    """The citizen's current e-copies of the types granted to this client (valid ones, and
    revoked ones nothing replaced yet). Send the ``ETag`` back in ``If-None-Match``: 304
    while nothing changed (not audited: no personal data is returned)."""
    reads = _reads(request)
    found = reads.listing(presented.key, _ref(citizen_ref))
    actor, grants, ecopies = await presented.check(found)
    require_role(actor, _ROLES)
    if not grants:
        raise NotFoundError(_NO_ACCESS)
    types = consent.granted_types(grants)
    etag = vault.list_etag(ecopies, scope=",".join(sorted(types)))
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if vault.etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    await unavailable_as_503(
        reads.record(
            actor,
            "portal.documents.list",
            citizen_id=citizen_ref,
            purpose=_purposes(grants),
            detail={
                "client_id": actor.key_id,
                "grant_ids": [g.id for g in grants],
                "count": len(ecopies),
            },
        )
    )
    documents = [_document(settings, e) for e in ecopies]
    return _json({"citizen_ref": citizen_ref, "documents": documents}, headers)


@router.get(
    "/citizens/{citizen_ref}/documents/{ecopy_id}",
    response_model=PortalDocumentDetail,
    responses=_PROBLEMS,
)
async def fetch_document(
    citizen_ref: str,
    ecopy_id: str,
    request: Request,
    presented: PortalKey,
    settings: SettingsDep,
    store: StoreDep,
) -> Any:
    """One e-copy with a short-lived presigned link to the signed PDF (an audited read
    under the grant's purpose). Superseded, revoked and expired e-copies come without a
    link."""
    reads = _reads(request)
    found = reads.one(presented.key, _ref(citizen_ref), ecopy_id if len(ecopy_id) <= 32 else "")
    actor, grants, ecopy = await presented.check(found)
    require_role(actor, _ROLES)
    if not grants:
        raise NotFoundError(_NO_ACCESS)
    grant = consent.grant_for(grants, ecopy.doc_type) if ecopy is not None else None
    if ecopy is None or ecopy.citizen_id != citizen_ref or grant is None:
        raise NotFoundError("no such document for this citizen and client")
    link = expires = None
    if shown_status(ecopy.status, ecopy.valid_until) == ECopyStatus.VALID:
        assert ecopy.object_key is not None
        seconds = settings.vault.link_seconds
        # Signed locally when the region is configured; else the SDK may ask the server
        # once for it, which must not block the event loop.
        sign = functools.partial(store.presigned_get, ecopy.object_key, seconds)
        link = sign() if settings.s3.region else await run_in_threadpool(sign)
        expires = utcnow() + timedelta(seconds=seconds)
    await unavailable_as_503(
        reads.record(
            actor,
            "portal.ecopy.link" if link else "portal.ecopy.read",
            citizen_id=citizen_ref,
            document_id=ecopy.document_id,
            purpose=grant.purpose,
            detail={
                "client_id": actor.key_id,
                "grant_id": grant.id,
                "ecopy_id": ecopy.id,
                "status": ecopy.status,
            },
        )
    )
    body = _document(settings, ecopy)
    body.update(
        superseded_by=ecopy.superseded_by,
        revoked_at=ecopy.revoked_at,
        download_url=link,
        link_expires_at=expires,
    )
    return _json(body)


#: The two polling reads, served in front of FastAPI's router (``digitizer.api.lean``).
LEAN_ROUTES = [
    lean_route(f"{router.prefix}/citizens/{{citizen_ref}}/documents", list_documents),
    lean_route(f"{router.prefix}/citizens/{{citizen_ref}}/documents/{{ecopy_id}}", fetch_document),
]
