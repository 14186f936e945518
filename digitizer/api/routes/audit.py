"""Reading the audit trail: admins query it all; staff see one document's trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from digitizer.api.deps import Clerk, SessionDep, requires
from digitizer.models import AuditEventPublic, AuditPage, Problem
from digitizer.services import audit
from digitizer.services import documents as docs
from digitizer.services.keys import Actor
from storage.db import AuditEvent

router = APIRouter(prefix="/v1", tags=["audit"])

Admin = Annotated[Actor, Depends(requires("admin"))]

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid key"},
    403: {"model": Problem, "description": "Wrong role"},
    422: {"model": Problem, "description": "Bad filter or cursor"},
}

_Id = Annotated[str | None, Query(max_length=64)]


def _public(event: AuditEvent) -> AuditEventPublic:
    return AuditEventPublic(
        seq=event.seq,
        at=event.at,
        request_id=event.request_id,
        actor_id=event.actor_id,
        actor_name=event.actor_name,
        role=event.role,
        office=event.office,
        action=event.action,
        citizen_id=event.citizen_id,
        document_id=event.document_id,
        purpose=event.purpose,
        detail=dict(event.detail or {}),
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


@router.get("/audit", response_model=AuditPage, responses=_PROBLEMS)
def query_audit(
    actor: Admin,
    session: SessionDep,
    citizen_id: _Id = None,
    document_id: _Id = None,
    actor_id: _Id = None,
    action: Annotated[str | None, Query(max_length=50)] = None,
    since: Annotated[datetime | None, Query(description="inclusive (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="exclusive (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
) -> AuditPage:
    """Audit events matching every filter, newest first (admins only; this read is audited)."""
    events, following = audit.search(
        session,
        citizen_id=citizen_id,
        document_id=document_id,
        actor_id=actor_id,
        action=action,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    page = AuditPage(events=[_public(e) for e in events], next_cursor=following)
    filters = {
        "actor_id": actor_id,
        "action": action,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "cursor": cursor,
    }
    audit.record(
        session,
        actor,
        "audit.read",
        citizen_id=citizen_id,
        document_id=document_id,
        detail={
            "filters": {k: v for k, v in filters.items() if v is not None},
            "count": len(events),
        },
    )
    return page


@router.get(
    "/documents/{document_id}/audit",
    response_model=AuditPage,
    responses={**_PROBLEMS, 404: {"model": Problem, "description": "No such document"}},
)
def document_audit(
    document_id: str,
    actor: Clerk,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
) -> AuditPage:
    """One document's audit trail, newest first, for staff of its office (audited)."""
    doc = docs.get_document(session, document_id, actor)
    events, following = audit.search(session, document_id=doc.id, limit=limit, cursor=cursor)
    page = AuditPage(events=[_public(e) for e in events], next_cursor=following)
    audit.record(
        session,
        actor,
        "audit.read",
        citizen_id=doc.citizen_id,
        document_id=doc.id,
        detail={"count": len(events)},
    )
    return page
