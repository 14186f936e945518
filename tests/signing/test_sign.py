"""Signing: levels, the Vietnamese stamp, second signatures, renewal, failures, API shapes."""

from __future__ import annotations

import asyncio

import aiohttp
import pymupdf
import pytest

from signing.errors import (
    CertificateNotUsableError,
    SigningConfigError,
    TimestampUnavailableError,
    UnsignableDocumentError,
)
from signing.pki import KeyRing, OfficeKey, Pkcs12Key
from signing.signer import (
    DocMdp,
    OfficeSigner,
    PadesLevel,
    SignOptions,
    StampSpec,
    add_document_timestamp,
    async_sign_pdf,
    sign_pdf,
)
from signing.validator import Verdict, validate
from tests.signing.conftest import VERIFY_URL, SigningEnv


def _page_text(pdf: bytes, page: int = -1) -> str:
    """Text of a page including its widgets: the stamp lives in an appearance stream, which
    PyMuPDF's ``bake`` turns into page content."""
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        doc.bake(annots=True, widgets=True)
        return doc[page].get_text()


def _decode_qr(pdf: bytes) -> str:
    """Render the stamp and read its QR code back with OpenCV."""
    import cv2
    import numpy as np

    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        doc.bake(annots=True, widgets=True)
        pix = doc[-1].get_pixmap(dpi=300, colorspace=pymupdf.csGRAY)
    img = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width)
    text, _points, _ = cv2.QRCodeDetector().detectAndDecode(img)
    return str(text)


@pytest.mark.smoke
def test_stamp_shows_office_signer_time_and_qr(signed: dict[str, bytes]) -> None:
    """The visible stamp is in Vietnamese, readable as text (Noto Sans), with a QR link."""
    text = _page_text(signed["B-LT"])
    assert "Đã ký số" in text
    assert "Ủy ban nhân dân tỉnh Ninh Bình" in text
    assert "Người ký: Nguyễn Văn An" in text
    assert "Thời gian:" in text and "(GMT+7)" in text
    with pymupdf.open(stream=signed["B-LT"], filetype="pdf") as doc:
        assert [w.field_name for w in doc[-1].widgets()] == ["Chu-ky-1"]
    assert _decode_qr(signed["B-LT"]) == VERIFY_URL


@pytest.mark.smoke
def test_input_bytes_are_never_modified(env: SigningEnv, sample_pdf: bytes) -> None:
    data = bytearray(sample_pdf)
    out = sign_pdf(
        data,  # type: ignore[arg-type]
        env.keys["ubnd-xa-yen-mo"],
        SignOptions(level=PadesLevel.B_T),
        tsa=env.tsa,
    )
    assert bytes(data) == sample_pdf
    assert out.startswith(sample_pdf)  # an incremental update: the original bytes come first


def test_b_b_has_no_timestamp(env: SigningEnv, sample_pdf: bytes) -> None:
    out = sign_pdf(sample_pdf, env.keys["ubnd-xa-yen-mo"], SignOptions(level=PadesLevel.B_B))
    report = validate(out, env.context())
    assert report.verdict == Verdict.VALID
    assert report.signatures[0].pades_level == "B-B"
    assert not report.signatures[0].timestamped


def test_renewal_adds_document_timestamp_and_still_validates(
    env: SigningEnv, signed: dict[str, bytes]
) -> None:
    """GIVEN a B-LTA e-copy WHEN renewed twice THEN each renewal adds a document timestamp and
    the copy stays valid; a B-T copy becomes B-LTA on its first renewal."""
    once = add_document_timestamp(signed["B-LTA"], tsa=env.tsa, trust=env.trust)
    twice = add_document_timestamp(once, tsa=env.tsa, trust=env.trust)
    report = validate(twice, env.context())
    assert report.verdict == Verdict.VALID
    assert len(report.timestamps) == 3
    assert all(t.passed for t in report.timestamps)
    assert report.signatures[0].pades_level == "B-LTA"

    upgraded = validate(
        add_document_timestamp(signed["B-T"], tsa=env.tsa, trust=env.trust), env.context()
    )
    assert upgraded.verdict == Verdict.VALID
    assert upgraded.signatures[0].pades_level == "B-LTA"


def test_certified_copy_refuses_a_new_visible_signature(
    env: SigningEnv, signed: dict[str, bytes]
) -> None:
    """A new stamp after a certification without reserved fields would break the first
    signature; the signer refuses instead of issuing a broken e-copy."""
    with pytest.raises(UnsignableDocumentError):
        sign_pdf(
            signed["certified-annotations"],
            env.keys["ubnd-xa-yen-mo"],
            SignOptions(stamp=StampSpec(VERIFY_URL)),
            tsa=env.tsa,
            trust=env.trust,
        )
    with pytest.raises(UnsignableDocumentError):
        sign_pdf(
            signed["B-T"], env.keys["ubnd-xa-yen-mo"], SignOptions(PadesLevel.B_B, certify=True)
        )


