"""Backup and restore into fresh instances, then proof that nothing was lost.

State: scans uploaded through the API and processed by the pipeline, one issued
(signed) e-copy, audit events and an anchor of the chain. ``sohoa backup`` dumps
PostgreSQL (pg_dump, custom format) and copies the bucket (rclone). A new PostgreSQL
cluster and a new SeaweedFS (encrypting at rest with its own key), both on free
loopback ports, receive ``sohoa restore``, whose check verifies every document (original
present with its SHA-256, derived objects present, e-copy with its SHA-256) and the
audit chain. Then a restored object is corrupted, another deleted and an audit event
edited: ``sohoa check`` names each.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from digitizer.config import DatabaseSettings, S3Settings, Settings
from digitizer.services.audit import anchor_now
from digitizer.services.backup import BackupError, backup, read_manifest, restore
from digitizer.services.integrity import check
from digitizer.services.wiring import object_store
from digitizer.stack import settings_env
from storage.db import Document, ECopy, get_engine, session_scope
from storage.embedded import PostgresServer, SeaweedFS
from storage.objects import original_key
from tests import samples
from tests.digitizer.vault_env import OFFICE, PID, api, env, idp, issue, vault_settings
from tests.helpers import drain

__all__ = ["env", "idp", "vault_settings"]

pytestmark = pytest.mark.timeout(240)


def sohoa(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digitizer.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=180,
    )


def _build_state(settings: Settings) -> dict[str, str]:
    """Two processed uploads (one image OCR'd, one born-digital PDF), one issued e-copy."""
    clerk = api(settings, "clerk")
    ids: dict[str, str] = {}
    uploads = {
        "scan": ("giay-khai-sinh.png", samples.png(["Giấy khai sinh", "Họ và tên: Lê Văn An"])),
        "pdf": ("quyet-dinh.pdf", samples.text_pdf()),
    }
    for name, (filename, data) in uploads.items():
        media = "image/png" if filename.endswith(".png") else "application/pdf"
        response = clerk.post(
            "/v1/documents", files={"file": (filename, data, media)}, data={"citizen_pid": PID}
        )
        assert response.status_code == 202, response.text
        ids[name] = response.json()["documents"][0]["id"]
    drain(settings)
    approved = clerk.post(f"/v1/review/{ids['pdf']}/approve", json={"doc_type": "decision"})
    assert approved.status_code == 200, approved.text
    ids["ecopy"] = issue(api(settings, "approver"), ids["pdf"])["id"]
    assert anchor_now(settings) is not None  # a TSA-stamped anchor with its copy in S3
    assert clerk.get(f"/v1/documents/{ids['scan']}").status_code == 200  # after the anchor
    return ids


def test_backup_restores_into_fresh_instances_and_check_names_damage(
    vault_settings: Settings, tmp_path: Path
) -> None:
    source = vault_settings
    ids = _build_state(source)
    assert check(source).ok

    done = sohoa("backup", str(tmp_path / "backups"), "--name", "b1", env=settings_env(source))
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "backups" / "b1"
    assert str(folder) in done.stdout and "2 documents and 1 e-copies verified" in done.stdout
    manifest = read_manifest(folder)
    db = manifest["database"]
    assert db["kind"] == "postgresql" and (folder / db["file"]).read_bytes()[:5] == b"PGDMP"
    assert db["sha256"] == hashlib.sha256((folder / db["file"]).read_bytes()).hexdigest()
    assert db["rows"]["documents"] == 2 and db["rows"]["ecopies"] == 1
    assert db["rows"]["audit_events"] == manifest["audit_head"]["seq"] > 0
    assert manifest["objects"]["by_prefix"]["originals"] == 2
    assert manifest["objects"]["by_prefix"]["ecopies"] == 1
    assert manifest["objects"]["by_prefix"]["audit"] >= 1
    assert manifest["verified"] == {
        "ok": True,
        "documents": 2,
        "ecopies": 1,
        "objects_referenced": manifest["verified"]["objects_referenced"],
        "findings": [],
    }
    assert (folder.stat().st_mode & 0o077) == 0

    with (
        PostgresServer() as pg,
        SeaweedFS(data_dir=tmp_path / "weed-restored", sse_kek=secrets.token_hex(32)) as weed,
    ):
        url = make_url(pg.url).set(database="sohoa_restored")
        fresh = source.model_copy(
            update={
                "db": DatabaseSettings(url=url.render_as_string(hide_password=False)),
                "s3": S3Settings(
                    endpoint=weed.endpoint,
                    access_key=weed.access_key,
                    secret_key=weed.secret_key,
                    bucket="sohoa-restored",
                    sse=True,
                ),
            }
        )
        fresh_env = settings_env(fresh)
        done = sohoa("restore", str(folder), "--json", env=fresh_env)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["ok"] and report["documents"] == 2 and report["ecopies"] == 1
        assert report["hashed"] >= 3  # two originals and the e-copy, recomputed
        assert report["audit"]["ok"] and report["audit"]["events"] == manifest["audit_head"]["seq"]
        assert report["audit"]["anchors"]["object_store"] >= 1

        # The restored stack serves what was there, encrypted at rest by the new server.
        store = object_store(fresh)
        with session_scope(fresh.db.url) as session:
            doc = session.get(Document, ids["scan"])
            ecopy = session.get(ECopy, ids["ecopy"])
            assert doc is not None and ecopy is not None
            scan_key, scan_searchable = original_key(doc.sha256), doc.results["searchable_pdf"]
            assert store.sha256(ecopy.object_key)[0] == ecopy.sha256
        info = store.stat(scan_key)
        assert info is not None and info.metadata.get("x-amz-server-side-encryption") == "AES256"
        status = api(fresh, "clerk").get(f"/v1/documents/{ids['pdf']}")
        assert status.status_code == 200 and status.json()["state"] == "issued"

        # Damage: a changed original, a lost derived object, an edited audit event.
        store.put_bytes(scan_key, b"not the scan")
        store.delete(scan_searchable)
        done = sohoa("check", env=fresh_env)
        assert done.returncode == 3
        assert f"document {ids['scan']}: {scan_key}: SHA-256 differs" in done.stderr
        assert f"document {ids['scan']}: {scan_searchable}: missing" in done.stderr
        assert "audit" not in done.stderr.split("\n")[0]  # the chain itself is intact

        engine = create_engine(fresh.db.url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE audit_events SET action = 'x.forged' WHERE seq = 2"))
        engine.dispose()
        report_after = check(fresh)
        assert not report_after.ok
        assert any("event 2" in p for p in report_after.audit_problems)
        assert {f.key for f in report_after.findings} == {scan_key, scan_searchable}
        get_engine(fresh.db.url).dispose()


@pytest.mark.smoke
def test_backup_and_restore_on_the_same_servers(settings: Settings, tmp_path: Path) -> None:
    """Backup, restore into a new database and bucket, check; damaged folders are refused."""
    clerk = api(settings, "clerk", office=OFFICE)
    response = clerk.post(
        "/v1/documents", files={"file": ("a.pdf", samples.text_pdf(), "application/pdf")}
    )
    assert response.status_code == 202, response.text
    drain(settings)
    result = backup(settings, tmp_path / "backups")
    assert result.ok and result.report.documents == 1
    folder = result.folder
    assert folder.name.startswith("sohoa-backup-")

    # Never over live data: a bucket with objects, a database with tables.
    with pytest.raises(BackupError, match=r"bucket \S+ is not empty"):
        restore(settings, folder)
    empty_bucket = settings.s3.model_copy(update={"bucket": f"{settings.s3.bucket}-e"})
    with pytest.raises(BackupError, match=r"already holds tables|exists: restore into a new"):
        restore(settings.model_copy(update={"s3": empty_bucket}), folder)

    kind = make_url(settings.db.url).get_backend_name()
    if kind == "sqlite":
        new_url = f"sqlite:///{tmp_path / 'restored.db'}"
    else:
        new_url = (
            make_url(settings.db.url)
            .set(database=f"{make_url(settings.db.url).database}_r")
            .render_as_string(hide_password=False)
        )
    bucket = f"{settings.s3.bucket}-r"
    fresh = settings.model_copy(
        update={
            "db": DatabaseSettings(url=new_url),
            "s3": settings.s3.model_copy(update={"bucket": bucket}),
        }
    )
    try:
        restored = restore(fresh, folder)
        assert restored.rows["documents"] == 1
        report = check(fresh, audit_head=restored.audit_head)
        assert report.ok, report.summary()
        assert report.documents == 1 and report.hashed >= 1
    finally:
        get_engine(new_url).dispose()
        if kind != "sqlite":
            admin = create_engine(
                make_url(settings.db.url).set(database="postgres"), isolation_level="AUTOCOMMIT"
            )
            with admin.connect() as conn:
                name = make_url(new_url).database
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    # A changed object file in the backup folder: the restore refuses, naming it.
    victim = next(p for p in (folder / "objects" / "originals").iterdir())
    victim.write_bytes(b"tampered")
    other = settings.model_copy(
        update={"s3": settings.s3.model_copy(update={"bucket": f"{settings.s3.bucket}-x"})}
    )
    damaged = re.escape(f"objects/originals/{victim.name}: SHA-256 differs")
    with pytest.raises(BackupError, match=damaged):
        restore(other, folder)
