"""Issuing: an approver approves a processed document and the office signs an e-copy.

Signing happens here, on approval, never inside the OCR pipeline. The e-copy is a
new object (``ecopies/{document}/{sha256}.pdf``); the scan and its searchable PDF
are kept as they are. Its QR code carries a random 128-bit code whose public
check shows only type, issuer, issue date and status.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digitizer.config import Settings
from digitizer.errors import ConflictError, ForbiddenError, NotFoundError
from digitizer.services.documents import get_document
from digitizer.services.keys import Actor
from digitizer.services.signing import SigningService
from storage.db import Document, DocumentState, ECopy, ECopyStatus, utcnow
from storage.objects import ObjectStore

#: Documents an approver may issue: processed, or reviewed by a clerk.
ISSUABLE = frozenset({DocumentState.READY, DocumentState.NEEDS_REVIEW})


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
        """Approve a document and sign its e-copy for ``office_code``.

        Raises:
            NotFoundError: no such document or office.
            ForbiddenError: the approver works for another office.
            ConflictError: the document is not ready to be issued.
        """
        if office_code not in self.offices:
            raise NotFoundError("no signing key is configured for this office")
        if actor.office is not None and actor.office != office_code:
            raise ForbiddenError("an approver signs only for their own office")
        doc: Document = get_document(session, document_id)
        if doc.state not in ISSUABLE:
            raise ConflictError(f"a document in state {doc.state} cannot be issued")
        source = (doc.results or {}).get("searchable_pdf")
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
        for older in session.scalars(
            select(ECopy).where(ECopy.document_id == doc.id, ECopy.status == ECopyStatus.VALID)
        ):
            older.status = ECopyStatus.SUPERSEDED
        ecopy = ECopy(
            document_id=doc.id,
            code=code,
            office_code=office_code,
            issuer=self.offices[office_code],
            doc_type=(doc.results or {}).get("doc_type"),
            object_key=key,
            sha256=digest,
            approved_by=actor.key_id,
            issued_at=utcnow(),
        )
        session.add(ecopy)
        doc.state = DocumentState.ISSUED
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


def status_of_file(session: Session, sha256: str) -> str | None:
    """The status of an e-copy issued by this deployment, from the file's hash."""
    ecopy = session.scalars(select(ECopy).where(ECopy.sha256 == sha256)).first()
    if ecopy is None:
        # A copy saved before a renewal: compare with the earlier versions' hashes.
        for candidate in session.scalars(select(ECopy).where(ECopy.renewed_at.is_not(None))):
            if sha256 in (candidate.previous_sha256 or []):
                return candidate.status
        return None
    return ecopy.status