def test_no_changes_certification_forbids_further_signatures(
    env: SigningEnv, sample_pdf: bytes
) -> None:
    locked = sign_pdf(
        sample_pdf,
        env.keys["ubnd-xa-yen-mo"],
        SignOptions(level=PadesLevel.B_T, certify=True, docmdp=DocMdp.NO_CHANGES),
        tsa=env.tsa,
    )
    with pytest.raises(UnsignableDocumentError):
        sign_pdf(
            locked, env.keys["so-tu-phap-ha-noi"], SignOptions(level=PadesLevel.B_T), tsa=env.tsa
        )


# -- failures ---------------------------------------------------------------------------------
def test_revoked_or_expired_certificate_is_refused_at_b_lt(
    env: SigningEnv, sample_pdf: bytes
) -> None:
    for code in ("revoked", "expired", "unrelated"):
        with pytest.raises(CertificateNotUsableError) as info:
            sign_pdf(sample_pdf, env.keys[code], SignOptions(), tsa=env.tsa, trust=env.trust)
        assert info.value.slug == "signing-certificate-not-usable"


def test_tsa_outage_is_timestamp_unavailable(env: SigningEnv, sample_pdf: bytes) -> None:
    with env.server.outage("tsa"), pytest.raises(TimestampUnavailableError) as info:
        sign_pdf(
            sample_pdf, env.keys["ubnd-xa-yen-mo"], SignOptions(level=PadesLevel.B_T), tsa=env.tsa
        )
    assert info.value.status == 503


@pytest.mark.smoke
def test_configuration_and_input_errors(env: SigningEnv, sample_pdf: bytes) -> None:
    key = env.keys["ubnd-xa-yen-mo"]
    with pytest.raises(SigningConfigError):
        sign_pdf(sample_pdf, key, SignOptions(level=PadesLevel.B_T))  # no TSA
    with pytest.raises(SigningConfigError):
        sign_pdf(sample_pdf, key, SignOptions(level=PadesLevel.B_LT), tsa=env.tsa)  # no trust
    with pytest.raises(UnsignableDocumentError):
        sign_pdf(b"not a pdf", key, SignOptions(level=PadesLevel.B_B))
    with pymupdf.open(stream=sample_pdf, filetype="pdf") as doc:
        encrypted = doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="x", owner_pw="y")
    with pytest.raises(UnsignableDocumentError):
        sign_pdf(encrypted, key, SignOptions(level=PadesLevel.B_B))
    with pytest.raises(SigningConfigError):
        sign_pdf(sample_pdf, key, SignOptions(level=PadesLevel.B_B, stamp=StampSpec("u", page=9)))


# -- API shapes -------------------------------------------------------------------------------
def test_async_api_with_caller_session_and_sync_wrapper_inside_a_loop(
    env: SigningEnv, sample_pdf: bytes
) -> None:
    """``async_sign_pdf`` runs on the caller's loop with the caller's aiohttp session; the sync
    wrapper called from inside a running loop does not crash (it uses a helper thread)."""
    key = env.keys["ubnd-xa-yen-mo"]

    async def main() -> tuple[bytes, bytes]:
        async with aiohttp.ClientSession() as session:
            a = await async_sign_pdf(
                sample_pdf, key, SignOptions(), tsa=env.tsa, trust=env.trust, session=session
            )
        b = sign_pdf(sample_pdf, key, SignOptions(level=PadesLevel.B_T), tsa=env.tsa)
        return a, b

    a, b = asyncio.run(main())
    context = env.context()
    assert validate(a, context).signatures[0].pades_level == "B-LT"
    assert validate(b, context).verdict == Verdict.VALID


def test_office_signer(env: SigningEnv, sample_pdf: bytes) -> None:
    kf = env.key_files["so-tu-phap-ha-noi"]
    ring = KeyRing(
        [
            OfficeKey(
                "so-tu-phap-ha-noi",
                "Sở Tư pháp thành phố Hà Nội",
                Pkcs12Key(kf.path, kf.passphrase),
            )
        ]
    )
    service = OfficeSigner(keys=ring, tsa=env.tsa, trust=env.trust)
    out = service.sign(sample_pdf, "so-tu-phap-ha-noi", SignOptions(stamp=StampSpec(VERIFY_URL)))
    renewed = service.renew(out)
    report = validate(renewed, env.context())
    assert report.verdict == Verdict.VALID
    assert report.signatures[0].pades_level == "B-LTA"
    assert "Sở Tư pháp thành phố Hà Nội" in _page_text(out)
    ring.close()
