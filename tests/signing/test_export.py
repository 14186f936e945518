"""Vault export: a signed package (ZIP + manifest + detached CMS) that a receiving system checks."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest
from asn1crypto import cms
from fastapi.testclient import TestClient
from sqlalchemy import select

from digitizer.api.app import create_app
from digitizer.config import Settings
from digitizer.services import export
from digitizer.services.keys import create_key
from digitizer.services.wiring import object_store
from fixtures.idp import TestIdentityProvider
from signing.cms import sign_detached, validate_detached
from storage.db import AuditEvent, ECopyStatus, session_scope
from tests.digitizer import rows
from tests.signing.conftest import SigningEnv, make_sample_pdf, office_signing
from tests.signing.test_service import sohoa

OFFICE = "ubnd-tinh-ninh-binh"
PID = "037190001234"


@pytest.fixture
def export_settings(settings: Settings, env: SigningEnv) -> Settings:
    return settings.model_copy(update={"signing": office_signing(env, OFFICE)})


def _vault(settings: Settings, signed_pdf: bytes) -> dict[str, str]:
    """A citizen with two valid e-copies, one revoked, one superseded; files in the store."""
    store = object_store(settings)
    store.ensure_bucket()
    other_pdf = make_sample_pdf(1)
    ids: dict[str, str] = {}
    with session_scope(settings.db.url) as session:
        person = rows.citizen(session, settings, PID)
        for name, doc_type, data, status in (
            ("birth", "birth_certificate", signed_pdf, ECopyStatus.VALID),
            ("diploma", "diploma", other_pdf, ECopyStatus.VALID),
            ("decision", "decision", other_pdf, ECopyStatus.REVOKED),
            ("old_id", "citizen_id", other_pdf, ECopyStatus.SUPERSEDED),
        ):
            doc = rows.document(session, citizen_id=person.id, doc_type=doc_type, office=OFFICE)
            digest = hashlib.sha256(data).hexdigest()
            key = f"ecopies/{doc.id}/{digest}.pdf"
            store.put_bytes(key, data, "application/pdf")
            ecopy = rows.ecopy(session, doc, object_key=key, sha256=digest, status=status)
            if status == ECopyStatus.SUPERSEDED:
                ecopy.superseded_by = ids["birth"]
            ids[name] = ecopy.id
        ids["citizen"] = person.id
    return ids


def _approver(settings: Settings) -> TestClient:
    with session_scope(settings.db.url) as session:
        _, key = create_key(session, name="Đỗ Minh Châu", role="approver", office=OFFICE)
    test_client = TestClient(create_app(settings), raise_server_exceptions=False)
    test_client.headers["X-API-Key"] = key
    return test_client


def _rezip(
    data: bytes, change: dict[str, bytes | None], add: dict[str, bytes] | None = None
) -> bytes:
    """The package with entries replaced (bytes) or removed (None), and entries added."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename in change:
                replacement = change[info.filename]
                if replacement is not None:
                    dst.writestr(info.filename, replacement)
            else:
                dst.writestr(info, src.read(info))
        for name, content in (add or {}).items():
            dst.writestr(name, content)
    return out.getvalue()


def test_export_is_signed_complete_and_verifiable(
    export_settings: Settings, signed: dict[str, bytes]
) -> None:
    ids = _vault(export_settings, signed["B-LT"])
    idp = TestIdentityProvider(export_settings.embedded.home / "idp")
    approver = _approver(export_settings)
    answer = approver.post(
        "/v1/citizens/export",
        json={"purpose": "Chuyển hồ sơ sang Sở Tư pháp"},
        headers={"X-Citizen-Token": idp.token(PID)},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    package = answer.content
    archive = zipfile.ZipFile(io.BytesIO(package))
    assert sorted(archive.namelist()) == sorted(
        [
            "manifest.json",
            "manifest.json.p7s",
            f"ecopies/{ids['birth']}.pdf",
            f"ecopies/{ids['diploma']}.pdf",
        ]
    )
    assert archive.read(f"ecopies/{ids['birth']}.pdf") == signed["B-LT"]
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["format"] == export.FORMAT
    assert manifest["citizen_ref"] == ids["citizen"]
    assert manifest["exported_by"]["office_code"] == OFFICE
    listed = {d["ecopy_id"]: d for d in manifest["documents"]}
    assert set(listed) == {ids["birth"], ids["diploma"], ids["decision"]}  # not the superseded
    assert (
        listed[ids["decision"]]["status"] == "revoked" and listed[ids["decision"]]["file"] is None
    )
    birth = listed[ids["birth"]]
    assert birth["sha256"] == hashlib.sha256(signed["B-LT"]).hexdigest()
    assert birth["issuer"] and birth["issued_at"] and birth["document_type"] == "birth_certificate"
    assert PID not in archive.read("manifest.json").decode()

    context = export.context_from_settings(export_settings)
    check = export.verify_package(package, context)
    assert check.ok, check.problems
    assert check.signature is not None and check.signature.timestamped
    assert "Ninh Bình" in (check.signature.signer or "")

    with session_scope(export_settings.db.url) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "vault.export")).one()
        assert event.citizen_id == ids["citizen"]
        assert event.purpose == "Chuyển hồ sơ sang Sở Tư pháp"
        assert sorted(event.detail["ecopy_ids"]) == sorted(listed)


