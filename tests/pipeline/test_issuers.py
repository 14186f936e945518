"""Issuer normalisation across the 2025 reorganisation, and the Vietnamese text helpers."""

from __future__ import annotations

import unicodedata

import pytest

from digitizer.pipeline.issuers import (
    CURRENT_PROVINCES,
    FORMER_PROVINCES,
    fold,
    normalize_issuer,
    normalize_province,
    normalize_tone_marks,
    open_names,
    title_case,
)

pytestmark = pytest.mark.smoke


def test_34_provinces_and_every_former_one_maps_to_a_current_one() -> None:
    current = {name for _, name in CURRENT_PROVINCES}
    assert len(current) == 34
    for old, new in FORMER_PROVINCES:
        assert new in current, old
        kind, name, former = normalize_province(old)  # type: ignore[misc]
        assert (name, former) == (new, old)
        assert kind == dict((n, k) for k, n in CURRENT_PROVINCES)[new]


@pytest.mark.parametrize(
    ("printed", "expected"),
    [
        ("Tỉnh Hà Nam", ("tỉnh", "Ninh Bình", "Hà Nam")),
        ("TỈNH BÀ RỊA - VŨNG TÀU", ("thành phố", "Hồ Chí Minh", "Bà Rịa - Vũng Tàu")),
        ("Thừa Thiên Huế", ("thành phố", "Huế", "Thừa Thiên Huế")),
        ("Khanh Hoa", ("tỉnh", "Khánh Hòa", None)),  # diacritics lost by OCR
        ("Khánh Hoà", ("tỉnh", "Khánh Hòa", None)),  # modern tone placement
        ("Quảng Ninb", ("tỉnh", "Quảng Ninh", None)),  # one OCR slip
        ("Hà Tây", ("thành phố", "Hà Nội", "Hà Tây")),
    ],
)
def test_normalize_province(printed: str, expected: tuple[str, str, str | None]) -> None:
    assert normalize_province(printed) == expected


def test_not_a_province() -> None:
    assert normalize_province("Thủ Dầu Một") is None
    assert normalize_province("") is None


@pytest.mark.parametrize(
    ("lines", "name"),
    [
        (["ỦY BAN NHÂN DÂN", "XÃ DIÊN KHÁNH"], "Ủy ban nhân dân xã Diên Khánh"),
        (["UBND THÀNH PHỐ HẢI PHÒNG", "SỞ NỘI VỤ"], "Sở Nội vụ thành phố Hải Phòng"),
        (
            ["CÔNG AN TỈNH KHÁNH HÒA", "CÔNG AN XÃ DIÊN KHÁNH"],
            "Công an xã Diên Khánh, tỉnh Khánh Hòa",
        ),
        (["ỦY BAN NHÂN DÂN", "ĐẶC KHU CÁT HẢI"], "Ủy ban nhân dân đặc khu Cát Hải"),
        ("BỘ CÔNG AN", "Bộ Công an"),
        (
            "CỤC TRƯỞNG CỤC CẢNH SÁT QUẢN LÝ HÀNH CHÍNH VỀ TRẬT TỰ XÃ HỘI",
            "Cục Cảnh sát quản lý hành chính về trật tự xã hội",
        ),
        ("HIỆU TRƯỞNG TRƯỜNG ĐẠI HỌC BÁCH KHOA HÀ NỘI", "Trường Đại học Bách khoa Hà Nội"),
        (
            "GIÁM ĐỐC SỞ GIÁO DỤC VÀ ĐÀO TẠO TỈNH KHÁNH HOÀ",
            "Sở Giáo dục và Đào tạo tỉnh Khánh Hòa",
        ),
    ],
)
def test_current_issuers(lines: str | list[str], name: str) -> None:
    issuer = normalize_issuer(lines)
    assert issuer is not None
    assert issuer.name == name
    assert not issuer.defunct and issuer.former_province is None and issuer.known


def test_merged_province_maps_to_the_successor() -> None:
    issuer = normalize_issuer("Ủy ban nhân dân tỉnh Hà Nam")
    assert issuer is not None
    assert issuer.name == "Ủy ban nhân dân tỉnh Ninh Bình"
    assert (issuer.province, issuer.former_province) == ("Ninh Bình", "Hà Nam")


