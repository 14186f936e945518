"""Change notifications to subscribers: HMAC-signed webhooks carrying ids and statuses.

An event about an e-copy (issued, superseded, revoked) becomes one delivery row
per active subscriber whose portal client holds an active, unexpired consent
grant from that e-copy's citizen covering its document type. The rows are
written in the caller's transaction (they land or vanish with the change) and
sent later by the worker's maintenance tick, retried with backoff.

Payloads carry ids and statuses only, never fields or personal data.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.db import ConsentGrant, ECopy, Subscriber, WebhookDelivery, utcnow

#: The events subscribers can receive.
EVENTS = ("issued", "superseded", "revoked")


def grant_covers(grant: ConsentGrant, doc_type: str | None) -> bool:
    """Whether a grant's document types include ``doc_type``."""
    return doc_type is not None and doc_type in (grant.doc_types or [])


def enqueue_event(session: Session, ecopy: ECopy, event: str) -> int:
    """Queue ``event`` about ``ecopy`` for every subscriber entitled to it.

    Returns the number of delivery rows added (in the caller's transaction).
    """
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    if ecopy.citizen_id is None:
        return 0
    now = utcnow()
    grants = session.scalars(
        select(ConsentGrant).where(
            ConsentGrant.citizen_id == ecopy.citizen_id,
            ConsentGrant.revoked_at.is_(None),
            ConsentGrant.expires_at > now,
        )
    ).all()
    clients = {g.client_id for g in grants if grant_covers(g, ecopy.doc_type)}
    if not clients:
        return 0
    subscribers = session.scalars(
        select(Subscriber)
        .where(Subscriber.client_id.in_(clients), Subscriber.revoked_at.is_(None))
        .order_by(Subscriber.created_at, Subscriber.id)
    ).all()
    payload = {
        "event": event,
        "ecopy_id": ecopy.id,
        "document_type": ecopy.doc_type,
        "status": ecopy.status,
        "citizen_ref": ecopy.citizen_id,
        "occurred_at": now.isoformat(timespec="seconds"),
    }
    for subscriber in subscribers:
        session.add(
            WebhookDelivery(
                subscriber_id=subscriber.id,
                event=event,
                payload=dict(payload),
                status="pending",
                next_attempt_at=now,
            )
        )
    return len(subscribers)
