"""Who may see which document: the one place that scopes staff to their office.

Policy (README "Roles, offices and purposes"):

- Staff (clerk, approver, verifier, admin) see the documents of their own office:
  ``Document.office == Actor.office`` (a key without an office and documents without
  an office form one unscoped office: one-office deployments and the CLI).
- A document of another office is answered exactly like a missing one (404, same
  problem body), so nobody learns that it exists.
- Unless the caller states a purpose (header ``X-Purpose``) that their role allows
  (``PURPOSE_POLICY``): then the read is allowed and written to the audit trail
  with that purpose. Purposes open reads only; nobody writes to another office's
  documents.
- Portals never reach staff documents through here (their reads go through the
  citizen's consent); a portal is a client without an office.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from digitizer.errors import BadInputError, ForbiddenError, NotFoundError
from digitizer.services import audit
from digitizer.services.keys import Actor
from storage.db import Batch, BatchItem, Document, ECopy

#: Purposes a caller may state in ``X-Purpose`` (code -> label shown to people).
PURPOSES: dict[str, str] = {
    "inspection": "Thanh tra, kiểm tra",
    "complaint": "Giải quyết khiếu nại, tố cáo",
    "legal_request": "Yêu cầu của cơ quan có thẩm quyền",
    "inter_office": "Phối hợp giữa các cơ quan",
    "verification": "Xác minh văn bản",
    "support": "Hỗ trợ kỹ thuật",
}

#: Which role may read across offices for which purpose. Clerks work for one office
#: and never read another's; portals act for citizens under consent, not here.
PURPOSE_POLICY: dict[str, frozenset[str]] = {
    "clerk": frozenset(),
    "portal": frozenset(),
    "approver": frozenset({"inter_office", "verification", "complaint"}),
    "verifier": frozenset({"verification"}),
    "admin": frozenset(PURPOSES),
}

#: Roles that work for an office (their keys normally carry one).
STAFF_ROLES = ("clerk", "approver", "verifier", "admin")

_NO_DOCUMENT = "no document with this id"
_NO_BATCH = "no batch with this id"
_NO_ECOPY = "no e-copy with this id"
_MAX_ID = 64


def check_purpose(actor: Actor, purpose: str | None) -> str | None:
    """The stated purpose, validated for the actor's role (None when none was stated).

    Checked before any lookup, so the answer never depends on what exists.

    Raises:
        BadInputError: not a known purpose code.
        ForbiddenError: the role may not state this purpose.
    """
    if purpose is None or not purpose.strip():
        return None
    purpose = purpose.strip()
    if purpose not in PURPOSES:
        raise BadInputError(f"unknown purpose; purposes are {', '.join(sorted(PURPOSES))}")
    if purpose not in PURPOSE_POLICY.get(actor.role, frozenset()):
        raise ForbiddenError(f"the role {actor.role!r} may not read for the purpose {purpose!r}")
    return purpose


def in_scope(actor: Actor, office: str | None) -> bool:
    """Whether a record of ``office`` is the actor's own (no purpose needed)."""
    return actor.role != "portal" and actor.office == office


def _admit(
    actor: Actor, office: str | None, purpose: str | None, write: bool, missing: str
) -> bool:
    """True when in scope; False when admitted for a stated purpose (audit it); else 404."""
    if in_scope(actor, office):
        return True
    if write or purpose is None or actor.role == "portal":
        raise NotFoundError(missing)
    return False


def visible_document(
    session: Session,
    actor: Actor,
    document_id: str,
    purpose: str | None = None,
    *,
    write: bool = False,
) -> Document:
    """A document the actor may read (or, with ``write``, change).

    Raises:
        NotFoundError: no such document, or one of another office without an
            allowed purpose (the same answer for both); writes never cross offices.
        BadInputError, ForbiddenError: the purpose is unknown or not the role's.
    """
    purpose = check_purpose(actor, purpose)
    doc = session.get(Document, document_id) if len(document_id) <= _MAX_ID else None
    if doc is None:
        raise NotFoundError(_NO_DOCUMENT)
    if not _admit(actor, doc.office, purpose, write, _NO_DOCUMENT):
        audit.record(
            session,
            actor,
            "document.read",
            citizen_id=doc.citizen_id,
            document_id=doc.id,
            purpose=purpose,
            detail={"scope": "other_office", "office": doc.office},
        )
    return doc


def visible_batch(
    session: Session, actor: Actor, batch_id: str, purpose: str | None = None
) -> tuple[Batch, list[tuple[BatchItem, Document]]]:
    """A batch and its documents in upload order, when every document is the actor's.

    A batch is one office's upload (documents deduplicate per office), so its
    documents share one office.

    Raises:
        NotFoundError: no such batch, or another office's without an allowed purpose.
    """
    purpose = check_purpose(actor, purpose)
    batch = session.get(Batch, batch_id) if len(batch_id) <= _MAX_ID else None
    if batch is None:
        raise NotFoundError(_NO_BATCH)
    rows = [
        (item, doc)
        for item, doc in session.execute(
            select(BatchItem, Document)
            .join(Document, Document.id == BatchItem.document_id)
            .where(BatchItem.batch_id == batch_id)
            .order_by(BatchItem.position)
        ).all()
    ]
    offices = {doc.office for _, doc in rows}
    if all(in_scope(actor, office) for office in offices):
        return batch, rows
    _admit(actor, next(iter(offices - {actor.office})), purpose, False, _NO_BATCH)
    for _, doc in rows:
        audit.record(
            session,
            actor,
            "document.read",
            citizen_id=doc.citizen_id,
            document_id=doc.id,
            purpose=purpose,
            detail={"scope": "other_office", "office": doc.office, "batch_id": batch.id},
        )
    return batch, rows


def visible_ecopy(
    session: Session, actor: Actor, ecopy_id: str, purpose: str | None = None
) -> ECopy:
    """An e-copy whose document the actor may read (scoped like its document).

    Raises:
        NotFoundError: no such e-copy, or another office's without an allowed purpose.
    """
    purpose = check_purpose(actor, purpose)
    ecopy = session.get(ECopy, ecopy_id) if len(ecopy_id) <= _MAX_ID else None
    if ecopy is None:
        raise NotFoundError(_NO_ECOPY)
    doc = session.get(Document, ecopy.document_id)
    office = doc.office if doc is not None else ecopy.office_code
    if not _admit(actor, office, purpose, False, _NO_ECOPY):
        audit.record(
            session,
            actor,
            "ecopy.read",
            citizen_id=ecopy.citizen_id,
            document_id=ecopy.document_id,
            purpose=purpose,
            detail={"scope": "other_office", "office": office, "ecopy_id": ecopy.id},
        )
    return ecopy
