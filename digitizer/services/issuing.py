"""Issuing: an approver approves a processed document and the office signs an e-copy.

Signing happens here, on approval, never inside the OCR pipeline. The e-copy is a
new object (``ecopies/{document}/{sha256}.pdf``); the scan and its searchable PDF
are kept as they are. Its QR code carries a random 128-bit code whose public
check shows only type, issuer, issue date and status.

A document is issued once a clerk approved it after review (``approved``), or when
the pipeline was sure of it (``ready``: the approver's issue is then the approval).
A document the pipeline was unsure of (``needs_review``) is refused until reviewed.
The e-copy records the citizen, type, reviewed field values (never a personal id),
number and validity, and is filed in the citizen's vault (``services.vault``).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digitizer.config import Settings
from digitizer.errors import ConflictError, ForbiddenError, NotFoundError, ReviewFirstError
from digitizer.services import access, audit, vault, webhooks
from digitizer.services.keys import Actor
from digitizer.services.signing import SigningService
from storage.db import Document, DocumentState, ECopy, ECopyStatus, utcnow
from storage.objects import ObjectStore

#: Documents an approver may issue: approved after review, or processed with certainty.
ISSUABLE = frozenset({DocumentState.APPROVED, DocumentState.READY})


def verification_url(settings: Settings, code: str) -> str:
    """The URL printed in the QR code of an e-copy."""
    return f"{settings.public_base_url.rstrip('/')}/v1/verify/{code}"


class IssuingService:
    """Approves documents and issues signed e-copies."""

    def __init__(self, settings: Settings, store: ObjectStore, signer: SigningService) -> None:
        self.settings = settings
        self.store = store
        self.signer = signer
        self.offices = {o.code: o.name for o in settings.signing.offices}

    def issue(
        self,
        session: Session,
        document_id: str,
        actor: Actor,
        office_code: str,
        signer_name: str | None = None,
    ) -> ECopy:
        """Approve a document, sign its e-copy for ``office_code`` and file it in the vault.

        Raises:
            NotFoundError: no such document or office.
            ForbiddenError: the approver works for another office.
            ReviewFirstError: the document waits for a clerk's review.
            ConflictError: the document is not ready to be issued.
        """
        if office_code not in self.offices:
            raise NotFoundError("no signing key is configured for this office")
        if actor.office is not None and actor.office != office_code:
            raise ForbiddenError("an approver signs only for their own office")
        doc = (
            session.scalars(
                select(Document).where(Document.id == document_id).with_for_update()
            ).first()
            if 0 < len(document_id) <= 32
            else None
        )
        if doc is None or not access.in_scope(actor, doc.office):
            # Another office's document is answered like a missing one (never issued).
            raise NotFoundError("no document with this id")
        if doc.state == DocumentState.NEEDS_REVIEW:
            raise ReviewFirstError(
                "review first: a clerk must review and approve this document before it is issued"
            )
        if doc.state not in ISSUABLE:
            raise ConflictError(f"a document in state {doc.state} cannot be issued")
        results = doc.results or {}
        source = results.get("searchable_pdf")
        if not source:
            raise ConflictError("the document has no searchable PDF to sign")
        code = secrets.token_urlsafe(16)
        signed = self.signer.sign(
            self.store.get_bytes(source),
            office_code,
            verify_url=verification_url(self.settings, code),
            signer=signer_name,
        )
        digest = hashlib.sha256(signed).hexdigest()
        key = f"ecopies/{doc.id}/{digest}.pdf"
        self.store.put_bytes(key, signed, "application/pdf")
        doc_type, fields = vault.reviewed_answer(doc)
        doc_number = doc.doc_number or fields.get("document_number")
        ecopy = ECopy(
            document_id=doc.id,
            code=code,
            office_code=office_code,
            issuer=self.offices[office_code],
            doc_type=doc_type,
            object_key=key,
            sha256=digest,
            approved_by=actor.key_id,
            issued_at=utcnow(),
            citizen_id=doc.citizen_id,
            fields=fields,
            doc_number=str(doc_number)[:100] if doc_number else None,
            valid_until=vault.parse_date(fields.get("valid_until")),
        )
        session.add(ecopy)
        approved_from = doc.state
        doc.state = DocumentState.ISSUED
        doc.doc_type = doc.doc_type or doc_type
        doc.doc_number = doc.doc_number or ecopy.doc_number
        session.flush()
        replaced = vault.file_ecopy(session, ecopy, actor)
        audit.record(
            session,
            actor,
            "ecopy.issue",
            citizen_id=ecopy.citizen_id,
            document_id=doc.id,
            detail={
                "ecopy_id": ecopy.id,
                "office": office_code,
                "doc_type": doc_type,
                "from_state": approved_from,
                "superseded": [old.id for old in replaced],
            },
        )
        webhooks.enqueue_event(session, ecopy, "issued")
        session.flush()
        return ecopy


def renew_due(
    session: Session, store: ObjectStore, signer: SigningService, older_than: timedelta
) -> list[str]:
    """Add a document timestamp (B-LTA) to valid e-copies not renewed for ``older_than``.

    Timestamps are only as durable as their TSA certificate and hash algorithm: a fresh
    document timestamp over the whole file (with the validation data current now) keeps
    the e-copy verifiable. The renewed file is a new object; the earlier one stays.
    Returns the ids of the renewed e-copies.
    """
    cutoff = utcnow() - older_than
    due = session.scalars(
        select(ECopy).where(
            ECopy.status == ECopyStatus.VALID,
            func.coalesce(ECopy.renewed_at, ECopy.issued_at) <= cutoff,
        )
    )
    renewed = []
    for ecopy in due:
        current = store.get_bytes(ecopy.object_key)
        stamped = signer.signer.renew(current)
        digest = hashlib.sha256(stamped).hexdigest()
        key = f"ecopies/{ecopy.document_id}/{digest}.pdf"
        store.put_bytes(key, stamped, "application/pdf")
        ecopy.previous_sha256 = [*(ecopy.previous_sha256 or []), ecopy.sha256]
        ecopy.object_key, ecopy.sha256, ecopy.renewed_at = key, digest, utcnow()
        renewed.append(ecopy.id)
    return renewed


def by_code(session: Session, code: str) -> ECopy:
    """The e-copy a QR code points at.

    Raises:
        NotFoundError: no e-copy has this code.
    """
    ecopy = (
        session.scalars(select(ECopy).where(ECopy.code == code)).first()
        if 16 <= len(code) <= 64
        else None
    )
    if ecopy is None:
        raise NotFoundError("no e-copy has this verification code")
    return ecopy


def ecopy_of_file(session: Session, sha256: str) -> ECopy | None:
    """The e-copy issued by this deployment whose file (or an earlier version) has this hash."""
    ecopy = session.scalars(select(ECopy).where(ECopy.sha256 == sha256)).first()
    if ecopy is None:
        # A copy saved before a renewal: compare with the earlier versions' hashes.
        for candidate in session.scalars(select(ECopy).where(ECopy.renewed_at.is_not(None))):
            if sha256 in (candidate.previous_sha256 or []):
                return candidate
    return ecopy


def status_of_file(session: Session, sha256: str) -> str | None:
    """The status of an e-copy issued by this deployment, from the file's hash."""
    ecopy = ecopy_of_file(session, sha256)
    return ecopy.shown_status if ecopy is not None else None
