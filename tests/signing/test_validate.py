"""Verdicts of DESIGN.md's table: sign, validate, tamper, validate again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pymupdf
import pytest
from pyhanko_certvalidator import ValidationContext

from signing.pki import RevocationPolicy, ValidationConfig, build_validation_context
from signing.signer import PadesLevel, SignOptions, StampSpec, sign_pdf
from signing.validator import (
    Indication,
    Revocation,
    ValidateOptions,
    Verdict,
    async_validate,
    async_validate_in_thread,
    validate,
)
from tests.signing.conftest import (
    VERIFY_URL,
    SigningEnv,
    TimeSensitiveDocs,
    incremental_edit,
    tamper_cms,
    tamper_object_dict,
    tamper_stream,
)


# -- valid documents ----------------------------------------------------------------------------
@pytest.mark.smoke
@pytest.mark.parametrize("level", ["B-T", "B-LT", "B-LTA"])
def test_signed_document_is_valid_with_its_level(
    signed: dict[str, bytes], shared_context: ValidationContext, level: str
) -> None:
    report = validate(signed[level], shared_context)
    assert report.verdict == Verdict.VALID
    (sig,) = report.signatures
    assert sig.indication == Indication.TOTAL_PASSED
    assert sig.sub_indication is None
    assert sig.pades_level == level
    assert sig.signer_cn == "Ủy ban nhân dân tỉnh Ninh Bình"
    assert sig.intact and sig.crypto_valid and sig.trusted
    assert sig.timestamped and sig.timestamp_trusted
    assert sig.revocation == Revocation.GOOD
    assert sig.modification_level in ("NONE", "LTA_UPDATES")
    assert sig.coverage in ("ENTIRE_FILE", "ENTIRE_REVISION")
    assert not sig.reasons and not sig.warnings
    if level == "B-LTA":
        assert len(report.timestamps) == 1 and report.timestamps[0].passed


def test_certified_document_is_valid(
    signed: dict[str, bytes], shared_context: ValidationContext
) -> None:
    report = validate(signed["certified"], shared_context)
    assert report.verdict == Verdict.VALID
    assert report.signatures[0].certification
    assert report.signatures[0].docmdp == "FILL_FORMS"


# -- integrity ----------------------------------------------------------------------------------
@pytest.mark.smoke
def test_byte_flipped_in_content_stream_is_invalid_hash_failure(
    signed: dict[str, bytes], shared_context: ValidationContext
) -> None:
    report = validate(tamper_stream(signed["B-LT"]), shared_context)
    assert report.verdict == Verdict.INVALID
    assert report.signatures[0].indication == Indication.TOTAL_FAILED
    assert report.signatures[0].sub_indication == "HASH_FAILURE"
    assert report.signatures[0].intact is False


def test_byte_flipped_in_cms_signature_value_is_invalid(
    signed: dict[str, bytes], shared_context: ValidationContext
) -> None:
    report = validate(tamper_cms(signed["B-LT"]), shared_context)
    assert report.verdict == Verdict.INVALID
    assert report.signatures[0].sub_indication == "SIG_CRYPTO_FAILURE"
    assert report.signatures[0].crypto_valid is False


def test_damaged_object_dictionary_is_invalid_not_an_exception(
    signed: dict[str, bytes], shared_context: ValidationContext
) -> None:
    """GIVEN a byte changed in an object dictionary inside the signed range (pyHanko raises a
    raw KeyError('/Length') on it) WHEN validated THEN the raw byte check still finds the
    changed bytes: invalid, HASH_FAILURE, and the error is recorded."""
    report = validate(tamper_object_dict(signed["B-LT"]), shared_context)
    assert report.verdict == Verdict.INVALID
    sig = report.signatures[0]
    assert sig.sub_indication == "HASH_FAILURE"
    assert sig.error is not None
    assert "validation_error" in sig.warnings


# -- changes after signing ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda d: d.new_page(), id="page-added"),
        pytest.param(lambda d: d.delete_page(1), id="page-removed"),
        pytest.param(
            lambda d: d[0].insert_text((60, 300), "Đã sửa", fontname="helv"), id="text-overwritten"
        ),
    ],
)
def test_forbidden_change_after_signing_is_invalid(
    signed: dict[str, bytes], shared_context: ValidationContext, tmp_path: Path, edit: object
) -> None:
    """GIVEN a signed e-copy WHEN someone appends an incremental update that adds or removes
    a page or draws over the text THEN the signature is intact but the document is invalid."""
    report = validate(incremental_edit(signed["B-LT"], tmp_path, edit), shared_context)
    assert report.verdict == Verdict.INVALID
    sig = report.signatures[0]
    assert sig.intact is True
    assert sig.modification_level == "OTHER"
    assert sig.sub_indication == "FORMAT_FAILURE"
    assert "modified_after_signing" in sig.reasons


def _add_annotation(doc: pymupdf.Document) -> None:
    doc[0].add_freetext_annot(pymupdf.Rect(100, 400, 300, 440), "Đã hủy")


def test_annotation_where_docmdp_forbids_is_invalid(
    signed: dict[str, bytes], shared_context: ValidationContext, tmp_path: Path
) -> None:
    """GIVEN an e-copy certified with DocMDP 'form filling' WHEN a FreeText annotation is added
    THEN invalid (an annotation can cover the signed text)."""
    report = validate(
        incremental_edit(signed["certified"], tmp_path, _add_annotation), shared_context
    )
    assert report.verdict == Verdict.INVALID
    assert report.signatures[0].modification_level == "ANNOTATIONS"
    assert "modified_after_signing" in report.signatures[0].reasons


@pytest.mark.parametrize("flavour", ["certified-annotations", "B-LT"])
def test_annotation_where_docmdp_allows_is_valid_with_warning(
    signed: dict[str, bytes], shared_context: ValidationContext, tmp_path: Path, flavour: str
) -> None:
    """GIVEN a document certified with DocMDP 'annotations', or with an approval signature only
    WHEN an annotation is added THEN valid, with the warning 'annotations_after_signing'."""
    report = validate(incremental_edit(signed[flavour], tmp_path, _add_annotation), shared_context)
    assert report.verdict == Verdict.VALID
    assert "annotations_after_signing" in report.signatures[0].warnings
    assert "annotations_after_signing" in report.warnings


def test_metadata_change_is_allowed(
    signed: dict[str, bytes], shared_context: ValidationContext, tmp_path: Path
) -> None:
    edited = incremental_edit(
        signed["B-LT"], tmp_path, lambda d: d.set_metadata({"title": "Bản sao"})
    )
    assert validate(edited, shared_context).verdict == Verdict.VALID


# -- trust, expiry, revocation ----------------------------------------------------------------
def _sign_bt(env: SigningEnv, pdf: bytes, code: str) -> bytes:
    # B-T: no pre-signing validation, so even an unusable certificate produces a signature
    return sign_pdf(pdf, env.keys[code], SignOptions(level=PadesLevel.B_T), tsa=env.tsa)


def test_untrusted_root_is_indeterminate_no_chain(
    env: SigningEnv, sample_pdf: bytes, shared_context: ValidationContext
) -> None:
    report = validate(_sign_bt(env, sample_pdf, "unrelated"), shared_context)
    assert report.verdict == Verdict.INDETERMINATE
    sig = report.signatures[0]
    assert sig.sub_indication == "NO_CERTIFICATE_CHAIN_FOUND"
    assert sig.intact and sig.crypto_valid and not sig.trusted
    assert "no_trusted_root" in sig.reasons


def test_expired_signer_without_proof_is_indeterminate(
    env: SigningEnv, sample_pdf: bytes, shared_context: ValidationContext
) -> None:
    """GIVEN a certificate that expired in 2023 WHEN it signs today (timestamped today) THEN
    nothing proves the signature existed before expiry: indeterminate OUT_OF_BOUNDS_NO_POE."""
    report = validate(_sign_bt(env, sample_pdf, "expired"), shared_context)
    assert report.verdict == Verdict.INDETERMINATE
    assert report.signatures[0].sub_indication == "OUT_OF_BOUNDS_NO_POE"
    assert "expired_no_poe" in report.signatures[0].reasons


def test_signer_revoked_before_signing_is_invalid(
    env: SigningEnv, sample_pdf: bytes, shared_context: ValidationContext
) -> None:
    """GIVEN a certificate revoked in 2024 WHEN it signs today THEN invalid (REVOKED)."""
    report = validate(_sign_bt(env, sample_pdf, "revoked"), shared_context)
    assert report.verdict == Verdict.INVALID
    sig = report.signatures[0]
    assert sig.sub_indication == "REVOKED"
    assert sig.revocation == Revocation.REVOKED
    assert sig.revocation_time is not None and sig.revocation_time.year == 2024
    assert "revoked_before_signing" in sig.reasons


def test_revocation_unreachable(env: SigningEnv, signed: dict[str, bytes]) -> None:
    """GIVEN the OCSP responder and CRL server down WHEN a B-T e-copy is validated THEN
    indeterminate (TRY_LATER); a B-LT e-copy carries its own revocation data: still valid."""
    with env.server.outage("ocsp", "crl"):
        bt = validate(signed["B-T"], env.context())
        blt = validate(signed["B-LT"], env.context())
    assert bt.verdict == Verdict.INDETERMINATE
    assert bt.signatures[0].sub_indication == "TRY_LATER"
    assert bt.signatures[0].revocation == Revocation.UNKNOWN
    assert "revocation_unavailable" in bt.signatures[0].reasons
    assert blt.verdict == Verdict.VALID
    assert "validated_with_embedded_revocation_data" in blt.signatures[0].warnings


def test_soft_fail_policy_accepts_unreachable_revocation(
    env: SigningEnv, signed: dict[str, bytes]
) -> None:
    policy = ValidationConfig(trust_store_dir=env.trust_dir, revocation=RevocationPolicy.SOFT_FAIL)
    with env.server.outage("ocsp", "crl"):
        report = validate(signed["B-T"], build_validation_context(policy))
    assert report.verdict == Verdict.VALID


# -- two signers ------------------------------------------------------------------------------
def test_second_signer_keeps_first_valid(
    env: SigningEnv, signed: dict[str, bytes], shared_context: ValidationContext
) -> None:
    twice = sign_pdf(
        signed["B-LT"],
        env.keys["so-tu-phap-ha-noi"],
        SignOptions(stamp=StampSpec(VERIFY_URL)),
        tsa=env.tsa,
        trust=env.trust,
    )
    report = validate(twice, shared_context)
    assert report.verdict == Verdict.VALID
    first, second = report.signatures
    assert first.signer_cn == "Ủy ban nhân dân tỉnh Ninh Bình"
    assert second.signer_cn == "Sở Tư pháp thành phố Hà Nội"
    assert first.modification_level == "FORM_FILLING"
    assert not first.warnings  # a later signature is expected, not worth a warning


def test_second_signer_fills_reserved_field_of_certified_copy(
    env: SigningEnv, signed: dict[str, bytes], shared_context: ValidationContext
) -> None:
    twice = sign_pdf(
        signed["certified"],
        env.keys["ubnd-xa-yen-mo"],
        SignOptions(stamp=StampSpec(VERIFY_URL)),
        tsa=env.tsa,
        trust=env.trust,
    )
    report = validate(twice, shared_context)
    assert report.verdict == Verdict.VALID
    assert [s.field_name for s in report.signatures] == ["Chu-ky-1", "Chu-ky-2"]


# -- time: signed before expiry / revocation, validated after ---------------------------------
def test_expired_signer_with_timestamp_before_expiry_is_valid(
    env: SigningEnv, time_sensitive: TimeSensitiveDocs
) -> None:
    """GIVEN a B-LT signature made while the certificate was valid WHEN validated after the
    certificate expired THEN valid: the timestamp proves when it was made, and the file carries
    the revocation data of that time; the B-B copy has no such proof: indeterminate."""
    time_sensitive.wait()
    blt = validate(time_sensitive.expiring_blt, env.context())
    bb = validate(time_sensitive.expiring_bb, env.context())
    assert blt.verdict == Verdict.VALID
    assert "validated_at_timestamp_time" in blt.signatures[0].warnings
    assert bb.verdict == Verdict.INDETERMINATE
    assert bb.signatures[0].sub_indication == "OUT_OF_BOUNDS_NO_POE"


def test_signer_revoked_after_signing_time(
    env: SigningEnv, time_sensitive: TimeSensitiveDocs
) -> None:
    """GIVEN a certificate revoked after it signed WHEN validated THEN the timestamped copy is
    valid (proof it was signed before revocation); the untimestamped one is indeterminate
    (REVOKED_NO_POE: only the signer's own clock says when)."""
    time_sensitive.wait()
    blt = validate(time_sensitive.revoked_later_blt, env.context())
    bb = validate(time_sensitive.revoked_later_bb, env.context())
    assert blt.verdict == Verdict.VALID
    assert blt.signatures[0].revocation == Revocation.REVOKED
    assert "revoked_after_signing" in blt.signatures[0].warnings
    assert bb.verdict == Verdict.INDETERMINATE
    assert bb.signatures[0].sub_indication == "REVOKED_NO_POE"


# -- not signed, not readable -------------------------------------------------------------------
@pytest.mark.smoke
def test_no_signature(sample_pdf: bytes, shared_context: ValidationContext) -> None:
    report = validate(sample_pdf, shared_context)
    assert report.verdict == Verdict.NO_SIGNATURE
    assert report.signatures == ()


def _encrypted(pdf: bytes) -> bytes:
    doc = pymupdf.open(stream=pdf, filetype="pdf")
    data = doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="mat-khau", owner_pw="x")
    doc.close()
    return data


