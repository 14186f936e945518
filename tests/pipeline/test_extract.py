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
        ("Số: 86S/QĐ-SNNMT", "865/QĐ-SNNMT", False),  # S for 5: repaired, not cut short
        ("Số: 865/QĐ-SNN*MT", "865/QĐ-SNN", False),  # a speck inside: the rest unexplained
        ("Số: 53/QĐ-SNNMT Thanh Hóa, ngày 19", "53/QĐ-SNNMT", True),  # read row by row
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


# --------------------------------------------------------------------------------------------
# Confidence that reflects correctness: lines as Tesseract read them from degraded scans
# (text, confidence and box kept), where OCR's line confidence alone sent right values to
# review.

A4 = (2480, 3508)


def _ocr_page(rows: list[tuple[float, tuple[int, int, int, int], str]], size=A4) -> OcrPage:
    return OcrPage(
        lines=[OcrLine(text, box, conf) for conf, box, text in rows],
        width=size[0],
        height=size[1],
        dpi=300,
    )


_MOTTO = [
    (96.4, (1162, 239, 2274, 303), "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"),
    (94.5, (1329, 328, 2106, 386), "Độc lập - Tự do - Hạnh phúc"),
]
_DECISION_BODY = [
    (96.0, (1141, 589, 1517, 660), "QUYẾT ĐỊNH"),
    (96.7, (403, 679, 2250, 742), "Về việc cấp Giấy chứng nhận quyền sử dụng đất lần đầu"),
    (93.9, (666, 905, 1993, 972), "GIÁM ĐỐC SỞ NÔNG NGHIỆP VÀ MÔI TRƯỜNG"),
    (96.5, (475, 1029, 1741, 1089), "Căn cứ Luật Đất đai ngày 18 tháng 01 năm 2024;"),
    (96.8, (353, 2370, 607, 2418), "Nơi nhận:"),
    (96.3, (355, 2437, 637, 2481), "- Như Điều 3;"),
    (93.7, (1571, 2361, 1963, 2415), "KT. GIÁM ĐỐC"),
    (93.0, (1557, 2439, 1978, 2493), "PHÓ GIÁM ĐỐC"),
    (96.5, (1518, 2781, 2019, 2843), "Nguyễn Thu Trang"),
]


def _decision(header: list[str], number: tuple[float, str], parent_conf: float) -> OcrPage:
    boxes = [(409, 240, 1039, 293), (363, 315, 1085, 363)]
    rows = [(parent_conf if i == 0 else 94.2, boxes[i], text) for i, text in enumerate(header)]
    rows.append((number[0], (498, 450, 951, 507), number[1]))
    rows += _MOTTO
    rows.append((95.1, (1240, 451, 2201, 507), "Thanh Hóa, ngày 19 tháng 8 năm 2026"))
    return _ocr_page(rows + _DECISION_BODY)


@pytest.mark.smoke
def test_a_faint_parent_line_of_known_names_does_not_doubt_the_issuer() -> None:
    """GIVEN a header "UBND TỈNH THANH HÓA" read at 69.6 over "SỞ NÔNG NGHIỆP VÀ MÔI TRƯỜNG"
    WHEN extracted THEN the issuer, made only of a known body and a known province, is
    confident; the same faint line alone (the issuer's own line lost) still goes to review."""
    threshold = ExtractConfig().threshold_for("issuer")
    page = _decision(
        ["UBND TỈNH THANH HÓA", "SỞ NÔNG NGHIỆP VÀ MÔI TRƯỜNG"], (84.7, "Số: 53/QĐ-SNNMT"), 69.6
    )
    issuer = extract([page], "decision")["issuer"]
    assert issuer.value == "Sở Nông nghiệp và Môi trường tỉnh Thanh Hóa"
    assert issuer.confidence >= threshold
    assert issuer.text == "UBND TỈNH THANH HÓA\nSỞ NÔNG NGHIỆP VÀ MÔI TRƯỜNG"
    lost = _decision(["UBND TỈNH THANH HÓA"], (84.7, "Số: 53/QĐ-SNNMT"), 69.6)
    assert extract([lost], "decision")["issuer"].confidence < threshold
    # A misread body ("SỞ NÔNG NGHIỆP VÀ MÔI TRƯỜNGG") is no known name: OCR's doubt stays.
    misread = _decision(
        ["UBND TỈNH THANH HÓA", "SỞ NÔNG NGHIỆP VÀ MÔI TRƯỜNGG"], (84.7, "Số: 53/QĐ-SNNMT"), 69.6
    )
    assert extract([misread], "decision")["issuer"].confidence < threshold


