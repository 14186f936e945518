"""Webhook subscribers (admin): register at an allow-listed host, list, rotate the
secret, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from digitizer.api.deps import SessionDep, SettingsDep, requires
from digitizer.models import Problem
from digitizer.services import webhooks
from digitizer.services.keys import Actor
from storage.db import Subscriber

router = APIRouter(prefix="/v1", tags=["webhooks"])

Admin = Annotated[Actor, Depends(requires("admin"))]

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid key"},
    403: {"model": Problem, "description": "Not an admin"},
    404: {"model": Problem, "description": "No such subscriber"},
    422: {"model": Problem, "description": "URL not allowed or client unknown"},
}


class SubscriberCreate(BaseModel):
    """A system to notify: its name, its HTTPS endpoint, and the portal client whose
    consent grants decide which citizens' events it receives."""

    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=500)
    client_id: str = Field(min_length=1, max_length=32, description="Key id of a portal client")


class SubscriberPublic(BaseModel):
    id: str
    name: str
    url: str
    client_id: str | None
    created_at: datetime
    revoked_at: datetime | None
    deliveries: dict[str, int] = Field(
        default_factory=dict, description="Deliveries by status (pending, delivered, failed)"
    )


class SubscriberCreated(SubscriberPublic):
    secret: str = Field(description="HMAC secret for X-Sohoa-Signature; shown once")


class SubscriberRotated(SubscriberCreated):
    previous_secret_until: datetime = Field(
        description="Until then deliveries carry the old secret's signature too"
    )


def _public(session: Any, row: Subscriber) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "url": row.url,
        "client_id": row.client_id,
        "created_at": row.created_at,
        "revoked_at": row.revoked_at,
        "deliveries": webhooks.delivery_status(session, row.id),
    }


@router.post("/subscribers", status_code=201, response_model=SubscriberCreated, responses=_PROBLEMS)
def create_subscriber(
    body: SubscriberCreate, session: SessionDep, settings: SettingsDep, actor: Admin
) -> SubscriberCreated:
    """Register a webhook subscriber; the signing secret is in this answer only."""
    row, secret = webhooks.register(
        session, settings, actor, name=body.name, url=body.url, client_id=body.client_id
    )
    return SubscriberCreated(**_public(session, row), secret=secret)


@router.get("/subscribers", response_model=list[SubscriberPublic], responses=_PROBLEMS)
def list_subscribers(session: SessionDep, actor: Admin) -> list[SubscriberPublic]:
    """Every subscriber (revoked ones too) with its delivery counts."""
    return [SubscriberPublic(**_public(session, row)) for row in webhooks.list_subscribers(session)]


@router.post(
    "/subscribers/{subscriber_id}/secret",
    response_model=SubscriberRotated,
    responses={**_PROBLEMS, 409: {"model": Problem, "description": "Subscriber revoked"}},
)
def rotate_subscriber_secret(
    subscriber_id: str, session: SessionDep, settings: SettingsDep, actor: Admin
) -> SubscriberRotated:
    """Give a subscriber a new signing secret (in this answer only). Deliveries carry both
    the new and the old secret's signatures (``X-Sohoa-Signature: sha256=NEW, sha256=OLD``)
    for ``SOHOA_WEBHOOKS__ROTATION_GRACE_S`` (a day by default), then the new one only."""
    row, secret = webhooks.rotate_secret(session, settings, actor, subscriber_id)
    assert row.previous_secret_until is not None
    return SubscriberRotated(
        **_public(session, row), secret=secret, previous_secret_until=row.previous_secret_until
    )


@router.delete("/subscribers/{subscriber_id}", status_code=204, responses=_PROBLEMS)
def revoke_subscriber(subscriber_id: str, session: SessionDep, actor: Admin) -> Response:
    """Stop notifying a subscriber (pending deliveries are dropped as failed)."""
    webhooks.revoke(session, actor, subscriber_id)
    return Response(status_code=204)
