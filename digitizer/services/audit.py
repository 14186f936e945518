"""The audit trail: every read and write of personal data, append-only, hash-chained.

Each event's hash covers its content and the previous event's hash, so editing,
inserting, deleting or reordering events breaks the chain from that point on.
Events carry opaque references (citizen id, document id), never personal ids,
names or keys.
"""

from __future__ import annotations

import hashlib
import json
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digitizer.services.keys import Actor
from storage.db import AuditEvent, utcnow

#: The hash before the first event.
GENESIS = "0" * 64

#: The id of the HTTP request being served (set by the API's middleware).
request_id_var: ContextVar[str | None] = ContextVar("sohoa_request_id", default=None)

_CHAINED = (
    "seq",
    "at",
    "request_id",
    "actor_id",
    "actor_name",
    "role",
    "office",
    "action",
    "citizen_id",
    "document_id",
    "purpose",
    "detail",
)


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    return value


def event_hash(event: AuditEvent, prev_hash: str) -> str:
    """SHA-256 over the previous hash and the event's canonical JSON."""
    body = {name: _value(getattr(event, name)) for name in _CHAINED}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def _lock_chain(session: Session) -> None:
    # One writer at a time appends: the next seq and prev_hash must be the head's.
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import text

        session.execute(text("SELECT pg_advisory_xact_lock(7310001)"))


def record(
    session: Session,
    actor: Actor | None,
    action: str,
    *,
    citizen_id: str | None = None,
    document_id: str | None = None,
    purpose: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event in the caller's transaction (it lands or vanishes with the change).

    ``action`` is a dotted verb such as ``document.read`` or ``consent.create``;
    ``detail`` holds ids and statuses only, never personal data.
    """
    _lock_chain(session)
    head = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
    event = AuditEvent(
        seq=seq,
        at=utcnow(),
        request_id=request_id_var.get(),
        actor_id=actor.key_id if actor else None,
        actor_name=actor.name if actor else None,
        role=actor.role if actor else None,
        office=actor.office if actor else None,
        action=action,
        citizen_id=citizen_id,
        document_id=document_id,
        purpose=purpose,
        detail=detail or {},
        prev_hash=prev,
    )
    event.hash = event_hash(event, prev)
    session.add(event)
    session.flush()
    return event