def _residence(header: list[tuple[float, str]], place: str) -> OcrPage:
    boxes = [(384, 240, 1067, 293), (366, 315, 1087, 369)]
    rows = [(conf, boxes[i], text) for i, (conf, text) in enumerate(header)]
    rows += [
        (92.3, (546, 449, 904, 500), "Số: 777/XN-CA"),
        *_MOTTO,
        (96.7, (1288, 449, 2148, 508), f"{place}, ngày 18 tháng 8 năm 2026"),
        (92.1, (821, 589, 1837, 658), "XÁC NHẬN THÔNG TIN VỀ CƯ TRÚ"),
        (93.5, (356, 818, 1085, 889), "Họ và tên: ĐẶNG GIA HẢI"),
        (96.4, (356, 926, 949, 986), "Ngày sinh: 02/07/1981"),
        (96.4, (357, 1019, 1371, 1078), "Số định danh cá nhân: 037081012203"),
        (96.7, (1526, 926, 1778, 973), "Giới tính:"),
        (96.8, (1845, 940, 1934, 973), "Nam"),
        (96.5, (356, 1112, 2130, 1177), "Nơi thường trú: Tổ dân phố 5, Phường Phủ Lý"),
        (96.3, (475, 1327, 1842, 1392), "Giấy xác nhận này có giá trị 30 ngày kể từ ngày ký."),
        (93.6, (1318, 1469, 2215, 1526), "KT. TRƯỞNG CÔNG AN PHƯỜNG"),
        (93.2, (1303, 1547, 2230, 1603), "PHÓ TRƯỞNG CÔNG AN PHƯỜNG"),
        (96.6, (1560, 1897, 1975, 1954), "Dương Hoài Hà"),
    ]
    return _ocr_page(rows)


@pytest.mark.smoke
def test_a_commune_read_again_elsewhere_confirms_a_two_line_police_header() -> None:
    """GIVEN "CÔNG AN TỈNH NINH BÌNH" read at 51.5 over "CÔNG AN PHƯỜNG PHỦ LÝ" WHEN the date
    line reads "Phủ Lý, ngày ..." THEN the joined issuer is confident; when the date line
    spells the commune otherwise ("Phú Lý"), the readings disagree and OCR's doubt stays."""
    threshold = ExtractConfig().threshold_for("issuer")
    header = [(51.5, "CÔNG AN TỈNH NINH BÌNH"), (94.0, "CÔNG AN PHƯỜNG PHỦ LÝ")]
    fields = extract([_residence(header, "Phủ Lý")], "residence_confirmation")
    assert fields["issuer"].value == "Công an phường Phủ Lý, tỉnh Ninh Bình"
    assert fields["issuer"].confidence >= threshold
    disagree = extract([_residence(header, "Phú Lý")], "residence_confirmation")
    assert disagree["issuer"].confidence < threshold
    # The commune line alone can be confirmed, the faint parent line is no known name:
    # "CÔNG AN TỈNH NINH BINB" (one slip) is normalised but not trusted.
    slip = [(51.5, "CÔNG AN TỈNH NINH BINB"), (94.0, "CÔNG AN PHƯỜNG PHỦ LÝ")]
    slipped = extract([_residence(slip, "Phủ Lý")], "residence_confirmation")
    assert slipped["issuer"].value == "Công an phường Phủ Lý, tỉnh Ninh Bình"
    assert slipped["issuer"].confidence < threshold


