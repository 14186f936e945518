"""Session-scoped test PKI, keys and signed documents for the signing tests.

The PKI (fixtures/pki) is built once per session and served on 127.0.0.1 by an in-process
aiohttp server; its certificates point there, so pyHanko's own HTTP clients reach the TSA, the
OCSP responder and the CRLs with nothing injected. Documents signed by two signers whose
certificate expires / is revoked a few seconds after the PKI is built are signed right at the
start, so the tests that need "signed before, validated after" only wait out the remainder.

Helpers that tamper with signed files live here too (``tamper_*``).
"""

from __future__ import annotations

import binascii
import dataclasses
import re
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pymupdf
import pytest
from asn1crypto import cms
from pydantic import SecretStr
from pyhanko_certvalidator import ValidationContext

from digitizer.config import OfficeKeySettings, SigningSettings
from fixtures.pki import OfficeKeyFile, PkiServer, TestPki, start_test_pki
from signing.pki import LoadedKey, Pkcs12Key, TrustStore, build_validation_context, load_key
from signing.pki import load_trust_store as load_trust
from signing.signer import PadesLevel, SignOptions, StampSpec, TimestampConfig, sign_pdf

VERIFY_URL = "https://sohoa.example.vn/v/3q2d8Yb7kQ0pV5xW1rT9zA"


@dataclasses.dataclass
class SigningEnv:
    pki: TestPki
    server: PkiServer
    key_files: dict[str, OfficeKeyFile]
    keys: dict[str, LoadedKey]
    trust_dir: Path
    trust: TrustStore
    tsa: TimestampConfig
    work_dir: Path

    def context(self) -> ValidationContext:
        """A fresh validation context (hard-fail revocation, fetching on)."""
        return build_validation_context(self.trust)


@dataclasses.dataclass
class TimeSensitiveDocs:
    """Signed while ``signer-expiring`` was valid and ``signer-revoked-later`` not revoked."""

    expiring_blt: bytes
    expiring_bb: bytes
    revoked_later_blt: bytes
    revoked_later_bb: bytes
    ready_at: datetime  # when both events have happened
    signed_in_time: bool  # False on a machine too slow to sign within the grace period

    def wait(self) -> None:
        if not self.signed_in_time:
            pytest.fail("the time-sensitive documents were signed after the deadline")
        remaining = (self.ready_at - datetime.now(UTC)).total_seconds() + 1.5
        if remaining > 0:
            time.sleep(remaining)


#: The office whose key the service tests sign with.
OFFICE = "ubnd-tinh-ninh-binh"
OFFICE_NAME = "Ủy ban nhân dân tỉnh Ninh Bình"


def office_signing(
    env: SigningEnv, office: str = OFFICE, name: str = OFFICE_NAME
) -> SigningSettings:
    """Signing settings with one office key of the test PKI, its trust store and TSA."""
    kf = env.key_files[office]
    return SigningSettings(
        trust_store_dir=env.trust_dir,
        tsa_url=env.pki.tsa_url,
        offices=[
            OfficeKeySettings(
                code=office,
                name=name,
                pkcs12=kf.path,
                passphrase=SecretStr(kf.passphrase) if kf.passphrase else None,
            )
        ],
    )


def make_sample_pdf(pages: int = 2) -> bytes:
    """A small born-digital document in Vietnamese (Noto Sans, subset)."""
    doc = pymupdf.open()
    for n in range(pages):
        page = doc.new_page(width=595, height=842)
        page.insert_font(fontname="notos", fontbuffer=pymupdf.Font("notos").buffer)
        lines = [
            "ỦY BAN NHÂN DÂN TỈNH NINH BÌNH",
            "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
            "Độc lập - Tự do - Hạnh phúc",
            f"QUYẾT ĐỊNH số 123/QĐ-UBND (trang {n + 1})",
            "Về việc cấp bản sao điện tử từ sổ gốc",
        ]
        for i, line in enumerate(lines):
            page.insert_text((60, 80 + 22 * i), line, fontname="notos", fontsize=12)
    doc.subset_fonts()
    data = doc.tobytes(garbage=3, deflate=True)
    doc.close()
    return data