def test_renamed_departments_of_march_2025() -> None:
    business = normalize_issuer(["SỞ KẾ HOẠCH VÀ ĐẦU TƯ TỈNH HÀ NAM", "PHÒNG ĐĂNG KÝ KINH DOANH"])
    assert business is not None
    assert business.name == "Phòng Đăng ký kinh doanh, Sở Tài chính tỉnh Ninh Bình"
    land = normalize_issuer("SỞ TÀI NGUYÊN VÀ MÔI TRƯỜNG TỈNH BÀ RỊA - VŨNG TÀU")
    assert land is not None
    assert land.name == "Sở Nông nghiệp và Môi trường thành phố Hồ Chí Minh"


def test_district_level_is_marked_former_with_a_provincial_successor() -> None:
    """District-level government ended on 1 July 2025: 'UBND huyện X' no longer exists."""
    district = normalize_issuer("UBND huyện Gia Lâm, TP. Hà Nội")
    assert district is not None
    assert district.name == "Ủy ban nhân dân huyện Gia Lâm (cũ), thành phố Hà Nội"
    assert district.defunct
    assert district.successor == "Ủy ban nhân dân thành phố Hà Nội"
    commune = normalize_issuer("Ủy ban nhân dân xã Liêm Cần, huyện Thanh Liêm, tỉnh Hà Nam")
    assert commune is not None
    assert commune.name == "Ủy ban nhân dân xã Liêm Cần (huyện Thanh Liêm cũ), tỉnh Ninh Bình"
    assert commune.defunct and commune.former_province == "Hà Nam"
    justice = normalize_issuer(["UBND HUYỆN THANH LIÊM", "PHÒNG TƯ PHÁP"])
    assert justice is not None and justice.defunct


def test_city_under_a_province_is_district_level() -> None:
    issuer = normalize_issuer(
        "Ủy ban nhân dân Phường Cẩm Thượng, Thành phố Hải Dương, Tỉnh Hải Dương"
    )
    assert issuer is not None
    assert issuer.name == (
        "Ủy ban nhân dân phường Cẩm Thượng (thành phố Hải Dương cũ), thành phố Hải Phòng"
    )


def test_unrecognised_text_is_none() -> None:
    assert normalize_issuer("Nơi nhận: Như trên") is None
    assert normalize_issuer([]) is None


def test_text_helpers() -> None:
    assert fold("Đặng Thị Ỷ Lan") == "dang thi y lan"
    nfd = unicodedata.normalize("NFD", "Nguyễn")
    assert len(fold(nfd)) == len("Nguyễn")  # folded from NFC: one character per character
    assert title_case("TRẦN  THÙY UYÊN") == "Trần Thùy Uyên"
    assert title_case("ĐOÀN THỊ HOÀ") == "Đoàn Thị Hòa"
    assert normalize_tone_marks("thuỷ, hoàn, quý, KHOẺ, thuyền") == "thủy, hoàn, quý, KHỎE, thuyền"


@pytest.mark.parametrize(
    ("line", "names"),
    [
        # Header lines as Tesseract read them from degraded scans.
        ("UBND TỈNH THANH HÓA", []),
        ("SỞ NÔNG NGHIỆP VÀ MÔI TRƯỜNG", []),
        ("CÔNG AN TỈNH NINH BÌNH", []),
        ("SỞ TÀI CHÍNH TỈNH NINHBÌNH", []),  # a space lost: still the province's name
        ("CÔNG AN TỈNH NGHỆAN", []),
        ("ỦY BAN NHÂN DÂN", []),
        ("PHÒNG ĐĂNG KÝ KINH DOANH", []),
        ("CÔNG AN PHƯỜNG PHỦ LÝ", ["Phủ Lý"]),  # a commune: open, needs a second reading
        ("XÃ DIÊN KHÁNH", ["Diên Khánh"]),
        ("ỦY BAN NHÂN DÂN HUYỆN THANH LIÊM", ["Thanh Liêm"]),
        ("CÔNG AN TỈNH NINH BINB", None),  # normalised with one slip, but no known name
        ("SỞ NÔNG NGHIỆP VÀ MÔI TRƯỜNGG", None),
        ("CỔNG PHƯƠNG AN", None),
        ("TRƯỜNG ĐẠI HỌC VINH", None),
        ("", None),
    ],
)
def test_open_names_tell_known_header_lines_from_the_rest(
    line: str, names: list[str] | None
) -> None:
    """A header line made only of known bodies and provinces can be trusted beyond OCR's line
    confidence; commune names need a second reading; anything else nothing."""
    assert open_names(line) == names