_CARD_FRONT = [
    (96.8, (207, 30, 804, 67), "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"),
    (95.5, (307, 73, 700, 121), "Độc lập - Tự do - Hạnh phúc"),
    (96.7, (292, 152, 721, 190), "CĂN CƯỚC CÔNG DÂN"),
    (88.5, (298, 258, 624, 290), "Số/No.: {pid}"),
    (87.2, (298, 308, 564, 336), "Họ và tên/Full name:"),
    (94.5, (299, 344, 598, 382), "QUÁCH QUỐC NAM"),
    (93.3, (299, 395, 750, 425), "Ngày sinh/Date of birth: 17/01/1974"),
    (58.0, (298, 438, 543, 463), "Giới tính/Sex;: {sex}"),
    (94.0, (299, 479, 825, 510), "Quê quán/Place of origin: Tỉnh Tây Ninh"),
]


def _card(pid: str = "089074957425", sex: str = "Nam") -> OcrPage:
    rows = [(c, b, t.format(pid=pid, sex=sex)) for c, b, t in _CARD_FRONT]
    return _ocr_page(rows, size=(1011, 638))


@pytest.mark.smoke
def test_sex_after_a_noisy_label_is_confident_when_read_exactly() -> None:
    """GIVEN "Giới tính/Sex;: Nam" read at 58.0 (a speck doubled the colon) WHEN extracted
    THEN "Nam", read exactly, is confident; a value that is not exactly "Nam"/"Nữ" is not, and
    neither is one that the personal identification number contradicts."""
    threshold = ExtractConfig().threshold_for("sex")
    sex = extract([_card()], "citizen_id")["sex"]
    assert (sex.value, sex.text) == ("Nam", "Giới tính/Sex;: Nam")
    assert sex.confidence >= threshold
    assert extract([_card(sex="Nam x")], "citizen_id")["sex"].confidence < threshold
    # Century/sex digit 1: a woman born 1900-1999.
    contradicted = extract([_card(pid="089174957425")], "citizen_id")
    assert contradicted["sex"].confidence < threshold


@pytest.mark.smoke
@pytest.mark.parametrize(
    ("line", "confident"),
    [
        ("Số: 865/QĐ-SNNMT", True),  # well formed, names the issuer: lifted over 0.739
        ("Số: 865/QĐ-SNN", False),  # well formed, names another body than the header
        ("Số: 86S/QĐ-SNNMT", False),  # a letter read for a digit: repaired, doubted
        ("Số: 865", False),  # no symbol to check
    ],
)
def test_document_number_confidence_combines_format_and_ocr(line: str, confident: bool) -> None:
    """GIVEN a "Số:" line read at 73.9 (just under the 0.75 threshold) WHEN its symbol is well
    formed and names the issuer of the header THEN the number is confident, else not."""
    page = _decision(["UBND TỈNH THANH HÓA", "SỞ NÔNG NGHIỆP VÀ MÔI TRƯỜNG"], (73.9, line), 92.3)
    number = extract([page], "decision")["document_number"]
    assert number.value == line.removeprefix("Số: ").replace("S/", "5/")
    assert (number.confidence >= ExtractConfig().threshold_for("document_number")) is confident


_CARD_BACK = [
    (88.3, (36, 35, 607, 67), "Đặc điểm nhân dạng/Personal identification:"),
    (94.5, (36, 125, 649, 154), "Ngày, tháng, năm/Date, month, year: 26/02/2022"),
    (93.2, (471, 162, 870, 196), "CỤC TRƯỞNG CỤC CẢNH SÁT"),
    (94.3, (371, 203, 970, 237), "QUẢN LÝ HÀNH CHÍNH VỀ TRẬT TỰ XÃ HỘI"),
    (96.4, (526, 263, 815, 296), "Nguyễn Thanh Thắng"),
    (88.9, (36, 320, 529, 342), "IDVNM1955736125027195573612<<<"),
    (89.7, (36, 361, 531, 383), "{mrz}"),
    (62.0, (36, 401, 562, 423), "DINH<<PHUONG<CHAUÚ<<<<<<<<<<<<<"),
]


