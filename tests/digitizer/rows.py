"""Rows for webhook, search and export tests, written straight to the database.

These tests are about what happens after an e-copy exists (notifications, search,
export); issuing itself is tested through the API in tests/signing.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from digitizer.config import Settings
from digitizer.services.keys import create_key
from digitizer.services.wiring import citizen_registry
from storage.db import (
    Citizen,
    ConsentGrant,
    Document,
    DocumentState,
    ECopy,
    ECopyStatus,
    utcnow,
)


def citizen(session: Session, settings: Settings, pid: str = "001203004567") -> Citizen:
    """The citizen with ``pid`` (created when new)."""
    return citizen_registry(settings).get_or_create(session, pid)


def portal_client(session: Session, name: str = "Cổng dịch vụ công tỉnh") -> tuple[str, str]:
    """A portal client key: (key id, key)."""
    row, key = create_key(session, name=name, role="portal")
    session.flush()
    return row.id, key


def document(
    session: Session,
    *,
    citizen_id: str | None,
    office: str = "ubnd-phuong-ba-dinh",
    doc_type: str = "birth_certificate",
    doc_number: str | None = "123/2024",
    text: str | None = None,
    filename: str = "giay-khai-sinh.pdf",
    state: str = DocumentState.ISSUED.value,
    created_at: datetime | None = None,
) -> Document:
    """A processed document of ``office``."""
    body = text or f"{doc_type} {secrets.token_hex(8)}"
    doc = Document(
        sha256=hashlib.sha256(body.encode() + secrets.token_bytes(8)).hexdigest(),
        filename=filename,
        media_type="application/pdf",
        size=len(body),
        state=state,
        citizen_id=citizen_id,
        office=office,
        doc_type=doc_type,
        doc_number=doc_number,
        search_text=text,
        created_at=created_at or utcnow(),
    )
    session.add(doc)
    session.flush()
    return doc


def ecopy(
    session: Session,
    doc: Document,
    *,
    object_key: str | None = None,
    sha256: str | None = None,
    status: str = ECopyStatus.VALID.value,
    issued_at: datetime | None = None,
    issuer: str = "Ủy ban nhân dân phường Ba Đình",
) -> ECopy:
    """An e-copy of ``doc`` for its citizen."""
    digest = sha256 or secrets.token_hex(32)
    row = ECopy(
        document_id=doc.id,
        code=secrets.token_urlsafe(16),
        office_code=doc.office or "ubnd-phuong-ba-dinh",
        issuer=issuer,
        doc_type=doc.doc_type,
        object_key=object_key or f"ecopies/{doc.id}/{digest}.pdf",
        sha256=digest,
        status=status,
        issued_at=issued_at or utcnow(),
        citizen_id=doc.citizen_id,
        fields={"document_number": doc.doc_number},
        doc_number=doc.doc_number,
    )
    session.add(row)
    session.flush()
    return row


def grant(
    session: Session,
    citizen_id: str,
    client_id: str,
    doc_types: list[str],
    *,
    expires_in: timedelta = timedelta(days=30),
    revoked: bool = False,
) -> ConsentGrant:
    """A consent grant of ``citizen_id`` to the portal client ``client_id``."""
    row = ConsentGrant(
        citizen_id=citizen_id,
        client_id=client_id,
        doc_types=doc_types,
        purpose="Giải quyết thủ tục hành chính",
        expires_at=utcnow() + expires_in,
        revoked_at=utcnow() if revoked else None,
    )
    session.add(row)
    session.flush()
    return row
