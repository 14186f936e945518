"""Reports: JSON (simple, detailed), HTML and PDF in Vietnamese, ETSI XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pymupdf
import pytest
from pyhanko_certvalidator import ValidationContext

from signing.report import LABELS, label, to_etsi_xml, to_html, to_json, to_pdf
from signing.signer import SignOptions, sign_pdf
from signing.validator import Report, ValidateOptions, Verdict, validate
from tests.signing.conftest import SigningEnv, tamper_stream


@pytest.fixture(scope="module")
def valid_report(signed: dict[str, bytes], shared_context: ValidationContext) -> Report:
    return validate(signed["B-LT"], shared_context, ValidateOptions(etsi_report=True))


@pytest.fixture(scope="module")
def invalid_report(signed: dict[str, bytes], shared_context: ValidationContext) -> Report:
    return validate(tamper_stream(signed["B-LT"]), shared_context)


def _pdf_text(pdf: bytes) -> str:
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        return "\n".join(page.get_text() for page in doc)


@pytest.mark.smoke
def test_simple_json_follows_the_verify_contract(valid_report: Report) -> None:
    data = to_json(valid_report)
    json.dumps(data)  # serialisable as is
    assert data["verdict"] == "valid"
    assert data["label"] == "Hợp lệ"
    assert data["document_status"] is None
    (sig,) = data["signatures"]
    assert set(sig) >= {
        "signer",
        "signing_time",
        "timestamped",
        "intact",
        "trusted",
        "revocation",
        "pades_level",
        "modifications",
        "indication",
        "sub_indication",
    }
    assert sig["signer"] == "Ủy ban nhân dân tỉnh Ninh Bình"
    assert sig["indication"] == "TOTAL_PASSED"
    assert sig["pades_level"] == "B-LT"


def test_detailed_json_explains_in_vietnamese(invalid_report: Report) -> None:
    data = to_json(invalid_report, detailed=True)
    json.dumps(data)
    assert data["verdict"] == "invalid"
    assert {"code": "hash_failure", "text": "Tệp đã bị sửa sau khi ký"} in data["reasons"]
    assert data["signatures"][0]["sub_indication"] == "HASH_FAILURE"
    assert len(data["sha256"]) == 64


@pytest.mark.smoke
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, "Hợp lệ"),
        ("revoked", "Hợp lệ (văn bản đã bị thu hồi)"),
        ("superseded", "Hợp lệ (đã có bản mới)"),
    ],
)
def test_document_status_adds_to_the_label(
    valid_report: Report, status: str | None, expected: str
) -> None:
    report = valid_report.with_document_status(status)
    assert report.verdict == Verdict.VALID  # the signature stays valid
    assert label(report) == expected
    assert to_json(report)["label"] == expected
    assert expected in to_html(report)


def test_html_report_is_plain_vietnamese(invalid_report: Report) -> None:
    page = to_html(invalid_report, filename="ban-sao <1>.pdf")
    assert "Không hợp lệ" in page
    assert "Tệp đã bị sửa sau khi ký" in page
    assert "Ủy ban nhân dân tỉnh Ninh Bình" in page
    assert "ban-sao &lt;1&gt;.pdf" in page  # escaped
    assert '<html lang="vi">' in page


def test_pdf_report_opens_and_reads_in_vietnamese(
    valid_report: Report, invalid_report: Report
) -> None:
    for report in (valid_report, invalid_report.with_document_status("revoked")):
        pdf = to_pdf(report, filename="quyet-dinh-123.pdf")
        text = _pdf_text(pdf)
        assert label(report) in text
        assert "Ủy ban nhân dân tỉnh Ninh Bình" in text
    assert "Tệp đã bị sửa sau khi ký" in _pdf_text(to_pdf(invalid_report))


@pytest.mark.smoke
@pytest.mark.parametrize("verdict", list(Verdict))
def test_every_verdict_has_a_label_and_renders(verdict: Verdict) -> None:
    report = Report(verdict=verdict, error="x" if verdict == Verdict.UNREADABLE else None)
    assert LABELS[verdict] in to_html(report)
    assert LABELS[verdict] in _pdf_text(to_pdf(report))


def test_etsi_xml(valid_report: Report, invalid_report: Report) -> None:
    xml = to_etsi_xml(valid_report)
    assert xml is not None
    root = ET.fromstring(xml)
    assert root.tag.endswith("ValidationReport")
    assert "urn:etsi:019102:mainindication:total-passed" in xml
    assert to_etsi_xml(invalid_report) is None  # not asked for


def test_etsi_xml_for_two_signatures(
    signed: dict[str, bytes], shared_context: ValidationContext, env: SigningEnv
) -> None:
    twice = sign_pdf(
        signed["B-T"], env.keys["ubnd-xa-yen-mo"], SignOptions(), tsa=env.tsa, trust=env.trust
    )
    report = validate(twice, shared_context, ValidateOptions(etsi_report=True))
    assert report.etsi_xml is not None
    assert report.etsi_xml.count("SignatureValidationReport>") >= 2
