"""Reading order of OCR lines: two-column headers and signature blocks."""

from __future__ import annotations

import pytest

from digitizer.pipeline.layout import Word, reading_order

pytestmark = pytest.mark.smoke

H = 40  # line height in pixels


def line(y: int, *runs: tuple[int, str]) -> list[Word]:
    """Words of one line; each run starts at x and its words are 15 px apart."""
    words = []
    for x, text in runs:
        for token in text.split():
            width = 22 * len(token)
            words.append(Word(token, (x, y, x + width, y + H), 90.0))
            x += width + 15
    return words


def texts(lines: list[list[Word]]) -> list[str]:
    return [seg.text for seg in reading_order(lines)]


def test_two_column_header_is_read_column_by_column() -> None:
    page = [
        line(100, (100, "ỦY BAN NHÂN DÂN"), (1100, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")),
        line(160, (120, "PHƯỜNG BA ĐÌNH"), (1250, "Độc lập - Tự do - Hạnh phúc")),
        line(230, (110, "Số: 12/QĐ-UBND"), (1200, "Hà Nội, ngày 9 tháng 6 năm 2025")),
        line(400, (700, "QUYẾT ĐỊNH")),
        line(
            480,
            (100, "Điều 1. Cấp giấy chứng nhận cho hộ gia đình ông Nguyễn Văn An tại tổ 5 ở đây"),
        ),
    ]
    assert texts(page) == [
        "ỦY BAN NHÂN DÂN",
        "PHƯỜNG BA ĐÌNH",
        "Số: 12/QĐ-UBND",
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "Hà Nội, ngày 9 tháng 6 năm 2025",
        "QUYẾT ĐỊNH",
        "Điều 1. Cấp giấy chứng nhận cho hộ gia đình ông Nguyễn Văn An tại tổ 5 ở đây",
    ]


def test_side_by_side_fields_stay_row_by_row() -> None:
    # One row holds two fields; the rows around it are single: not a column block.
    page = [
        line(100, (100, "1. Họ và tên: TRẦN THỊ BÌNH")),
        line(160, (100, "2. Ngày sinh: 01/02/1990"), (1000, "3. Giới tính: Nữ")),
        line(220, (100, "4. Nơi sinh: Trạm Y tế xã Đông Hòa")),
    ]
    assert texts(page) == [
        "1. Họ và tên: TRẦN THỊ BÌNH",
        "2. Ngày sinh: 01/02/1990",
        "3. Giới tính: Nữ",
        "4. Nơi sinh: Trạm Y tế xã Đông Hòa",
    ]


def test_signature_block_with_a_long_left_line() -> None:
    page = [
        line(100, (100, "Nơi nhận:"), (1400, "TM. ỦY BAN NHÂN DÂN")),
        line(160, (100, "- Như Điều 3;"), (1550, "CHỦ TỊCH")),
        line(220, (100, "- Chủ tịch, các Phó Chủ tịch UBND")),
        line(280, (100, "- Lưu: VT.")),
        line(420, (1450, "Nguyễn Văn An")),
    ]
    assert texts(page) == [
        "Nơi nhận:",
        "- Như Điều 3;",
        "- Chủ tịch, các Phó Chủ tịch UBND",
        "- Lưu: VT.",
        "TM. ỦY BAN NHÂN DÂN",
        "CHỦ TỊCH",
        "Nguyễn Văn An",
    ]


def test_ordinary_word_spaces_do_not_split_lines() -> None:
    page = [line(100, (100, "Căn cứ Luật Hộ tịch ngày 20 tháng 11 năm 2014;"))]
    assert texts(page) == ["Căn cứ Luật Hộ tịch ngày 20 tháng 11 năm 2014;"]


def test_header_columns_close_together_and_a_salutation_after_them() -> None:
    # The office name and the motto 1.1 line heights apart; the left column goes on under the
    # motto ("V/v ..."), then a blank line and "Kính gửi:" at the margin: the body, not the column.
    page = [
        line(100, (100, "CÔNG AN TỈNH KHÁNH HÒA"), (600, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")),
        line(160, (110, "CÔNG AN XÃ DIÊN KHÁNH"), (780, "Độc lập - Tự do - Hạnh phúc")),
        line(230, (130, "Số: 387/CAX-QLHC"), (700, "Diên Khánh, ngày 12 tháng 11 năm 2025")),
        line(290, (120, "V/v thu nhận hồ sơ")),
        line(350, (140, "cho công dân")),
        line(450, (50, "Kính gửi:")),
        line(510, (50, "- Ủy ban nhân dân Xã Diên Khánh và các tổ dân phố trên địa bàn xã")),
    ]
    assert texts(page) == [
        "CÔNG AN TỈNH KHÁNH HÒA",
        "CÔNG AN XÃ DIÊN KHÁNH",
        "Số: 387/CAX-QLHC",
        "V/v thu nhận hồ sơ",
        "cho công dân",
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "Diên Khánh, ngày 12 tháng 11 năm 2025",
        "Kính gửi:",
        "- Ủy ban nhân dân Xã Diên Khánh và các tổ dân phố trên địa bàn xã",
    ]


def test_signers_names_below_the_room_for_signatures_stay_in_their_columns() -> None:
    # Husband and wife sign on the left, the office on the right; the names come after a gap.
    page = [
        line(100, (150, "Chồng"), (450, "Vợ"), (1100, "TM. ỦY BAN NHÂN DÂN")),
        line(160, (1200, "CHỦ TỊCH")),
        line(330, (100, "Hồ Minh Việt"), (420, "Lâm Thị Anh")),
        line(400, (1150, "Bùi Phương Ngọc")),
    ]
    assert texts(page) == [
        "Chồng",
        "Hồ Minh Việt",
        "Vợ",
        "Lâm Thị Anh",
        "TM. ỦY BAN NHÂN DÂN",
        "CHỦ TỊCH",
        "Bùi Phương Ngọc",
    ]


def test_rows_of_fields_side_by_side_are_read_row_by_row() -> None:
    # A birth certificate's parents: three fields a row, rows repeated: a form, not columns.
    page = [
        line(100, (100, "Họ, chữ đệm, tên người mẹ: HỒ DIỆU TRANG")),
        line(160, (100, "Năm sinh: 2006"), (700, "Dân tộc: Kinh"), (1300, "Quốc tịch: Việt Nam")),
        line(220, (100, "Họ, chữ đệm, tên người cha: BÙI HỮU LỘC")),
        line(280, (100, "Năm sinh: 1988"), (700, "Dân tộc: Kinh"), (1300, "Quốc tịch: Việt Nam")),
    ]
    assert texts(page) == [
        "Họ, chữ đệm, tên người mẹ: HỒ DIỆU TRANG",
        "Năm sinh: 2006",
        "Dân tộc: Kinh",
        "Quốc tịch: Việt Nam",
        "Họ, chữ đệm, tên người cha: BÙI HỮU LỘC",
        "Năm sinh: 1988",
        "Dân tộc: Kinh",
        "Quốc tịch: Việt Nam",
    ]


def test_a_signature_title_misread_with_a_colon_is_not_a_form_field() -> None:
    page = [
        line(100, (100, "Nơi nhận:"), (1400, "TM: ỦY BAN NHÂN DÂN")),
        line(160, (100, "- Như Điều 3;"), (1550, "CHỦ TỊCH")),
        line(220, (100, "- Lưu: VT.")),
    ]
    assert texts(page) == [
        "Nơi nhận:",
        "- Như Điều 3;",
        "- Lưu: VT.",
        "TM: ỦY BAN NHÂN DÂN",
        "CHỦ TỊCH",
    ]