def _card_pair(mrz: str, name_label: str = "Họ và tên/Full name:") -> list[OcrPage]:
    front = [
        (96.4, (208, 30, 803, 67), "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"),
        (95.5, (312, 77, 699, 109), "Độc lập - Tự do - Hạnh phúc"),
        (96.7, (292, 152, 721, 190), "CĂN CƯỚC CÔNG DÂN"),
        (88.7, (268, 258, 624, 298), "ˆ Số/No.: 027195573612"),
        (75.0, (299, 307, 563, 335), name_label),
        (83.9, (262, 344, 636, 384), "_' ĐINH PHƯƠNG CHÂU"),
        (63.2, (229, 393, 749, 428), "` Ngày sinh/Date ofbirth: 17/10/1995"),
        (91.9, (298, 437, 521, 464), "Giới tính/Sex: Nữ"),
        (93.9, (298, 522, 812, 553), "Có giá trị đến/Date of expiry: 17/10/2035"),
    ]
    back = [(c, b, t.format(mrz=mrz)) for c, b, t in _CARD_BACK]
    return [_ocr_page(front, size=(1011, 638)), _ocr_page(back, size=(1011, 638))]


@pytest.mark.smoke
def test_card_fields_read_through_specks_and_a_misread_english_gloss() -> None:
    """GIVEN a card front where specks precede the name ("_' ĐINH PHƯƠNG CHÂU") and the
    English gloss of a label is misread ("Họ và tên/Eull name:", "Date ofbirth") WHEN
    extracted THEN the name and the date of birth are still found."""
    for label in ("Họ và tên/Full name:", "Họ và tên/Eull name:"):
        fields = extract(_card_pair("9510179F3510177VNM<<<<<<<<<<<1", label), "citizen_id")
        assert fields["full_name"].value == "Đinh Phương Châu", label
        assert fields["date_of_birth"].value == "1995-10-17"


@pytest.mark.smoke
def test_machine_readable_zone_confirms_or_doubts_the_printed_dates() -> None:
    """GIVEN "` Ngày sinh/Date ofbirth: 17/10/1995" read at 63.2 WHEN the MRZ line
    "9510179F3510177VNM..." repeats birth date, sex and expiry with valid check digits THEN
    they are confident; an MRZ birth date that disagrees sends the printed one to review."""
    threshold = ExtractConfig().threshold_for("date_of_birth")
    fields = extract(_card_pair("9510179F3510177VNM<<<<<<<<<<<1"), "citizen_id")
    assert fields["date_of_birth"].confidence >= threshold
    assert fields["valid_until"].confidence > 0.95 and fields["sex"].confidence > 0.95
    # Look-alike letters in the zone are repaired; the check digits judge the repair.
    repaired = extract(_card_pair("95lO179F35lO177VNM<<<<<<<<<<<1"), "citizen_id")
    assert repaired["date_of_birth"].confidence >= threshold
    # 951018, check digit 0: a valid reading of another day.
    other = extract(_card_pair("9510180F3510177VNM<<<<<<<<<<<1"), "citizen_id")
    assert other["date_of_birth"].value == "1995-10-17"
    assert other["date_of_birth"].confidence < threshold
    # A broken check digit confirms nothing.
    broken = extract(_card_pair("9510178F3510177VNM<<<<<<<<<<<1"), "citizen_id")
    assert broken["date_of_birth"].confidence < threshold


@pytest.mark.smoke
def test_a_rare_name_one_letter_from_a_common_one_is_doubted() -> None:
    """ "LƯƠNG MINH VẾN" is a plausible syllable but one letter from "YẾN" (V/Y look alike in
    capitals): more likely a misreading than a rare name."""
    parsed = parse_name("LƯƠNG MINH VẾN")
    assert parsed is not None and parsed[0] == "Lương Minh Vến"
    assert parsed[1] <= 0.6
    assert parse_name("LƯƠNG MINH YẾN") == ("Lương Minh Yến", 1.0)


