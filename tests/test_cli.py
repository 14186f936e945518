"""The ``sohoa`` command: ocr, digitize, keys, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from digitizer.config import Settings
from digitizer.stack import settings_env
from fixtures import generator
from fixtures.metrics import cer

SAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "samples"


def sohoa(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digitizer.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


@pytest.mark.smoke
def test_ocr_prints_text_in_reading_order(tmp_path: Path) -> None:
    page = generator.generate_page(31, "quyet-dinh")
    path = tmp_path / "page.png"
    page.image.save(path, dpi=(300, 300))
    result = sohoa("ocr", str(path))
    assert result.returncode == 0, result.stderr
    assert cer(page.text, result.stdout) < 0.02
    assert result.stdout.splitlines()[0] == page.lines[0].text


@pytest.mark.smoke
def test_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "fake.pdf"
    bad.write_text("<html>not a pdf</html>")
    result = sohoa("ocr", str(bad))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("sohoa: error:") and "HTML" in lines[0]


def test_digitize_json_on_the_configured_stack(settings: Settings, tmp_path: Path) -> None:
    """GIVEN the bundled samples WHEN digitized with --json THEN one JSON object per
    document, each settled, with a searchable PDF copied out."""
    env = settings_env(settings)
    out = tmp_path / "out"
    result = sohoa(
        "digitize", str(SAMPLES), "--json", "--out", str(out), "--citizen", "001099012345", env=env
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 4
    for record in records:
        assert record["state"] in {"ready", "needs_review"}, record
        assert Path(record["searchable_pdf_file"]).stat().st_size > 1000
        assert record["searchable_pdf"].startswith(f"s3://{settings.s3.bucket}/")
    assert "001099012345" not in result.stdout + result.stderr
    # Progress went to stderr, results to stdout.
    assert "4/4 documents" in result.stderr


def test_digitize_reports_rejected_files(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "empty.pdf").write_bytes(b"")
    result = sohoa("digitize", str(tmp_path / "empty.pdf"), "--json", env=settings_env(settings))
    assert result.returncode == 1
    [record] = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["state"] == "rejected" and "empty" in record["error"]


def test_keys_create_list_revoke(settings: Settings) -> None:
    env = settings_env(settings)
    created = sohoa("keys", "create", "--role", "verifier", "--name", "Lê Văn Kiểm", env=env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("sohoa_")
    listed = sohoa("keys", "list", env=env).stdout
    assert "verifier" in listed and key not in listed
    key_id = listed.split()[0]
    assert sohoa("keys", "revoke", key_id, env=env).returncode == 0
    assert "revoked" in sohoa("keys", "list", env=env).stdout


def test_reprocess_and_sweep_commands(settings: Settings) -> None:
    from tests import samples
    from tests.helpers import client, drain

    env = settings_env(settings)
    api = client(settings)
    doc = api.post("/v1/documents", files={"file": ("a.png", samples.png(), "image/png")})
    doc_id = doc.json()["documents"][0]["id"]
    drain(settings)
    result = sohoa("reprocess", doc_id, env=env)
    assert result.returncode == 0, result.stderr
    assert "queued 1" in result.stdout
    assert api.get(f"/v1/documents/{doc_id}").json()["state"] in {"uploaded", "queued"}
    swept = sohoa("sweep", env=env)
    assert swept.returncode == 0 and swept.stdout.startswith("relayed")
    drain(settings)
    assert api.get(f"/v1/documents/{doc_id}").json()["state"] in {"ready", "needs_review"}
    missing = sohoa("reprocess", "0" * 32, env=env)
    assert missing.returncode == 2 and missing.stderr.startswith("sohoa: error:")


def test_classify_json_contract(tmp_path: Path) -> None:
    """`sohoa classify FILE --json` prints DESIGN.md's object: type, confidence, fields with
    value, confidence (a probability) and source span; dates ISO."""
    import re

    truth = json.loads((SAMPLES / "trich-luc-khai-sinh.json").read_text())["text"]
    env = {"SOHOA_EMBEDDED__HOME": str(tmp_path / "home")}
    result = sohoa("classify", str(SAMPLES / "trich-luc-khai-sinh.png"), "--json", env=env)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["type"] == "birth_certificate"
    assert 0.0 <= out["confidence"] <= 1.0
    fields = out["fields"]
    assert fields["personal_id"]["value"] in truth
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", fields["date_of_birth"]["value"])
    for value in fields.values():
        assert 0.0 <= value["confidence"] <= 1.0
        assert value["source"]["page"] == 0 and value["source"]["text"]
