"""Keys (PKCS#12, PKCS#11 on SoftHSM), trust store, validation contexts, the test PKI itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.pki import write_material
from signing.errors import (
    KeyUnavailableError,
    SigningConfigError,
    TrustStoreError,
    UnknownOfficeError,
)
from signing.pki import (
    KeyRing,
    OfficeKey,
    Pkcs11Key,
    Pkcs12Key,
    ValidationConfig,
    ValidationContextPool,
    load_key,
    load_trust_store,
)
from signing.signer import PadesLevel, SignOptions, StampSpec, sign_pdf
from signing.validator import Verdict, validate
from tests.signing.conftest import VERIFY_URL, SigningEnv


# -- PKCS#12 ----------------------------------------------------------------------------------
@pytest.mark.smoke
def test_key_ring_loads_each_office_once(env: SigningEnv) -> None:
    offices = [
        OfficeKey(code, code, Pkcs12Key(kf.path, kf.passphrase))
        for code, kf in env.key_files.items()
        if code in ("ubnd-tinh-ninh-binh", "so-tu-phap-ha-noi", "ubnd-xa-yen-mo")
    ]
    with KeyRing(offices) as ring:
        key = ring.get("so-tu-phap-ha-noi")
        assert ring.get("so-tu-phap-ha-noi") is key
        assert key.subject_cn == "Sở Tư pháp thành phố Hà Nội"
        assert key.office_name == "so-tu-phap-ha-noi"
        assert ring.office_codes == sorted(o.office_code for o in offices)
        with pytest.raises(UnknownOfficeError) as info:
            ring.get("ubnd-xa-khong-co")
        assert info.value.slug == "signing-office-unknown"
        assert info.value.status == 404


@pytest.mark.smoke
def test_wrong_passphrase_or_missing_file_is_key_unavailable(
    env: SigningEnv, tmp_path: Path
) -> None:
    kf = env.key_files["ubnd-xa-yen-mo"]
    with pytest.raises(KeyUnavailableError) as info:
        load_key(Pkcs12Key(kf.path, "sai-mat-khau"))
    assert "sai-mat-khau" not in str(info.value)  # secrets never end up in messages
    assert info.value.type_uri() == "/problems/signing-key-unavailable"
    with pytest.raises(KeyUnavailableError):
        load_key(Pkcs12Key(tmp_path / "none.p12", "x"))


def test_passphrase_is_not_in_repr(env: SigningEnv) -> None:
    kf = env.key_files["ubnd-xa-yen-mo"]
    assert kf.passphrase not in repr(Pkcs12Key(kf.path, kf.passphrase))


# -- trust store ------------------------------------------------------------------------------
@pytest.mark.smoke
def test_trust_store_reads_pem_and_der(env: SigningEnv, tmp_path: Path) -> None:
    (tmp_path / "root.pem").write_bytes(env.pki.cert_pem("root"))
    (tmp_path / "root.der").write_bytes(env.pki.cert("unrelated-root", "unrelated").dump())
    (tmp_path / "README.txt").write_text("bỏ qua")  # not a certificate suffix: ignored
    store = load_trust_store(tmp_path)
    assert len(store.roots) == 2


def test_trust_store_errors(tmp_path: Path) -> None:
    with pytest.raises(TrustStoreError):
        load_trust_store(tmp_path / "missing")
    with pytest.raises(TrustStoreError):
        load_trust_store(tmp_path)  # empty
    (tmp_path / "broken.pem").write_text("not a certificate")
    with pytest.raises(TrustStoreError):
        load_trust_store(tmp_path)


def test_adding_a_root_to_the_trust_store_makes_its_signer_trusted(
    env: SigningEnv, sample_pdf: bytes, tmp_path: Path
) -> None:
    """GIVEN a signature under the unrelated root WHEN an operator adds that root to the trust
    store directory THEN the chain is found (the signer has no revocation info to check, so the
    hard-fail policy asks for none: it names no CRL or OCSP responder)."""
    doc = sign_pdf(sample_pdf, env.keys["unrelated"], SignOptions(PadesLevel.B_T), tsa=env.tsa)
    env.pki.write_trust_store(tmp_path, include_unrelated=True)
    pool = ValidationContextPool(ValidationConfig(trust_store_dir=tmp_path))
    assert validate(doc, pool.get()).verdict == Verdict.VALID


def test_context_pool_reuses_then_rebuilds(env: SigningEnv) -> None:
    pool = ValidationContextPool(ValidationConfig(trust_store_dir=env.trust_dir))
    first = pool.get()
    assert pool.get() is first
    pool.config = ValidationConfig(trust_store_dir=env.trust_dir, context_max_age_s=0)
    assert pool.get() is not first


# -- PKCS#11 on SoftHSM -----------------------------------------------------------------------
SOFTHSM_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
TOKEN_LABEL = "sohoa-thu-nghiem"
USER_PIN = "123456"


@pytest.fixture(scope="session")
def softhsm_key(env: SigningEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pkcs11Key]:
    """The commune's key imported into a fresh SoftHSM token (Debian package ``softhsm2``)."""
    util = shutil.which("softhsm2-util")
    module = next((m for m in SOFTHSM_MODULES if Path(m).exists()), None)
    if util is None or module is None:
        pytest.skip("SoftHSM is not installed (apt-get install softhsm2)")
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    # SoftHSM reads its configuration when the module is initialised: set it before loading
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    run = {"check": True, "capture_output": True, "env": {**os.environ}}
    subprocess.run(
        [
            util,
            "--init-token",
            "--free",
            "--label",
            TOKEN_LABEL,
            "--pin",
            USER_PIN,
            "--so-pin",
            "654321",
        ],
        **run,  # type: ignore[call-overload]
    )
    key_pem = env.work_dir / "keys" / "office-xa-yen-mo.key.pem"
    subprocess.run(
        [
            util,
            "--import",
            str(key_pem),
            "--token",
            TOKEN_LABEL,
            "--label",
            "ubnd-xa-yen-mo",
            "--id",
            "01",
            "--pin",
            USER_PIN,
        ],
        **run,  # type: ignore[call-overload]
    )
    import pkcs11
    from pkcs11 import Attribute, CertificateType, ObjectClass

    cert = env.pki.cert("office-xa-yen-mo")
    token = pkcs11.lib(module).get_token(token_label=TOKEN_LABEL)
    with token.open(rw=True, user_pin=USER_PIN) as session:
        session.create_object(
            {
                Attribute.CLASS: ObjectClass.CERTIFICATE,
                Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                Attribute.TOKEN: True,
                Attribute.LABEL: "ubnd-xa-yen-mo",
                Attribute.ID: b"\x01",
                Attribute.SUBJECT: cert.subject.dump(),
                Attribute.VALUE: cert.dump(),
            }
        )
    chain = env.pki.write_certificates(base / "certs")
    yield Pkcs11Key(
        module_path=Path(module),
        key_label="ubnd-xa-yen-mo",
        pin=USER_PIN,
        token_label=TOKEN_LABEL,
        chain=(chain["gov-ca"], chain["root"]),
    )
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