@pytest.mark.smoke
def test_a_commune_confirmed_by_the_text_outweighs_a_misread_date_line() -> None:
    """GIVEN "CÔNG AN TỈNH ĐẮKLẮK" / "CÔNG AN XÃ KRÔNG PẮC", confirmed by "Công an Xã Krông Pắc
    xác nhận:" and the address, WHEN the date line reads "Krông Đắc, ngày ..." THEN the issuer
    stays confident (two readings against one); without the confirming lines it is doubted."""
    threshold = ExtractConfig().threshold_for("issuer")
    header = [
        (91.7, (413, 238, 1041, 293), "CÔNG AN TỈNH ĐẮKLẮK"),
        (91.8, (390, 318, 1059, 369), "CÔNG AN XÃ KRÔNG PẮC"),
        (92.9, (547, 449, 905, 500), "Số: 574/XN-CA"),
        *_MOTTO,
        (89.5, (1229, 448, 2207, 508), "Krông Đắc, ngày 11 tháng 11 năm 2026"),
        (92.9, (821, 589, 1837, 658), "XÁC NHẬN THÔNG TIN VỀ CƯ TRÚ"),
    ]
    confirming = [
        (94.9, (475, 721, 1332, 783), "Công an Xã Krông Pắc xác nhận:"),
        (95.0, (356, 1109, 1976, 1171), "Nơi thường trú: Thôn Phú Mỹ, Xã Krông Pắc"),
    ]
    rest = [
        (94.0, (356, 818, 1238, 886), "Họ và tên: DƯƠNG NGỌC HẰNG"),
        (95.0, (1405, 1462, 2130, 1517), "KT. TRƯỞNG CÔNG AN XÃ"),
        (94.0, (1390, 1539, 2145, 1595), "PHÓ TRƯỞNG CÔNG AN XÃ"),
        (96.3, (1550, 1890, 1986, 1946), "Quách Minh Đạt"),
    ]
    confirmed = extract([_ocr_page(header + confirming + rest)], "residence_confirmation")
    assert confirmed["issuer"].value == "Công an xã Krông Pắc, tỉnh Đắk Lắk"
    assert confirmed["issuer"].confidence >= threshold
    alone = extract([_ocr_page(header + rest)], "residence_confirmation")
    assert alone["issuer"].confidence < threshold


@pytest.mark.smoke
def test_a_name_split_in_two_boxes_on_one_row_is_joined() -> None:
    """GIVEN "Họ, chữ đệm, tên: HOÀNG THỊ" and "TRANG" as two boxes of one row (a wide gap)
    WHEN extracted THEN the name is whole; a name ending in "Thị" (the rest lost) is doubted."""
    rows = [
        (95.6, (434, 239, 1015, 295), "ỦY BAN NHÂN DÂN"),
        (87.2, (470, 316, 980, 372), "PHƯỜNG CỬA LÒ"),
        (96.8, (626, 444, 826, 490), "Số: 716"),
        (96.1, (1223, 442, 2215, 502), "Cửa Lò, ngày 20 tháng 01 năm 2026"),
        (94.0, (1032, 583, 1626, 650), "GIẤY KHAI SINH"),
        (94.8, (358, 723, 1291, 790), "Họ, chữ đệm, tên: HOÀNG THỊ"),
        (96.2, (1359, 733, 1548, 779), "TRANG"),
        (95.9, (357, 830, 1416, 889), "Ngày, tháng, năm sinh: 30/12/2025"),
    ]
    fields = extract([_ocr_page(rows)], "birth_certificate")
    assert fields["full_name"].value == "Hoàng Thị Trang"
    assert fields["full_name"].text == "Họ, chữ đệm, tên: HOÀNG THỊ\nTRANG"
    lost = extract([_ocr_page(rows[:6] + rows[7:])], "birth_certificate")
    assert lost["full_name"].value == "Hoàng Thị"
    assert lost["full_name"].confidence < ExtractConfig().threshold_for("full_name")


@pytest.mark.smoke
def test_a_place_read_otherwise_elsewhere_in_the_document_is_doubted() -> None:
    """GIVEN a card whose place of birth reads "Phường Hài An" while its address reads
    "Phường Hải An" WHEN extracted THEN the place of birth goes to a person; when the
    readings agree it does not."""
    threshold = ExtractConfig().threshold_for("place_of_birth")

    def back(birth_place: str) -> OcrPage:
        rows = [
            (91.6, (36, 35, 397, 58), "Nơi cư trú/Place of residence:"),
            (95.5, (34, 63, 837, 106), "Tổ dân phố 24, Phường Hải An, Thành phố Hải Phòng"),
            (87.0, (36, 113, 472, 141), "Nơi đẳng ký khai sinh/Place of birth:"),
            (94.2, (36, 147, 603, 179), f"Phường {birth_place}, Thành phố Hải Phòng"),
            (93.9, (416, 260, 594, 292), "BỘ CÔNG AN"),
        ]
        return _ocr_page(rows, size=(1011, 638))

    misread = extract([back("Hài An")], "citizen_id")["place_of_birth"]
    assert misread.value == "Phường Hài An, Thành phố Hải Phòng"
    assert misread.confidence < threshold
    agreed = extract([back("Hải An")], "citizen_id")["place_of_birth"]
    assert agreed.confidence >= threshold


