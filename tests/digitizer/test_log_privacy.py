"""A full scenario with every log captured: no personal id, no citizen name, no key in them.

Upload (with the citizen's PID) a born-digital PDF whose text holds the citizen's name and
PID, process it in-process (the worker's logs land here too), read it every way the API
offers, issue and verify its e-copy, query the audit trail, anchor and verify the chain,
and fail some authentications with keys that look real. Every log record of every logger
(at DEBUG), and everything written to stdout/stderr, is scanned.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pymupdf
import pytest
from click.testing import CliRunner

from digitizer import cli
from digitizer.config import OfficeKeySettings, Settings, SigningSettings
from digitizer.services.keys import create_key
from fixtures.pki import OfficeKeyFile, TestPki, start_test_pki
from storage.db import Document, DocumentState, session_scope
from tests.helpers import drain

PID = "079198001234"
NAME = "Trần Thị Bích Ngọc"
OFFICE = "ubnd-tinh-ninh-binh"


def citizen_pdf() -> bytes:
    """A born-digital residence confirmation naming the citizen (text layer, no OCR doubt)."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_font(fontname="notos", fontbuffer=pymupdf.Font("notos").buffer)
    lines = [
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "GIẤY XÁC NHẬN THÔNG TIN VỀ CƯ TRÚ",
        f"Họ, chữ đệm và tên: {NAME}",
        f"Số định danh cá nhân: {PID}",
        "Nơi thường trú: Phường Ba Đình, Thành phố Hà Nội",
    ]
    for i, line in enumerate(lines):
        page.insert_text((60, 80 + 24 * i), line, fontname="notos", fontsize=12)
    data = doc.tobytes()
    doc.close()
    return data


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestPki, Path, OfficeKeyFile]]:
    work = tmp_path_factory.mktemp("privacy-pki")
    with start_test_pki(work) as (test_pki, _server):
        office_key = test_pki.write_office_keys(work / "p12")[OFFICE]
        yield test_pki, test_pki.write_trust_store(work / "trust"), office_key


def test_full_scenario_logs_no_personal_id_name_or_key(
    settings: Settings,
    pki: tuple[TestPki, Path, OfficeKeyFile],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    test_pki, trust_dir, office_key = pki
    signing = settings.model_copy(
        update={
            "signing": SigningSettings(
                trust_store_dir=trust_dir,
                tsa_url=test_pki.tsa_url,
                offices=[
                    OfficeKeySettings(
                        code=OFFICE,
                        name="Ủy ban nhân dân tỉnh Ninh Bình",
                        pkcs12=office_key.path,
                        passphrase=office_key.passphrase,
                    )
                ],
            )
        }
    )
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        logger = logging.getLogger(name)
        if logger.level and logger.level > logging.DEBUG:
            caplog.set_level(logging.DEBUG, logger=name)

    from fastapi.testclient import TestClient

    from digitizer.api.app import create_app

    secrets: list[str] = []

    def key(role: str) -> dict[str, str]:
        with session_scope(signing.db.url) as session:
            _, secret = create_key(session, name=f"Cán bộ {role}", role=role, office=OFFICE)
        secrets.append(secret)
        return {"X-API-Key": secret}

    clerk, approver, verifier, admin = key("clerk"), key("approver"), key("verifier"), key("admin")
    api = TestClient(create_app(signing), raise_server_exceptions=False)

    pdf = citizen_pdf()
    up = api.post(
        "/v1/documents",
        files={"file": ("giay-xac-nhan-cu-tru.pdf", pdf, "application/pdf")},
        data={"citizen_pid": PID},
        headers=clerk,
    )
    assert up.status_code == 202, up.text
    doc_id = up.json()["documents"][0]["id"]
    batch = api.post(
        "/v1/batches",
        files=[("files", ("a.pdf", pdf, "application/pdf"))],
        data={"citizen_pid": PID, "name": "Hồ sơ cư trú"},
        headers=clerk,
    )
    assert batch.status_code == 202, batch.text
    bad_pid = api.post(
        "/v1/documents",
        files={"file": ("x.pdf", pdf, "application/pdf")},
        data={"citizen_pid": "079198001235x"},
        headers=clerk,
    )
    assert bad_pid.status_code == 422
    drain(signing)

    assert api.get(f"/v1/documents/{doc_id}", headers=clerk).status_code == 200
    assert api.get(f"/v1/batches/{batch.json()['batch']['id']}", headers=clerk).status_code == 200
    text_link = api.get(f"/v1/documents/{doc_id}/text", headers=clerk, follow_redirects=False)
    assert text_link.status_code == 307, text_link.text
    assert PID in httpx.get(text_link.headers["location"]).text  # the text does hold the PID
    pdf_link = api.get(
        f"/v1/documents/{doc_id}/searchable.pdf", headers=clerk, follow_redirects=False
    )
    assert pdf_link.status_code == 307

    with session_scope(signing.db.url) as session:
        doc = session.get(Document, doc_id)
        assert doc is not None and doc.citizen_id is not None
        citizen_id = doc.citizen_id
        if doc.state == DocumentState.NEEDS_REVIEW:
            # the review queue is not what this test is about: approve as a clerk would
            doc.state = DocumentState.APPROVED
    issued = api.post(f"/v1/documents/{doc_id}/issue", json={"office": OFFICE}, headers=approver)
    assert issued.status_code == 201, issued.text
    ecopy = issued.json()
    link = api.get(ecopy["download_url"], headers=clerk, follow_redirects=False)
    assert link.status_code == 307
    signed = httpx.get(link.headers["location"]).content
    verdict = api.post(
        "/v1/verify", files={"file": ("e.pdf", signed, "application/pdf")}, headers=verifier
    )
    assert verdict.status_code == 200 and verdict.json()["verdict"] == "valid", verdict.text

    trail = api.get("/v1/audit", params={"citizen_id": citizen_id}, headers=admin)
    assert trail.status_code == 200
    actions = {e["action"] for e in trail.json()["events"]}
    assert {"document.create", "document.read", "ecopy.issue", "ecopy.verify"} <= actions

    # failed authentications with keys that look real (and one that was revoked-looking)
    for fake in (secrets[0][:-4] + "AAAA", "sohoa_000000000000_" + "x" * 43, PID):
        assert api.get(f"/v1/documents/{doc_id}", headers={"X-API-Key": fake}).status_code == 401
        secrets.append(fake)

    monkeypatch.setattr(cli, "get_settings", lambda: signing)
    runner = CliRunner()
    anchored = runner.invoke(cli.main, ["-v", "audit", "anchor"])
    assert anchored.exit_code == 0, anchored.output
    checked = runner.invoke(cli.main, ["-v", "audit", "verify", "--json"])
    assert checked.exit_code == 0, checked.output
    outputs = anchored.output + checked.output

    captured = capfd.readouterr()
    logged = [(record.name, record.getMessage()) for record in caplog.records]
    logged += [(f"{r.name} (exception)", r.exc_text or "") for r in caplog.records if r.exc_text]
    assert len(logged) > 20  # the scenario did log: DEBUG from the app, the worker, libraries
    texts = [*(f"{n}: {m}" for n, m in logged), captured.out, captured.err, outputs, caplog.text]
    needles = {"PID": PID, "name": NAME, **{f"key {i}": s for i, s in enumerate(secrets)}}
    leaks = [
        f"{what} in {text[:200]!r}"
        for what, needle in needles.items()
        for text in texts
        if needle in text
    ]
    assert not leaks, "\n".join(leaks[:10])