@pytest.fixture(scope="session")
def sample_pdf() -> bytes:
    return make_sample_pdf()


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SigningEnv]:
    work = tmp_path_factory.mktemp("pki")
    with start_test_pki(work) as (pki, server):
        key_files = pki.write_office_keys(work / "p12")
        keys = {code: load_key(Pkcs12Key(kf.path, kf.passphrase)) for code, kf in key_files.items()}
        keys["ubnd-tinh-ninh-binh"].office_name = "Ủy ban nhân dân tỉnh Ninh Bình"
        trust_dir = pki.write_trust_store(work / "trust")
        yield SigningEnv(
            pki=pki,
            server=server,
            key_files=key_files,
            keys=keys,
            trust_dir=trust_dir,
            trust=load_trust(trust_dir),
            tsa=TimestampConfig(pki.tsa_url),
            work_dir=work,
        )
        shutil.rmtree(work / "p12", ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def time_sensitive(env: SigningEnv, sample_pdf: bytes) -> TimeSensitiveDocs:
    """Signed at once: the expiry and the revocation come ``DEFAULT_GRACE`` after PKI build.

    Autouse, so these are signed right after the PKI is built, whichever test runs first.
    """
    stamp = StampSpec(VERIFY_URL)

    def sign(code: str, level: PadesLevel) -> bytes:
        return sign_pdf(
            sample_pdf,
            env.keys[code],
            SignOptions(level=level, stamp=stamp),
            tsa=env.tsa,
            trust=env.trust,
        )

    docs = TimeSensitiveDocs(
        expiring_blt=sign("expiring", PadesLevel.B_LT),
        expiring_bb=sign("expiring", PadesLevel.B_B),
        revoked_later_blt=sign("revoked-later", PadesLevel.B_LT),
        revoked_later_bb=sign("revoked-later", PadesLevel.B_B),
        ready_at=max(env.pki.expiring_at, env.pki.revoked_later_at),
        signed_in_time=False,
    )
    # checked here, reported by the tests that use them: an autouse fixture that raised would
    # fail every test of the package
    docs.signed_in_time = datetime.now(UTC) < min(env.pki.expiring_at, env.pki.revoked_later_at)
    return docs


@pytest.fixture(scope="session")
def shared_context(env: SigningEnv) -> ValidationContext:
    """One context for the session, as a batch would use it."""
    return env.context()


@pytest.fixture(scope="session")
def signed(env: SigningEnv, sample_pdf: bytes) -> dict[str, bytes]:
    """Documents signed by the provincial People's Committee, by level and flavour."""
    key = env.keys["ubnd-tinh-ninh-binh"]
    stamp = StampSpec(VERIFY_URL, signer="Nguyễn Văn An")

    def sign(**kwargs: object) -> bytes:
        return sign_pdf(
            sample_pdf, key, SignOptions(stamp=stamp, **kwargs), tsa=env.tsa, trust=env.trust
        )

    from signing.signer import DocMdp

    return {
        "B-T": sign(level=PadesLevel.B_T),
        "B-LT": sign(level=PadesLevel.B_LT),
        "B-LTA": sign(level=PadesLevel.B_LTA),
        "certified": sign(certify=True, reserve_fields=1),
        "certified-annotations": sign(certify=True, docmdp=DocMdp.ANNOTATIONS),
    }


# -- tampering --------------------------------------------------------------------------------
def signed_ranges(pdf: bytes) -> list[tuple[int, int, int, int]]:
    return [
        tuple(int(g) for g in m.groups())  # type: ignore[misc]
        for m in re.finditer(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    ]


def tamper_stream(pdf: bytes) -> bytes:
    """Flip one byte inside the first stream of the signed range (page content or font)."""
    start = pdf.index(b"stream", pdf.index(b"/Contents")) + len(b"stream\n") + 10
    assert start < signed_ranges(pdf)[0][1]
    out = bytearray(pdf)
    out[start] ^= 0x01
    return bytes(out)


def tamper_object_dict(pdf: bytes) -> bytes:
    """Damage a key in an object dictionary of the signed range (``/Length`` -> ``/Lfngth``)."""
    pos = pdf.index(b"/Length")
    assert pos < signed_ranges(pdf)[0][1]
    return pdf[:pos] + b"/Lfngth" + pdf[pos + 7 :]


def tamper_cms(pdf: bytes) -> bytes:
    """Flip one bit of the signature value inside the first signature's CMS."""
    _s1, len1, start2, _l2 = signed_ranges(pdf)[0]
    hex_value = pdf[len1 + 1 : start2 - 1]
    der = binascii.unhexlify(hex_value)
    info = cms.ContentInfo.load(der)
    sig_value = info["content"]["signer_infos"][0]["signature"].native
    offset = der.index(sig_value) + len(sig_value) // 2
    patched = bytearray(der)
    patched[offset] ^= 0x01
    new_hex = binascii.hexlify(bytes(patched)).upper()
    if hex_value.islower():
        new_hex = new_hex.lower()
    assert len(new_hex) == len(hex_value)
    return pdf[: len1 + 1] + new_hex + pdf[start2 - 1 :]


def incremental_edit(pdf: bytes, tmp: Path, edit: object) -> bytes:
    """Apply ``edit(doc)`` with PyMuPDF and save as an incremental update (as an attacker would:
    the signed bytes stay, a new revision changes the document)."""
    path = tmp / f"edit-{time.monotonic_ns()}.pdf"
    path.write_bytes(pdf)
    doc = pymupdf.open(path)
    edit(doc)  # type: ignore[operator]
    doc.saveIncr()
    doc.close()
    return path.read_bytes()
