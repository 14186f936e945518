"""Field extraction: parsers (dates, numbers, names), every type, look-alikes, OCR slips."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest

from digitizer.pipeline.classify import Classification
from digitizer.pipeline.extract import (
    FIELDS_BY_TYPE,
    ExtractConfig,
    FieldValue,
    classify_json,
    extract,
    fields_to_dict,
    parse_date,
    parse_document_number,
    parse_name,
    parse_personal_id,
    pid_consistency,
    review_reasons,
)
from digitizer.pipeline.ocr import OcrLine, OcrPage
from fixtures import generator as g

needs_fonts = pytest.mark.skipif(not g.FONTS, reason="no font covering Vietnamese is installed")


@pytest.mark.smoke
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Diên Khánh, ngày 09 tháng 6 năm 2025", date(2025, 6, 9)),
        ("ngày 9 tháng 06 năm 2025", date(2025, 6, 9)),
        ("ngày 9/6/2025", date(2025, 6, 9)),
        ("09/06/2025", date(2025, 6, 9)),
        ("9-6-2025", date(2025, 6, 9)),
        ("09.06.2025", date(2025, 6, 9)),
        ("Ngày, tháng, năm sinh: 29/02/2024", date(2024, 2, 29)),  # leap day
        ("Hà Nội, ngay 12 thang 12 nam 2025", date(2025, 12, 12)),  # diacritics lost
        ("Sinh ngày: 01/01/1990 Giới tính: Nam", date(1990, 1, 1)),
    ],
)
def test_parse_date(text: str, expected: date) -> None:
    parsed = parse_date(text)
    assert parsed is not None
    assert parsed == (expected, 1.0)


@pytest.mark.smoke
def test_parse_date_repairs_ocr_confusions_at_a_cost() -> None:
    parsed = parse_date("O9/l2/2O25")
    assert parsed is not None
    value, quality = parsed
    assert value == date(2025, 12, 9)
    assert quality < 0.7


@pytest.mark.smoke
@pytest.mark.parametrize("text", ["31/02/2025", "ngày 32 tháng 1 năm 2025", "12/13/2025", "abc"])
def test_parse_date_rejects_impossible_dates(text: str) -> None:
    assert parse_date(text) is None


@pytest.mark.smoke
def test_parse_personal_id() -> None:
    assert parse_personal_id("Số định danh cá nhân: 001090012345") == ("001090012345", 1.0)
    assert parse_personal_id("001 090 012345") == ("001090012345", 1.0)
    # O for 0 and l for 1, as Tesseract reads a worn print.
    value, quality = parse_personal_id("O0l090012345")  # type: ignore[misc]
    assert value == "001090012345" and quality < 0.7
    # 999 is not a province code: the structure check fails.
    value, quality = parse_personal_id("999090012345")  # type: ignore[misc]
    assert quality <= 0.2
    assert parse_personal_id("0010900123") is None  # 10 digits


@pytest.mark.smoke
def test_pid_consistency_with_birth_date_and_sex() -> None:
    # 0: male born 1900-1999; 3: female born 2000-2099; next two digits: year of birth.
    assert pid_consistency("001090012345", date(1990, 5, 1), "Nam") == 1.0
    assert pid_consistency("001308012345", date(2008, 5, 1), "Nữ") == 1.0
    assert pid_consistency("001090012345", date(1991, 5, 1), "Nam") < 0.2
    assert pid_consistency("001090012345", date(1990, 5, 1), "Nữ") < 0.2
    assert pid_consistency("001090012345", None, None) == 0.9


@pytest.mark.smoke
@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("TRẦN THÙY UYÊN", "Trần Thùy Uyên"),
        ("ĐOÀN THỊ Ỷ LAN", "Đoàn Thị Ỷ Lan"),
        ("NGHIÊM XUÂN HƯỞNG", "Nghiêm Xuân Hưởng"),
        ("QUÁCH THỊ NGỌC HUỲNH", "Quách Thị Ngọc Huỳnh"),
        ("TRỊNH THỊ HOÀ", "Trịnh Thị Hòa"),  # modern tone placement normalised
        (unicodedata.normalize("NFD", "Lê Khánh Ngọc"), "Lê Khánh Ngọc"),  # NFD in, NFC out
        ("LƯƠNG KHÁNH UYÊN, sinh năm 1945", "Lương Khánh Uyên"),
    ],
)
def test_parse_name(raw: str, name: str) -> None:
    parsed = parse_name(raw)
    assert parsed == (name, 1.0)
    assert unicodedata.is_normalized("NFC", parsed[0])


@pytest.mark.smoke
def test_parse_name_rejects_ocr_garbage() -> None:
    assert parse_name("NGUYỄN VĂN A8") is None
    assert parse_name("AN") is None
    garbled = parse_name("NGUYXỄN VĂN AN")
    assert garbled is not None and garbled[1] < 0.5


@pytest.mark.smoke
@pytest.mark.parametrize(
    ("text", "number", "clean"),
    [
        ("Số: 123/QĐ-UBND", "123/QĐ-UBND", True),
        ("Số: 45/2025/QĐ-CT", "45/2025/QĐ-CT", True),
        ("Số: 12 / XNCT", "12/XNCT", True),
        ("Số: 45", "45", True),
        ("Số: l23/QD-UBND", "123/QĐ-UBND", False),  # l for 1, Đ lost
        ("So: 7O/UBND–VP", "70/UBND-VP", False),
    ],
)
def test_parse_document_number(text: str, number: str, clean: bool) -> None:
    parsed = parse_document_number(text)
    assert parsed is not None
    assert parsed[0] == number
    assert (parsed[1] == 1.0) is clean


def _document_text(doc: g.GeneratedDocument, row_major: bool = False) -> str:
    pages = [g.row_major_text(p.lines) if row_major else p.text for p in doc.pages]
    return "\n\f\n".join(pages)


@needs_fonts
@pytest.mark.parametrize(("template", "wording"), g.document_variants())
def test_every_type_and_variant_extracts_its_ground_truth(template: str, wording: int) -> None:
    """GIVEN clean text of every template and wording (both reading orders) WHEN extracted
    with its type THEN every ground-truth field comes back exactly, with high confidence."""
    for seed in (11, 12):
        doc = g.generate_document(seed, template=template, wording=wording, dpi=100)
        for row_major in (False, True):
            fields = extract(_document_text(doc, row_major), doc.doc_type)
            got = {name: value.value for name, value in fields.items()}
            assert got == doc.fields, (template, wording, seed, row_major)
            assert all(v.confidence >= 0.85 for v in fields.values())
            assert set(fields) <= set(FIELDS_BY_TYPE[doc.doc_type])


@needs_fonts
@pytest.mark.smoke
def test_letter_quoting_a_birth_certificate_yields_only_letter_fields() -> None:
    doc = g.generate_document(3, template="cong-van-xac-minh", wording=0, dpi=100)
    assert "Số định danh cá nhân:" in doc.pages[0].text
    fields = extract(_document_text(doc), "official_letter")
    assert set(fields) == {"document_number", "issue_date", "issuer", "signer"}
    assert fields["signer"].value == doc.fields["signer"]


@needs_fonts
@pytest.mark.smoke
def test_boxes_and_sources_come_from_the_ocr_lines() -> None:
    page = g.generate_page(5, "xac-nhan-cu-tru", sorted(g.FONTS)[0], dpi=100)
    ocr = OcrPage(
        lines=[OcrLine(ln.text, ln.bbox, 91.0) for ln in page.lines],
        width=page.image.width,
        height=page.image.height,
        dpi=100,
    )
    fields = extract([ocr], "residence_confirmation")
    pid = fields["personal_id"]
    line = next(ln for ln in page.lines if pid.value in ln.text)
    assert pid.bbox == line.bbox and pid.text == line.text and pid.page == 0
    assert pid.confidence == pytest.approx(0.91, abs=0.01)
    # A wrapped address: the box covers both lines.
    residence = fields["place_of_residence"]
    assert residence.value == page.fields["place_of_residence"]
    as_json = fields_to_dict(fields)["personal_id"]
    assert as_json == {
        "value": pid.value,
        "confidence": round(pid.confidence, 4),
        "source": {"page": 0, "bbox": list(line.bbox), "text": line.text},
    }
    # Text input has no geometry.
    text_fields = extract(page.text, "residence_confirmation")
    assert text_fields["personal_id"].bbox is None


BIRTH = """ỦY BAN NHÂN DÂN
XÃ DIÊN KHÁNH
Số: 633/TLKS-BS
CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM
Độc lập - Tự do - Hạnh phúc
Diên Khánh, ngày 12 tháng 12 năm 2025
TRÍCH LỤC KHAI SINH
Họ, chữ đệm, tên: TRẦN THÙY UYÊN
Ngày, tháng, năm sinh: 06/02/2008
ghi bằng chữ: Ngày sáu, tháng hai, năm hai nghìn không trăm linh tám
Giới tính: Nữ Dân tộc: Nùng Quốc tịch: Việt Nam
Nơi sinh: Bệnh viện Phụ sản Quảng Ninh, Tỉnh Quảng Ninh
Số định danh cá nhân: {pid}
Họ, chữ đệm, tên người mẹ: HỒ KHÁNH HƯƠNG
Họ, chữ đệm, tên người cha: KIỀU MINH AN
Nơi đăng ký khai sinh: Ủy ban nhân dân Xã Diên Khánh, Tỉnh Khánh Hòa
TM. ỦY BAN NHÂN DÂN
KT. CHỦ TỊCH
PHÓ CHỦ TỊCH
Lâm Minh Sơn
"""


@pytest.mark.smoke
def test_birth_certificate_text_with_joined_fields() -> None:
    """Tesseract joins 'Giới tính: Nữ Dân tộc: Nùng ...' into one line: values stop at the
    next label."""
    fields = extract(BIRTH.format(pid="022308466444"), "birth_certificate")
    values = {k: v.value for k, v in fields.items()}
    assert values == {
        "full_name": "Trần Thùy Uyên",
        "date_of_birth": "2008-02-06",
        "sex": "Nữ",
        "place_of_birth": "Bệnh viện Phụ sản Quảng Ninh, Tỉnh Quảng Ninh",
        "personal_id": "022308466444",
        "mother_name": "Hồ Khánh Hương",
        "father_name": "Kiều Minh An",
        "document_number": "633/TLKS-BS",
        "issue_date": "2025-12-12",
        "issuer": "Ủy ban nhân dân xã Diên Khánh, tỉnh Khánh Hòa",
        "signer": "Lâm Minh Sơn",
    }
    assert fields["personal_id"].confidence > 0.85
    # The date in words agrees with the digits: confirmed.
    assert fields["date_of_birth"].confidence > 0.95


@pytest.mark.smoke
def test_ocr_confusions_in_the_number_are_repaired_but_doubted() -> None:
    fields = extract(BIRTH.format(pid="O223O8466444"), "birth_certificate")
    assert fields["personal_id"].value == "022308466444"
    assert fields["personal_id"].confidence < ExtractConfig().threshold_for("personal_id")


@pytest.mark.smoke
def test_a_number_that_contradicts_the_birth_date_goes_to_review() -> None:
    # Century/sex digit 2 says a boy born 2000-2099; the form says a girl: one of them is wrong.
    fields = extract(BIRTH.format(pid="022208466444"), "birth_certificate")
    config = ExtractConfig()
    assert fields["personal_id"].confidence < config.threshold_for("personal_id")
    assert fields["sex"].confidence < config.threshold_for("sex")


def _classification(doc_type: str, confidence: float, review: bool = False) -> Classification:
    return Classification(
        doc_type, confidence, doc_type, {doc_type: confidence}, None, None, review
    )


@pytest.mark.smoke
def test_review_reasons() -> None:
    fields = extract(BIRTH.format(pid="022308466444"), "birth_certificate")
    assert review_reasons(_classification("birth_certificate", 0.99), fields) == []
    missing = {k: v for k, v in fields.items() if k != "signer"}
    assert review_reasons(_classification("birth_certificate", 0.99), missing) == ["missing:signer"]
    low = dict(fields)
    low["full_name"] = FieldValue("Trần Thùy Uyên", 0.2, 0, None, "")
    assert review_reasons(_classification("birth_certificate", 0.99), low) == ["low:full_name"]
    assert review_reasons(_classification("other", 0.1, review=True), {}) == ["type:other"]


@pytest.mark.smoke
def test_unknown_type_and_other() -> None:
    with pytest.raises(ValueError, match="unknown document type"):
        extract("x", "passport")
    assert extract(BIRTH.format(pid="022308466444"), "other") == {}


@pytest.mark.smoke
def test_classify_json_contract() -> None:
    """DESIGN.md: {"type": CODE, "confidence": x, "fields": {NAME: {value, confidence,
    source: {page, bbox, text}}}}, dates ISO."""
    fields = extract(BIRTH.format(pid="022308466444"), "birth_certificate")
    data = classify_json(_classification("birth_certificate", 0.987654), fields)
    assert set(data) == {"type", "confidence", "fields"}
    assert data["type"] == "birth_certificate" and data["confidence"] == 0.9877
    dob = data["fields"]["date_of_birth"]
    assert dob["value"] == "2008-02-06"
    assert set(dob) == {"value", "confidence", "source"}
    assert set(dob["source"]) == {"page", "bbox", "text"}