@pytest.mark.smoke
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda s: b"", id="empty"),
        pytest.param(lambda s: b"GIF89a garbage \x00\x01", id="garbage"),
        pytest.param(lambda s: s[: len(s) // 2], id="truncated"),
        pytest.param(lambda s: _encrypted(s), id="encrypted"),
        pytest.param(lambda s: b"%PDF-1.7\n" + b"\x00" * 300, id="header-only"),
    ],
)
def test_unreadable(
    signed: dict[str, bytes], shared_context: ValidationContext, make: object
) -> None:
    report = validate(make(signed["B-LT"]), shared_context)  # type: ignore[operator]
    assert report.verdict == Verdict.UNREADABLE
    assert report.error


# -- robustness: every exception becomes a verdict ---------------------------------------------
@pytest.mark.smoke
@pytest.mark.parametrize(
    "exc",
    [KeyError("/Length"), AssertionError(), AttributeError("x"), ValueError("math domain error")],
)
def test_pyhanko_exceptions_become_verdicts(
    signed: dict[str, bytes],
    shared_context: ValidationContext,
    monkeypatch: pytest.MonkeyPatch,
    exc: Exception,
) -> None:
    """GIVEN pyHanko raising on a file (as it does on real-world files) WHEN validated THEN an
    entry with the error recorded; intact signed bytes give indeterminate, never an exception."""

    async def boom(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr("signing.validator.async_validate_pdf_signature", boom)
    report = validate(signed["B-LT"], shared_context)
    assert report.verdict == Verdict.INDETERMINATE
    sig = report.signatures[0]
    assert sig.error and type(exc).__name__ in sig.error
    assert sig.intact is True and sig.crypto_valid is True
    assert sig.signer_cn == "Ủy ban nhân dân tỉnh Ninh Bình"


def test_exception_with_tampered_bytes_is_invalid(
    signed: dict[str, bytes], shared_context: ValidationContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError

    monkeypatch.setattr("signing.validator.async_validate_pdf_signature", boom)
    report = validate(tamper_stream(signed["B-LT"]), shared_context)
    assert report.verdict == Verdict.INVALID
    assert report.signatures[0].sub_indication == "HASH_FAILURE"


# -- API shapes -------------------------------------------------------------------------------
def test_async_variants_and_reused_context(signed: dict[str, bytes], env: SigningEnv) -> None:
    """The async API on a loop, the thread variant, and one context reused across both."""
    context = env.context()

    async def main() -> list[Verdict]:
        first = await async_validate(signed["B-LT"], context)
        second = await async_validate_in_thread(signed["B-T"], context)
        await context.aclose()
        return [first.verdict, second.verdict]

    assert asyncio.run(main()) == [Verdict.VALID, Verdict.VALID]
    # and the same context again from sync code, in another event loop
    assert validate(signed["B-LTA"], context).verdict == Verdict.VALID


def test_input_is_not_modified(signed: dict[str, bytes], shared_context: ValidationContext) -> None:
    data = bytearray(signed["B-LT"])
    before = bytes(data)
    validate(data, shared_context)  # type: ignore[arg-type]
    assert bytes(data) == before


def test_etsi_report_is_generated(
    signed: dict[str, bytes], shared_context: ValidationContext
) -> None:
    report = validate(signed["B-LT"], shared_context, ValidateOptions(etsi_report=True))
    assert report.etsi_xml is not None
    assert "urn:etsi:019102:mainindication:total-passed" in report.etsi_xml


# -- third-party files ------------------------------------------------------------------------
def test_pyhanko_sdist_files_all_get_a_verdict(shared_context: ValidationContext) -> None:
    """GIVEN the PDFs of pyHanko's source distribution (signed, sneaky form updates, coverage
    anomalies, broken xrefs, encrypted) WHEN validated THEN each gets a verdict, none raises,
    and the files pyHanko's tests call tampered are invalid.

    Needs the extracted sdist (``pip download --no-binary :all: --no-deps pyhanko==0.38.0``)
    in ``SOHOA_PYHANKO_SDIST``; tests do not download anything.
    """
    import os

    root = os.environ.get("SOHOA_PYHANKO_SDIST")
    if not root or not Path(root).is_dir():
        pytest.skip("SOHOA_PYHANKO_SDIST does not point to an extracted pyHanko sdist")
    files = sorted(Path(root).rglob("*.pdf"))
    assert files
    verdicts = {}
    for path in files:
        verdicts[path.name] = validate(path.read_bytes(), shared_context).verdict
    assert set(verdicts.values()) <= set(Verdict)
    for name, verdict in verdicts.items():
        if "sneaky" in name or name.startswith(("one-byterange", "tail-uncovered", "weird-byte")):
            assert verdict == Verdict.INVALID, name
        if name.startswith(("minimal-aes256", "minimal-rc4", "minimal-startxref-hopeless")):
            assert verdict == Verdict.UNREADABLE, name


def test_exception_on_document_timestamp_uses_the_raw_check(
    signed: dict[str, bytes], shared_context: ValidationContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN pyHanko raising on the document timestamp of a B-LTA copy WHEN validated THEN the
    timestamp entry says intact (checked from the bytes: message imprint and CMS signature)
    and records the error; the signature itself is still judged normally."""

    async def boom(*args: object, **kwargs: object) -> None:
        raise ArithmeticError("math domain error")

    monkeypatch.setattr("signing.validator.async_validate_pdf_timestamp", boom)
    report = validate(signed["B-LTA"], shared_context)
    (ts,) = report.timestamps
    assert ts.intact is True and ts.crypto_valid is True
    assert ts.indication == Indication.INDETERMINATE
    assert ts.error and "math domain error" in ts.error
    assert report.signatures[0].passed
    assert report.verdict == Verdict.VALID


def test_unexpected_internal_error_is_indeterminate(
    signed: dict[str, bytes], shared_context: ValidationContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr("signing.validator._read_dss", broken)
    report = validate(signed["B-LT"], shared_context)
    assert report.verdict == Verdict.INDETERMINATE
    assert report.error and "bug" in report.error
