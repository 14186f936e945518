"""The citizen vault: issued e-copies filed per citizen, superseded, revoked, read by portals.

Filing rules (applied when an e-copy is issued for a document that belongs to a citizen):

- Types a citizen has one current paper of (:data:`ONE_PER_CITIZEN`: birth certificate,
  citizen ID card, residence confirmation, death certificate): a newer e-copy of the type
  replaces every older one of the same citizen.
- Other types (diplomas, land-use certificates, decisions, ...), of which a citizen may hold
  several at once: a newer e-copy replaces only an older one with the same document number.
- A replaced e-copy that was ``valid`` becomes ``superseded``; one that was ``revoked`` stays
  ``revoked``; both get ``superseded_by`` and drop out of the current list.

Revocation by the issuing office is one status change read by every path at once (the
public QR check, verification reports, portal reads): nothing caches an e-copy's status.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from digitizer.errors import ConflictError, NotFoundError
from digitizer.services import audit, review, webhooks
from digitizer.services.keys import Actor
from storage.db import (
    Citizen,
    Document,
    DocumentState,
    ECopy,
    ECopyStatus,
    iso_date,
    shown_status,
    utcnow,
)

#: Document types of which a citizen has one current version.
ONE_PER_CITIZEN = frozenset(
    {"birth_certificate", "citizen_id", "residence_confirmation", "death_certificate"}
)

#: Statuses an e-copy may be listed with as a citizen's current document.
CURRENT_STATUSES = (ECopyStatus.VALID.value, ECopyStatus.REVOKED.value)


def is_personal_id_field(name: str) -> bool:
    """Fields holding a personal identification number (never copied into an e-copy)."""
    return name == "personal_id" or name.endswith("_personal_id")


def without_personal_ids(values: Mapping[str, Any]) -> dict[str, Any]:
    """Field values with every personal identification number and empty value left out."""
    return {
        name: value
        for name, value in values.items()
        if not is_personal_id_field(name) and value is not None and value != ""
    }


def reviewed_answer(doc: Document) -> tuple[str | None, dict[str, Any]]:
    """The type and field values an e-copy records (personal ids left out): the clerk's
    approved answer (``results["reviewed"]``), else the pipeline's proposal with any
    corrections a clerk made without approving (``services.review.view``)."""
    reviewed = (doc.results or {}).get("reviewed") or {}
    if reviewed.get("doc_type"):
        doc_type, values = reviewed["doc_type"], reviewed.get("fields") or {}
    else:
        effective = review.view(doc)
        doc_type, values = effective.doc_type, effective.values()
    return (doc_type or doc.doc_type), without_personal_ids(values)


def parse_date(value: Any) -> datetime | None:
    """An ISO ``YYYY-MM-DD`` field value as midnight UTC (None when not a date)."""
    day = iso_date(value)
    return datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None


def get_ecopy(session: Session, ecopy_id: str, *, for_update: bool = False) -> ECopy:
    """An e-copy by id.

    Raises:
        NotFoundError: no such e-copy.
    """
    ecopy = None
    if 0 < len(ecopy_id) <= 32:
        query = select(ECopy).where(ECopy.id == ecopy_id)
        if for_update:
            query = query.with_for_update()
        ecopy = session.scalars(query).first()
    if ecopy is None:
        raise NotFoundError("no e-copy with this id")
    return ecopy


def file_ecopy(session: Session, ecopy: ECopy, actor: Actor | None) -> list[ECopy]:
    """File a newly issued e-copy in its citizen's vault; returns the e-copies it replaced.

    Runs in the issuing transaction: older versions change status, their documents turn
    ``superseded``, and every change is audited and notified with it.
    """
    replaces = [ECopy.document_id == ecopy.document_id]
    if ecopy.citizen_id is not None and ecopy.doc_type is not None:
        # One filer per citizen at a time, so two issues cannot both stay current.
        session.execute(select(Citizen.id).where(Citizen.id == ecopy.citizen_id).with_for_update())
        if ecopy.doc_type in ONE_PER_CITIZEN:
            replaces.append(
                (ECopy.citizen_id == ecopy.citizen_id) & (ECopy.doc_type == ecopy.doc_type)
            )
        elif ecopy.doc_number:
            replaces.append(
                (ECopy.citizen_id == ecopy.citizen_id)
                & (ECopy.doc_type == ecopy.doc_type)
                & (ECopy.doc_number == ecopy.doc_number)
            )
    older = session.scalars(
        select(ECopy)
        .where(
            or_(*replaces),
            ECopy.id != ecopy.id,
            ECopy.superseded_by.is_(None),
            ECopy.status.in_(CURRENT_STATUSES),
        )
        .order_by(ECopy.issued_at)
    ).all()
    replaced = []
    for old in older:
        old.superseded_by = ecopy.id
        if old.status != ECopyStatus.VALID:
            continue  # a revoked e-copy stays revoked; it only leaves the current list
        old.status = ECopyStatus.SUPERSEDED
        old.updated_at = utcnow()
        if old.document_id != ecopy.document_id:
            doc = session.get(Document, old.document_id)
            if doc is not None and doc.state == DocumentState.ISSUED:
                doc.state = DocumentState.SUPERSEDED
        audit.record(
            session,
            actor,
            "ecopy.supersede",
            citizen_id=old.citizen_id,
            document_id=old.document_id,
            detail={"ecopy_id": old.id, "superseded_by": ecopy.id, "status": old.status},
        )
        webhooks.enqueue_event(session, old, "superseded")
        replaced.append(old)
    session.flush()
    return replaced


def revoke(session: Session, ecopy_id: str, actor: Actor, reason: str) -> ECopy:
    """Revoke an e-copy for its issuing office: at once ``revoked`` everywhere.

    Raises:
        NotFoundError: no such e-copy, or one of another office (unless admin).
        ConflictError: it is already revoked.
    """
    ecopy = get_ecopy(session, ecopy_id, for_update=True)
    if actor.role != "admin" and actor.office != ecopy.office_code:
        # Another office's e-copy answers exactly like a missing one (services/access.py).
        raise NotFoundError("no e-copy with this id")
    if ecopy.status == ECopyStatus.REVOKED:
        raise ConflictError("this e-copy is already revoked")
    previous = ecopy.status
    now = utcnow()
    ecopy.status = ECopyStatus.REVOKED
    ecopy.revoked_at = now
    ecopy.revocation_reason = reason
    ecopy.updated_at = now
    doc = session.get(Document, ecopy.document_id)
    if doc is not None and doc.state in (DocumentState.ISSUED, DocumentState.SUPERSEDED):
        doc.state = DocumentState.REVOKED
    audit.record(
        session,
        actor,
        "ecopy.revoke",
        citizen_id=ecopy.citizen_id,
        document_id=ecopy.document_id,
        detail={"ecopy_id": ecopy.id, "previous_status": previous, "status": ecopy.status},
    )
    webhooks.enqueue_event(session, ecopy, "revoked")
    session.flush()
    return ecopy


def _current(citizen_id: str, types: list[str]) -> Any:
    return (
        ECopy.citizen_id == citizen_id,
        ECopy.status.in_(CURRENT_STATUSES),
        ECopy.superseded_by.is_(None),
        ECopy.doc_type.in_(types),
    )


def current_ecopies(session: Session, citizen_id: str, doc_types: Iterable[str]) -> list[ECopy]:
    """A citizen's current e-copies of ``doc_types``: valid ones, and revoked ones that
    nothing replaced yet (so a portal learns of the revocation), newest first."""
    types = sorted(set(doc_types))
    if not types:
        return []
    return list(
        session.scalars(select(ECopy).where(*_current(citizen_id, types)).order_by(*_NEWEST_FIRST))
    )


#: What a listing shows of an e-copy (``current_listing``): no ORM objects are built, a
#: portal's list call is the vault's hottest path.
LISTED = (
    ECopy.id,
    ECopy.doc_type,
    ECopy.issuer,
    ECopy.issued_at,
    ECopy.status,
    ECopy.valid_until,
    ECopy.fields,
    ECopy.code,
    ECopy.updated_at,
)
_NEWEST_FIRST = (ECopy.issued_at.desc(), ECopy.id)


def current_listing(session: Session, citizen_id: str, doc_types: Iterable[str]) -> list[Any]:
    """:func:`current_ecopies` as rows of the :data:`LISTED` columns."""
    types = sorted(set(doc_types))
    if not types:
        return []
    query = select(*LISTED).where(*_current(citizen_id, types)).order_by(*_NEWEST_FIRST)
    return list(session.execute(query))


def list_etag(ecopies: Iterable[Any], scope: str = "", now: datetime | None = None) -> str:
    """A strong ETag over the listed e-copies' ids, shown statuses and change times (the
    shown status: an e-copy that expires changes no row, yet the listing changes)."""
    now = now or utcnow()
    digest = hashlib.sha256(scope.encode())
    for ecopy in sorted(ecopies, key=lambda e: e.id):
        changed = ecopy.updated_at.isoformat(timespec="microseconds")
        status = shown_status(ecopy.status, ecopy.valid_until, now)
        digest.update(f"\n{ecopy.id}|{status}|{changed}".encode())
    return f'"{digest.hexdigest()[:32]}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak comparison, RFC 9110)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))
