"""Fixtures and helpers for the vault tests: an office with a signing key, staff of that
office, portal clients, a test identity provider, and processed documents ready to issue.

Import the fixtures into a test module (``from tests.digitizer.vault_env import ...``);
the signing PKI fixture ``env`` comes from tests/signing/conftest.py.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import pytest
from fastapi.testclient import TestClient

from digitizer.api.app import create_app
from digitizer.config import Settings
from digitizer.services.keys import create_key
from digitizer.services.wiring import citizen_registry, object_store
from fixtures.idp import TestIdentityProvider
from storage.db import Document, DocumentState, session_scope
from tests.signing.conftest import SigningEnv, env, make_sample_pdf, office_signing

__all__ = ["env", "idp", "vault_settings"]

OFFICE = "ubnd-tinh-ninh-binh"
OFFICE_NAME = "Ủy ban nhân dân tỉnh Ninh Bình"
OTHER_OFFICE = "ubnd-tinh-quang-tri"
PID = "001203004567"
OTHER_PID = "079198001234"


@pytest.fixture
def vault_settings(settings: Settings, env: SigningEnv) -> Settings:
    """Settings with one office key (Ninh Bình) and loopback webhooks allowed."""
    return settings.model_copy(
        update={
            "signing": office_signing(env, OFFICE),
            "webhooks": settings.webhooks.model_copy(
                update={"allowed_hosts": ["127.0.0.1"], "allow_http": True}
            ),
        }
    )


@pytest.fixture
def idp(settings: Settings) -> TestIdentityProvider:
    """The identity provider whose keys the app reads (the embedded home's ``idp``)."""
    return TestIdentityProvider(settings.embedded.home / "idp")


def key(
    settings: Settings, role: str, office: str | None = None, name: str = "Nguyễn Văn Test"
) -> tuple[str, str]:
    """A new key: (key id, key)."""
    with session_scope(settings.db.url) as session:
        row, secret = create_key(session, name=name, role=role, office=office)
        return row.id, secret


def api(settings: Settings, role: str | None, office: str | None = OFFICE) -> TestClient:
    """A client with a fresh key of ``role`` (staff keys belong to ``office``)."""
    test_client = TestClient(create_app(settings), raise_server_exceptions=False)
    if role is not None:
        test_client.headers["X-API-Key"] = key(
            settings, role, office if role != "portal" else None
        )[1]
    return test_client


def portal(settings: Settings, name: str = "Cổng dịch vụ công") -> tuple[str, TestClient]:
    """A portal client: (its key id, a client using its key)."""
    key_id, secret = key(settings, "portal", name=name)
    test_client = TestClient(create_app(settings), raise_server_exceptions=False)
    test_client.headers["X-API-Key"] = secret
    return key_id, test_client


def processed_document(
    settings: Settings,
    *,
    pid: str | None = PID,
    doc_type: str = "birth_certificate",
    fields: dict[str, Any] | None = None,
    state: str = DocumentState.READY.value,
    office: str | None = OFFICE,
) -> str:
    """A document as the pipeline leaves it (searchable PDF stored, type and fields
    extracted) without running OCR; returns its id."""
    pdf = make_sample_pdf(1)
    sha = hashlib.sha256(pdf + secrets.token_bytes(8)).hexdigest()
    searchable = f"derived/{sha}/pdf-test/searchable.pdf"
    object_store(settings).put_bytes(searchable, pdf, "application/pdf")
    values = fields if fields is not None else {"full_name": "Nguyễn Thị Lan"}
    with session_scope(settings.db.url) as session:
        citizen_id = None
        if pid is not None:
            citizen_id = citizen_registry(settings).get_or_create(session, pid).id
        doc = Document(
            sha256=sha,
            filename="giay-khai-sinh.pdf",
            media_type="application/pdf",
            size=len(pdf),
            state=state,
            citizen_id=citizen_id,
            office=office,
            results={
                "searchable_pdf": searchable,
                "doc_type": doc_type,
                "fields": {
                    name: {"value": value, "confidence": 0.99, "source": None}
                    for name, value in values.items()
                },
            },
        )
        session.add(doc)
        session.flush()
        return doc.id


def issue(approver: TestClient, document_id: str) -> dict[str, Any]:
    """Issue a document's e-copy for the office; the e-copy as the API returns it."""
    response = approver.post(f"/v1/documents/{document_id}/issue", json={"office": OFFICE})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def code_of(ecopy: dict[str, Any]) -> str:
    """The QR verification code of an issued e-copy."""
    return str(ecopy["verify_url"]).rsplit("/", 1)[1]
