"""Issue 8 end to end: a scanned birth certificate becomes a signed e-copy in the citizen's
vault, reused by a portal under consent, verified, revoked, notified and audited.

Everything is real: SeaweedFS, Redis, PostgreSQL, OCR, the trained classifier, the test PKI
(TSA, OCSP), the identity provider's tokens, the CLI in a child process and a loopback HTTP
receiver for the webhooks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from digitizer.config import Settings
from digitizer.pipeline.training import train_default
from digitizer.services import webhooks
from digitizer.stack import settings_env
from fixtures import generator
from fixtures.idp import TestIdentityProvider
from storage.db import AuditEvent, WebhookDelivery, session_scope
from tests.digitizer import vault_env
from tests.digitizer.vault_env import OFFICE, api, code_of, portal
from tests.helpers import drain

env, idp, vault_settings = vault_env.env, vault_env.idp, vault_env.vault_settings  # fixtures


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A document-type model trained once for this module (as ``sohoa train`` would)."""
    root = tmp_path_factory.mktemp("models")
    train_default(root, per_type=12)
    return root


class Receiver:
    """A subscriber's endpoint on a free loopback port: keeps what it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/sohoa"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    yield state
    state.close()


def sohoa(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digitizer.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **settings_env(settings)},
        timeout=180,
    )


def _png(page: generator.GeneratedPage) -> bytes:
    out = BytesIO()
    page.image.save(out, format="PNG", dpi=(page.dpi, page.dpi))
    return out.getvalue()


def test_scanned_birth_certificate_to_revoked_ecopy(
    vault_settings: Settings,
    idp: TestIdentityProvider,
    model_dir: Path,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    settings = vault_settings.model_copy(update={"model_dir": model_dir})
    settings.webhooks.backoff_base_s = 0.0

    # A clerk of the office uploads a scanned birth certificate extract for a citizen.
    page = generator.generate_page(77, "trich-luc-khai-sinh")
    pid = page.fields["personal_id"]
    clerk = api(settings, "clerk")
    uploaded = clerk.post(
        "/v1/documents",
        files={"file": ("trich-luc-khai-sinh.png", _png(page), "image/png")},
        data={"citizen_pid": pid},
    )
    assert uploaded.status_code == 202, uploaded.text
    doc_id = uploaded.json()["documents"][0]["id"]

    # The workers OCR, classify and extract it.
    drain(settings)
    processed = clerk.get(f"/v1/documents/{doc_id}").json()
    assert processed["state"] in {"ready", "needs_review"}, processed
    assert processed["doc_type"] == "birth_certificate"

    # The clerk reviews and approves it; the office's approver issues the signed e-copy.
    approval = clerk.post(f"/v1/review/{doc_id}/approve")
    assert approval.status_code == 200, approval.text
    assert approval.json()["state"] == "approved"
    approver = api(settings, "approver")
    issued = approver.post(f"/v1/documents/{doc_id}/issue", json={"office": OFFICE})
    assert issued.status_code == 201, issued.text
    ecopy = issued.json()
    staff_view = clerk.get(f"/v1/ecopies/{ecopy['id']}").json()
    assert staff_view["status"] == "valid" and staff_view["doc_type"] == "birth_certificate"
    assert staff_view["doc_number"] == page.fields["document_number"]
    assert pid not in json.dumps(staff_view)
    citizen_ref = staff_view["citizen_ref"]

    # A portal (with a webhook subscriber) but without the citizen's consent gets nothing.
    client_id, portal_client = portal(settings, "Cổng dịch vụ công tỉnh Ninh Bình")
    subscriber = api(settings, "admin", None).post(
        "/v1/subscribers",
        json={"name": "Cổng dịch vụ công", "url": receiver.url, "client_id": client_id},
    )
    assert subscriber.status_code == 201, subscriber.text
    secret = subscriber.json()["secret"]
    documents = f"/v1/portal/citizens/{citizen_ref}/documents"
    assert portal_client.get(documents).status_code == 404
    assert portal_client.get(f"{documents}/{ecopy['id']}").status_code == 404

    # The citizen grants it with an identity token.
    token = {"X-Citizen-Token": idp.token(pid)}
    grant = portal_client.post(
        "/v1/portal/consents",
        json={"doc_types": ["birth_certificate"], "purpose": "Tuyển sinh lớp 1", "valid_days": 30},
        headers=token,
    )
    assert grant.status_code == 201, grant.text
    assert grant.json()["citizen_ref"] == citizen_ref

    # The portal lists the citizen's documents and fetches the e-copy through the link.
    listed = portal_client.get(documents)
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["documents"]
    assert (item["id"], item["status"]) == (ecopy["id"], "valid")
    assert item["fields"]["full_name"] == staff_view["fields"]["full_name"]
    assert "personal_id" not in item["fields"]
    fetched = portal_client.get(f"{documents}/{ecopy['id']}").json()
    signed = httpx.get(fetched["download_url"]).content
    downloaded = tmp_path / "ban-sao-dien-tu.pdf"
    downloaded.write_bytes(signed)

    # `sohoa verify` on the downloaded file says valid (and that it is current).
    checked = sohoa(settings, "verify", str(downloaded), "--json")
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert (report["verdict"], report["document_status"]) == ("valid", "valid")

    # The office revokes it: the QR check and the verification report say revoked at once.
    revoked = approver.post(
        f"/v1/ecopies/{ecopy['id']}/revoke", json={"reason": "Sai thông tin nơi sinh"}
    )
    assert revoked.status_code == 200, revoked.text
    qr = api(settings, None).get(f"/v1/verify/{code_of(ecopy)}").json()
    assert (qr["status"], qr["label"]) == ("revoked", "Văn bản đã bị thu hồi")
    verified = api(settings, "verifier").post(
        "/v1/verify", files={"file": ("ban-sao.pdf", signed, "application/pdf")}
    )
    assert verified.json()["document_status"] == "revoked"
    assert verified.json()["label"] == "Hợp lệ (văn bản đã bị thu hồi)"
    after = json.loads(sohoa(settings, "verify", str(downloaded), "--json").stdout)
    assert after["document_status"] == "revoked"
    now = portal_client.get(f"{documents}/{ecopy['id']}").json()
    assert (now["status"], now["download_url"]) == ("revoked", None)

    # The subscriber got the revocation, HMAC-signed, ids and statuses only (nothing was sent
    # about the issue: the citizen had not granted this client yet).
    report_ = webhooks.deliver_due(settings)
    assert report_.delivered and not report_.failed
    [(headers, body)] = receiver.received
    assert webhooks.verify_signature(
        secret, headers["X-Sohoa-Timestamp"], body, headers["X-Sohoa-Signature"]
    )
    event = json.loads(body)
    assert (event["event"], event["ecopy_id"], event["status"]) == (
        "revoked",
        ecopy["id"],
        "revoked",
    )
    assert pid not in body.decode() and "Vũ" not in body.decode()
    with session_scope(settings.db.url) as session:
        sent = session.scalars(select(WebhookDelivery)).all()
        assert [(d.event, d.status) for d in sent] == [("revoked", "delivered")]

    # The audit trail shows each step, and the chain verifies.
    with session_scope(settings.db.url) as session:
        trail = [
            (e.action, e.citizen_id, e.purpose)
            for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        ]
    steps = [
        "review.approve",
        "ecopy.issue",
        "consent.create",
        "portal.documents.list",
        "portal.ecopy.link",
        "ecopy.revoke",
    ]
    actions = [action for action, _, _ in trail]
    positions = [actions.index(step) for step in steps]
    assert positions == sorted(positions), actions
    assert all(ref == citizen_ref for action, ref, _ in trail if action in steps)
    link = next(t for t in trail if t[0] == "portal.ecopy.link")
    assert link[2] == "Tuyển sinh lớp 1"
    assert pid not in repr(trail)
    audit_check = sohoa(settings, "audit", "verify")
    assert audit_check.returncode == 0, audit_check.stderr