@pytest.mark.smoke
def test_tampering_is_detected(export_settings: Settings, signed: dict[str, bytes]) -> None:
    ids = _vault(export_settings, signed["B-LT"])
    with session_scope(export_settings.db.url) as session:
        citizen = export.find_citizen(session, export_settings, PID)
        package = export.build_package(
            session,
            export_settings,
            object_store(export_settings),
            citizen,
            None,
            purpose="kiểm thử",
        ).data
    context = export.context_from_settings(export_settings)
    archive = zipfile.ZipFile(io.BytesIO(package))
    manifest = archive.read("manifest.json")
    birth = f"ecopies/{ids['birth']}.pdf"

    # a changed manifest (a revoked e-copy passed off as valid)
    forged = manifest.replace(b'"status": "revoked"', b'"status": "valid"')
    assert forged != manifest
    check = export.verify_package(_rezip(package, {"manifest.json": forged}), context)
    assert not check.ok and any("manifest signature" in p for p in check.problems)
    assert check.signature is not None and not check.signature.intact

    # a changed file, a missing file, an extra file
    changed = bytearray(archive.read(birth))
    changed[len(changed) // 2] ^= 0x01
    check = export.verify_package(_rezip(package, {birth: bytes(changed)}), context)
    assert not check.ok and check.problems == [
        f"e-copy {ids['birth']}: file {birth} does not match its SHA-256"
    ]
    check = export.verify_package(_rezip(package, {birth: None}), context)
    assert not check.ok and "missing" in check.problems[0]
    check = export.verify_package(
        _rezip(package, {}, add={"ecopies/extra.pdf": b"%PDF-1.7"}), context
    )
    assert not check.ok and check.problems == ["ecopies/extra.pdf is not listed in the manifest"]

    # a damaged signature, no signature, not a ZIP
    p7s = archive.read("manifest.json.p7s")
    info = cms.ContentInfo.load(p7s)
    value = info["content"]["signer_infos"][0]["signature"].native
    at = p7s.index(value) + len(value) // 2
    broken = p7s[:at] + bytes([p7s[at] ^ 1]) + p7s[at + 1 :]
    check = export.verify_package(_rezip(package, {"manifest.json.p7s": broken}), context)
    assert not check.ok and check.signature is not None and not check.signature.valid
    # the signature timestamp (the end of the structure) damaged
    stamp = p7s[:-40] + bytes([p7s[-40] ^ 1]) + p7s[-39:]
    check = export.verify_package(_rezip(package, {"manifest.json.p7s": stamp}), context)
    assert not check.ok, check.as_dict()
    assert not export.verify_package(_rezip(package, {"manifest.json.p7s": None}), context).ok
    assert not export.verify_package(b"PK not a zip", context).ok

    # intact but checked without a trust store: not accepted
    check = export.verify_package(package, None)
    assert check.signature is not None and check.signature.intact and not check.ok
    # the untouched package passes
    assert export.verify_package(package, context).ok


def test_detached_signature_by_an_untrusted_key_is_not_trusted(
    export_settings: Settings, env: SigningEnv
) -> None:
    data = b'{"format": "x"}'
    signature = sign_detached(data, env.keys[OFFICE])
    assert validate_detached(data, signature, env.context()).ok
    assert not validate_detached(data + b" ", signature, env.context()).intact
    # a context that trusts nothing
    from pyhanko_certvalidator import ValidationContext

    untrusted = validate_detached(data, signature, ValidationContext(trust_roots=[]))
    assert untrusted.intact and untrusted.valid and not untrusted.trusted


def test_export_needs_the_citizen_an_approver_and_a_purpose(
    export_settings: Settings, signed: dict[str, bytes]
) -> None:
    _vault(export_settings, signed["B-LT"])
    idp = TestIdentityProvider(export_settings.embedded.home / "idp")
    approver = _approver(export_settings)
    body = {"purpose": "Chuyển hồ sơ"}
    assert approver.post("/v1/citizens/export", json=body).status_code == 401
    token = {"X-Citizen-Token": idp.token(PID)}
    assert approver.post("/v1/citizens/export", json={}, headers=token).status_code == 422
    assert (
        approver.post("/v1/citizens/export", json={"purpose": "  "}, headers=token).status_code
        == 422
    )
    unknown = {"X-Citizen-Token": idp.token("001099000001")}
    assert approver.post("/v1/citizens/export", json=body, headers=unknown).status_code == 404
    with session_scope(export_settings.db.url) as session:
        _, clerk_key = create_key(session, name="Vũ Thị Mai", role="clerk", office=OFFICE)
    clerk = TestClient(create_app(export_settings), raise_server_exceptions=False)
    answer = clerk.post("/v1/citizens/export", json=body, headers={**token, "X-API-Key": clerk_key})
    assert answer.status_code == 403


def test_cli_export_and_verify(
    export_settings: Settings, signed: dict[str, bytes], tmp_path: object
) -> None:
    from pathlib import Path

    ids = _vault(export_settings, signed["B-LT"])
    out = Path(str(tmp_path)) / "vault.zip"
    done = sohoa(export_settings, "export", "--citizen-pid", PID, str(out))
    assert done.returncode == 0, done.stderr
    assert PID not in done.stdout + done.stderr
    checked = sohoa(export_settings, "verify-package", str(out), "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    result = json.loads(checked.stdout)
    assert result["ok"] and result["documents"] == 3 and result["signature"]["trusted"]
    birth = f"ecopies/{ids['birth']}.pdf"
    out.write_bytes(_rezip(out.read_bytes(), {birth: b"%PDF-1.7 replaced"}))
    checked = sohoa(export_settings, "verify-package", str(out))
    assert checked.returncode == 1 and "does not match its SHA-256" in checked.stdout
    missing = sohoa(export_settings, "export", "--citizen-pid", "001099000001", str(out))
    assert missing.returncode != 0 and "001099000001" not in missing.stderr