@pytest.mark.smoke
def test_a_date_with_a_lost_separator_needs_a_second_reading() -> None:
    """ "0710/1970": one slash lost. The date parses, doubted; the card's MRZ (birth date with
    its check digit) confirms it."""
    parsed = parse_date("Ngày, tháng, năm sinh/Date of birth: 0710/1970")
    assert parsed is not None and parsed[0] == date(1970, 10, 7) and parsed[1] <= 0.4
    assert parse_date("1234/2025") is None  # no day 12, month 34
    threshold = ExtractConfig().threshold_for("date_of_birth")
    pages = _card_pair("9510179F3510177VNM<<<<<<<<<<<1")
    joined = OcrLine("Ngày, tháng, năm sinh/Date of birth: 1710/1995", (229, 393, 749, 428), 63.5)
    pages[0].lines[6] = joined
    fields = extract(pages, "citizen_id")
    assert fields["date_of_birth"].value == "1995-10-17"
    assert fields["date_of_birth"].confidence >= threshold
    del pages[1]  # the back side (and its MRZ) missing: nothing confirms the guess
    alone = extract(pages, "citizen_id")
    assert alone["date_of_birth"].confidence < threshold


@pytest.mark.smoke
def test_specks_under_a_known_header_do_not_doubt_it() -> None:
    """Specks under the header rule read as "sa..." are no lost line of the office; a line of
    broken capitals ("5E SE ĐSHOĐAE") may be, and keeps the issuer in review."""
    threshold = ExtractConfig().threshold_for("issuer")

    def page(junk: str) -> OcrPage:
        rows = [
            (87.9, (366, 239, 1080, 277), "SỞ KẾ HOẠCH VÀ ĐẦU TƯ TỈNH THÁI BÌNH"),
            (93.9, (357, 289, 1088, 327), "PHÒNG ĐĂNG KÝ KINH DOANH"),
            (16.2, (572, 319, 876, 383), junk),
            (95.0, (1276, 323, 2158, 379), "Độc lập - Tự do - Hạnh phúc"),
            (96.5, (1204, 445, 2231, 501), "Thái Bình, ngày 09 tháng 4 năm 2020"),
            (93.2, (521, 582, 2135, 658), "GIẤY CHỨNG NHẬN ĐĂNG KÝ DOANH NGHIỆP"),
        ]
        return _ocr_page(rows)

    issuer = extract([page("sa...")], "business_registration")["issuer"]
    assert issuer.value == "Phòng Đăng ký kinh doanh, Sở Tài chính tỉnh Hưng Yên"
    assert issuer.confidence >= threshold
    garbled = extract([page("5E SE ĐSHOĐAE")], "business_registration")["issuer"]
    assert garbled.confidence < threshold


@pytest.mark.smoke
def test_a_doubled_d_in_the_symbol_keeps_the_format_support() -> None:
    """ "Số: 87/QĐĐ-UBND": Tesseract's doubled Đ is undone at a small cost and the symbol still
    names the issuer, which lifts the number over OCR's line confidence."""
    assert parse_document_number("Số: 87/QĐĐ-UBND") == ("87/QĐ-UBND", 0.9)
    page = _decision(
        ["UBND TỈNH THANH HÓA", "SỞ NÔNG NGHIỆP VÀ MÔI TRƯỜNG"], (80.0, "Số: 87/QĐĐ-SNNMT"), 92.3
    )
    number = extract([page], "decision")["document_number"]
    assert number.value == "87/QĐ-SNNMT"
    assert number.confidence > 0.8 * 0.9
