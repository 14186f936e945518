"""Verification and signing wired into the service: API, CLI and intake of signed uploads."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from digitizer.config import Settings
from digitizer.stack import settings_env
from storage.db import Document, session_scope
from storage.objects import original_key
from tests.helpers import client, drain
from tests.signing.conftest import SigningEnv, make_sample_pdf, office_signing, tamper_stream

OFFICE = "ubnd-tinh-ninh-binh"


@pytest.fixture
def signing_settings(settings: Settings, env: SigningEnv) -> Settings:
    return settings.model_copy(update={"signing": office_signing(env, OFFICE)})


def sohoa(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digitizer.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **settings_env(settings)},
        timeout=120,
    )


def test_verify_api_gives_vietnamese_verdicts(
    signing_settings: Settings, signed: dict[str, bytes]
) -> None:
    api = client(signing_settings, role="verifier")

    def post(data: bytes, fmt: str = "json"):  # type: ignore[no-untyped-def]
        return api.post(
            f"/v1/verify?format={fmt}", files={"file": ("ban-sao.pdf", data, "application/pdf")}
        )

    valid = post(signed["B-LT"])
    assert valid.status_code == 200, valid.text
    body = valid.json()
    assert (body["verdict"], body["label"]) == ("valid", "Hợp lệ")
    [sig] = body["signatures"]
    assert sig["intact"] and sig["trusted"] and sig["pades_level"] == "B-LT"

    tampered = post(tamper_stream(signed["B-LT"])).json()
    assert (tampered["verdict"], tampered["label"]) == ("invalid", "Không hợp lệ")
    assert post(make_sample_pdf(1)).json()["verdict"] == "no_signature"

    unreadable = post(b"%PDF-1.7 garbage")
    assert unreadable.status_code == 422
    assert unreadable.json()["type"] == "/problems/unreadable-pdf"

    html = post(signed["B-LT"], "html")
    assert html.headers["content-type"].startswith("text/html") and "Hợp lệ" in html.text
    pdf = post(tamper_stream(signed["B-LT"]), "pdf")
    assert pdf.content.startswith(b"%PDF")


def test_verify_needs_a_verifier_key(signing_settings: Settings, signed: dict[str, bytes]) -> None:
    files = {"file": ("a.pdf", signed["B-LT"], "application/pdf")}
    assert client(signing_settings, role=None).post("/v1/verify", files=files).status_code == 401
    assert (
        client(signing_settings, role="portal").post("/v1/verify", files=files).status_code == 403
    )


def test_cli_sign_then_verify(signing_settings: Settings, tmp_path: Path) -> None:
    source = tmp_path / "ban-chinh.pdf"
    source.write_bytes(make_sample_pdf(1))
    before = source.read_bytes()
    out = tmp_path / "ban-sao-dien-tu.pdf"
    signed = sohoa(signing_settings, "sign", str(source), "--office", OFFICE, "--out", str(out),
                   "--signer", "Nguyễn Văn An")  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    assert source.read_bytes() == before  # the input is never rewritten
    checked = sohoa(signing_settings, "verify", str(out), "--json")
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["verdict"] == "valid"
    assert report["signatures"][0]["pades_level"] == "B-LT"

    out.write_bytes(tamper_stream(out.read_bytes()))
    assert sohoa(signing_settings, "verify", str(out), "--json").returncode == 3
    garbage = tmp_path / "x.pdf"
    garbage.write_bytes(b"not a pdf")
    failed = sohoa(signing_settings, "verify", str(garbage))
    assert failed.returncode == 2
    assert failed.stderr.strip().startswith("sohoa: error:")


def test_signed_upload_is_validated_and_kept_byte_for_byte(
    signing_settings: Settings, signed: dict[str, bytes]
) -> None:
    """GIVEN a signed e-copy uploaded for digitization WHEN the pipeline runs THEN its
    signatures are validated at preflight, the verdict stored, and the original is
    its own searchable PDF (never rewritten)."""
    api = client(signing_settings)
    data = signed["B-LT"]
    response = api.post("/v1/documents", files={"file": ("signed.pdf", data, "application/pdf")})
    doc_id = response.json()["documents"][0]["id"]
    drain(signing_settings)
    with session_scope(signing_settings.db.url) as session:
        doc = session.get(Document, doc_id)
        assert doc is not None
        assert doc.has_signatures
        assert doc.results["signatures"]["verdict"] == "valid"
        key = original_key(hashlib.sha256(data).hexdigest())
        assert doc.results["searchable_pdf"] == key
    tampered = tamper_stream(data)
    response = api.post("/v1/documents", files={"file": ("bad.pdf", tampered, "application/pdf")})
    bad_id = response.json()["documents"][0]["id"]
    drain(signing_settings)
    status = api.get(f"/v1/documents/{bad_id}").json()
    assert status["state"] == "needs_review"
    assert "do not verify" in status["error"]


def test_approver_issues_a_signed_ecopy_with_a_public_qr_check(
    signing_settings: Settings,
) -> None:
    """GIVEN a processed scan WHEN an approver issues it THEN the office signs a new
    e-copy whose QR code's public check shows only type, issuer, date and status, and
    verifying the e-copy reports it as issued here and valid."""
    from tests import samples

    clerk = client(signing_settings)
    scan = samples.png(["Giấy xác nhận thông tin về cư trú"])
    doc_id = clerk.post("/v1/documents", files={"file": ("s.png", scan, "image/png")}).json()[
        "documents"
    ][0]["id"]
    drain(signing_settings)
    body = {"office": OFFICE, "signer_name": "Nguyễn Văn An"}
    assert clerk.post(f"/v1/documents/{doc_id}/issue", json=body).status_code == 403

    approver = client(signing_settings, role="approver")
    issued = approver.post(f"/v1/documents/{doc_id}/issue", json=body)
    assert issued.status_code == 201, issued.text
    ecopy = issued.json()
    assert clerk.get(f"/v1/documents/{doc_id}").json()["state"] == "issued"
    assert approver.post(f"/v1/documents/{doc_id}/issue", json=body).status_code == 409

    code = ecopy["verify_url"].rsplit("/", 1)[1]
    assert len(code) >= 22  # 128 random bits, URL-safe
    public = client(signing_settings, role=None).get(f"/v1/verify/{code}")
    assert public.status_code == 200
    assert public.json() == {
        "status": "valid",
        "label": "Hợp lệ",
        "doc_type": None,
        "issuer": "Ủy ban nhân dân tỉnh Ninh Bình",
        "issue_date": public.json()["issue_date"],
    }
    assert client(signing_settings, role=None).get("/v1/verify/" + "A" * 22).status_code == 404

    import httpx

    link = clerk.get(ecopy["download_url"], follow_redirects=False).headers["location"]
    signed = httpx.get(link).content
    verifier = client(signing_settings, role="verifier")
    report = verifier.post(
        "/v1/verify", files={"file": ("e.pdf", signed, "application/pdf")}
    ).json()
    assert (report["verdict"], report["document_status"]) == ("valid", "valid")
    # The scan that was signed is untouched.
    from digitizer.services.wiring import object_store

    assert (
        object_store(signing_settings).get_bytes(original_key(hashlib.sha256(scan).hexdigest()))
        == scan
    )


def test_renewal_adds_a_document_timestamp_as_a_new_object(signing_settings: Settings) -> None:
    """GIVEN an issued B-LT e-copy WHEN it is due for renewal THEN a document timestamp
    makes it B-LTA in a new object; the earlier file stays stored and both verify as
    issued here."""
    from datetime import timedelta

    from digitizer.services.issuing import renew_due
    from digitizer.services.signing import SigningService
    from digitizer.services.wiring import object_store
    from storage.db import ECopy
    from tests import samples

    clerk = client(signing_settings)
    scan = samples.png(["Trích lục khai sinh"])
    doc_id = clerk.post("/v1/documents", files={"file": ("s.png", scan, "image/png")}).json()[
        "documents"
    ][0]["id"]
    drain(signing_settings)
    approver = client(signing_settings, role="approver")
    issued = approver.post(f"/v1/documents/{doc_id}/issue", json={"office": OFFICE})
    assert issued.status_code == 201, issued.text
    store = object_store(signing_settings)
    with session_scope(signing_settings.db.url) as session:
        old_key = session.get(ECopy, issued.json()["id"]).object_key  # type: ignore[union-attr]
        renewed = renew_due(session, store, SigningService(signing_settings), timedelta(0))
        assert renewed == [issued.json()["id"]]
        ecopy = session.get(ECopy, renewed[0])
        assert ecopy is not None and ecopy.object_key != old_key
        new_key = ecopy.object_key
    verifier = client(signing_settings, role="verifier")
    for key, level in ((new_key, "B-LTA"), (old_key, "B-LT")):
        report = verifier.post(
            "/v1/verify", files={"file": ("e.pdf", store.get_bytes(key), "application/pdf")}
        ).json()
        assert report["verdict"] == "valid", report
        assert report["document_status"] == "valid"
        assert report["signatures"][0]["pades_level"] == level


def test_signing_failures_are_problems_and_change_nothing(signing_settings: Settings) -> None:
    """A TSA that does not answer gives a 503 problem; the document stays issuable."""
    from storage.embedded import free_port
    from tests import samples

    dead_tsa = signing_settings.model_copy(
        update={
            "signing": signing_settings.signing.model_copy(
                update={"tsa_url": f"http://127.0.0.1:{free_port()}/tsa"}
            )
        }
    )
    clerk = client(dead_tsa)
    doc_id = clerk.post(
        "/v1/documents", files={"file": ("s.png", samples.png(["Giấy chứng tử"]), "image/png")}
    ).json()["documents"][0]["id"]
    drain(dead_tsa)
    approver = client(dead_tsa, role="approver")
    response = approver.post(f"/v1/documents/{doc_id}/issue", json={"office": OFFICE})
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert clerk.get(f"/v1/documents/{doc_id}").json()["state"] in {"ready", "needs_review"}
    unknown = approver.post(f"/v1/documents/{doc_id}/issue", json={"office": "no-such-office"})
    assert unknown.status_code == 404