def test_pkcs11_key_signs_b_lt(env: SigningEnv, softhsm_key: Pkcs11Key, sample_pdf: bytes) -> None:
    """GIVEN the commune's key on a PKCS#11 token WHEN it signs an e-copy at B-LT THEN the copy
    validates, signed by the commune."""
    with KeyRing([OfficeKey("ubnd-xa-yen-mo", "Ủy ban nhân dân xã Yên Mô", softhsm_key)]) as ring:
        key = ring.get("ubnd-xa-yen-mo")
        signed = sign_pdf(
            sample_pdf, key, SignOptions(stamp=StampSpec(VERIFY_URL)), tsa=env.tsa, trust=env.trust
        )
    report = validate(signed, env.context())
    assert report.verdict == Verdict.VALID
    assert report.signatures[0].signer_cn == "Ủy ban nhân dân xã Yên Mô"
    assert report.signatures[0].pades_level == "B-LT"


def test_pkcs11_errors(softhsm_key: Pkcs11Key) -> None:
    from dataclasses import replace

    with pytest.raises(KeyUnavailableError):
        load_key(replace(softhsm_key, pin="000000"))
    with pytest.raises(KeyUnavailableError):
        load_key(replace(softhsm_key, key_label="khong-co"))
    with pytest.raises(KeyUnavailableError):
        load_key(replace(softhsm_key, token_label="khong-co"))
    with pytest.raises(SigningConfigError):
        load_key(replace(softhsm_key, token_label=None, slot=None))


# -- the test PKI itself ----------------------------------------------------------------------
@pytest.mark.smoke
def test_pki_serves_only_on_loopback(env: SigningEnv) -> None:
    assert env.pki.base_url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(f"{env.pki.base_url}/vn-gov/crls/gov-ca/latest.crl") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/pkix-crl"


def test_write_material(env: SigningEnv, tmp_path: Path) -> None:
    manifest = write_material(env.pki, tmp_path)
    saved = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert saved == manifest
    assert set(saved["pkcs12"]) >= {"ubnd-tinh-ninh-binh", "so-tu-phap-ha-noi", "ubnd-xa-yen-mo"}
    key = load_key(
        Pkcs12Key(
            Path(saved["pkcs12"]["ubnd-xa-yen-mo"]["path"]),
            saved["pkcs12"]["ubnd-xa-yen-mo"]["passphrase"],
        )
    )
    assert key.subject_cn == "Ủy ban nhân dân xã Yên Mô"
    assert len(load_trust_store(Path(saved["trust_store_dir"])).roots) == 1
