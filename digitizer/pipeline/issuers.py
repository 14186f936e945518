"""Issuing bodies: Vietnamese text helpers and normalisation across the 2025 reorganisation.

Three changes of 2025 make the same issuer appear under several names on paper:

- 1 January 2025: Thừa Thiên Huế became the centrally-run Thành phố Huế.
- 1 March 2025: ministries and provincial departments merged (Sở Kế hoạch và Đầu tư into
  Sở Tài chính, Sở Tài nguyên và Môi trường with Sở Nông nghiệp into Sở Nông nghiệp và Môi
  trường, Sở Thông tin và Truyền thông into Sở Khoa học và Công nghệ, ...).
- 1 July 2025 (Resolution 202/2025/QH15): 63 provinces became 34, and the district level
  (huyện, quận, thị xã, thành phố thuộc tỉnh) ended; local government has two levels, province
  and commune (xã, phường, đặc khu).

Normal form of an issuer (the ``issuer`` field value)::

    <Body>[ <unit>][, <parent unit>]...

with bodies spelt canonically ("Ủy ban nhân dân", "Sở Tư pháp", "Công an"), unit kinds in
lower case as in running text ("xã Diên Khánh", "tỉnh Khánh Hòa", "thành phố Hà Nội"), and:

- an old province replaced by the province it merged into ("tỉnh Hà Nam" -> "tỉnh Ninh Bình"),
  a renamed body by its successor ("Sở Tài nguyên và Môi trường" -> "Sở Nông nghiệp và Môi
  trường"): the body that answers for the document today;
- a district-level unit kept, marked as former, "(huyện Thanh Liêm cũ)", because it has no
  single successor (its tasks went partly to the province, partly to communes) and dropping it
  would make commune names ambiguous. :class:`Issuer` also gives the province-level
  ``successor`` for callers that need a body that exists now.

The data tables are plain tuples so they can be reviewed against the resolutions.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

__all__ = [
    "BODIES",
    "CURRENT_PROVINCES",
    "FORMER_PROVINCES",
    "Issuer",
    "fold",
    "normalize_issuer",
    "normalize_province",
    "normalize_tone_marks",
    "open_names",
    "title_case",
]

# --------------------------------------------------------------------------------------------
# Vietnamese text helpers (shared by classify and extract)

# Đ and đ have no decomposition; Tesseract sometimes returns Icelandic Ð/ð for them.
_FOLD_EXTRA = str.maketrans({"đ": "d", "Đ": "D", "ð": "d", "Ð": "D"})


@lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    base = unicodedata.normalize("NFD", ch)[0]
    return base.translate(_FOLD_EXTRA)


def fold(text: str) -> str:
    """Lower case without diacritics, one character per character of the NFC input.

    Keeping the length lets a match found in folded text be sliced out of the original, which
    makes label matching tolerant of the diacritics OCR gets wrong ("Ngay sinh" for "Ngày
    sinh") while values keep theirs.
    """
    text = unicodedata.normalize("NFC", text)
    return "".join(_fold_char(ch) if ord(ch) > 127 else ch for ch in text).lower()


# Traditional tone placement on open oa/oe/uy ("hòa", "khỏe", "thủy"): what Decree 30 documents
# and place names use. OCR and some keyboards give the modern placement ("hoà", "thuỷ").
_TONES = "\u0300\u0301\u0303\u0309\u0323"
# On NFD text every letter is an ASCII base plus marks (đ aside, never a final): the tone mark
# must end the syllable, i.e. no letter or mark may follow it.
_OPEN_DIPHTHONG = re.compile(
    r"(?i)(?<!q)([ou])([aey])([\u0300\u0301\u0303\u0309\u0323])(?![a-z\u0300-\u036f])"
)


def normalize_tone_marks(text: str) -> str:
    """Move the tone mark of a syllable-final oa/oe/uy onto the first vowel ("hoà" -> "hòa").

    Syllables with a final consonant ("hoàn", "thuyền") and "qu" + vowel ("quý") are untouched.
    """
    nfd = unicodedata.normalize("NFD", text)
    moved = _OPEN_DIPHTHONG.sub(lambda m: m.group(1) + m.group(3) + m.group(2), nfd)
    return unicodedata.normalize("NFC", moved)


def title_case(text: str) -> str:
    """Every syllable capitalised ("NGUYỄN VĂN AN" -> "Nguyễn Văn An"), NFC, single spaces."""
    words = unicodedata.normalize("NFC", " ".join(text.split())).split(" ")
    out = []
    for word in words:
        parts = word.split("-")
        out.append("-".join(p[:1].upper() + p[1:].lower() for p in parts))
    return normalize_tone_marks(" ".join(out))


# --------------------------------------------------------------------------------------------
# Provinces

#: The 34 provincial units in force since 1 July 2025: (kind, name).
CURRENT_PROVINCES: tuple[tuple[str, str], ...] = (
    ("thành phố", "Hà Nội"), ("thành phố", "Huế"), ("thành phố", "Hải Phòng"),
    ("thành phố", "Đà Nẵng"), ("thành phố", "Hồ Chí Minh"), ("thành phố", "Cần Thơ"),
    ("tỉnh", "Lai Châu"), ("tỉnh", "Điện Biên"), ("tỉnh", "Sơn La"), ("tỉnh", "Lạng Sơn"),
    ("tỉnh", "Quảng Ninh"), ("tỉnh", "Thanh Hóa"), ("tỉnh", "Nghệ An"), ("tỉnh", "Hà Tĩnh"),
    ("tỉnh", "Cao Bằng"), ("tỉnh", "Tuyên Quang"), ("tỉnh", "Lào Cai"), ("tỉnh", "Thái Nguyên"),
    ("tỉnh", "Phú Thọ"), ("tỉnh", "Bắc Ninh"), ("tỉnh", "Hưng Yên"), ("tỉnh", "Ninh Bình"),
    ("tỉnh", "Quảng Trị"), ("tỉnh", "Quảng Ngãi"), ("tỉnh", "Gia Lai"), ("tỉnh", "Khánh Hòa"),
    ("tỉnh", "Lâm Đồng"), ("tỉnh", "Đắk Lắk"), ("tỉnh", "Đồng Nai"), ("tỉnh", "Tây Ninh"),
    ("tỉnh", "Vĩnh Long"), ("tỉnh", "Đồng Tháp"), ("tỉnh", "Cà Mau"), ("tỉnh", "An Giang"),
)  # fmt: skip

#: Provinces that no longer exist -> the current province that took them over (Resolution
#: 202/2025/QH15; Thừa Thiên Huế renamed 1 January 2025; Hà Tây merged into Hà Nội in 2008,
#: still printed on old birth certificates).
FORMER_PROVINCES: tuple[tuple[str, str], ...] = (
    ("Hà Giang", "Tuyên Quang"), ("Yên Bái", "Lào Cai"), ("Bắc Kạn", "Thái Nguyên"),
    ("Vĩnh Phúc", "Phú Thọ"), ("Hòa Bình", "Phú Thọ"), ("Bắc Giang", "Bắc Ninh"),
    ("Thái Bình", "Hưng Yên"), ("Hải Dương", "Hải Phòng"), ("Hà Nam", "Ninh Bình"),
    ("Nam Định", "Ninh Bình"), ("Quảng Bình", "Quảng Trị"), ("Quảng Nam", "Đà Nẵng"),
    ("Kon Tum", "Quảng Ngãi"), ("Bình Định", "Gia Lai"), ("Ninh Thuận", "Khánh Hòa"),
    ("Đắk Nông", "Lâm Đồng"), ("Bình Thuận", "Lâm Đồng"), ("Phú Yên", "Đắk Lắk"),
    ("Bà Rịa - Vũng Tàu", "Hồ Chí Minh"), ("Bình Dương", "Hồ Chí Minh"),
    ("Bình Phước", "Đồng Nai"), ("Long An", "Tây Ninh"), ("Sóc Trăng", "Cần Thơ"),
    ("Hậu Giang", "Cần Thơ"), ("Bến Tre", "Vĩnh Long"), ("Trà Vinh", "Vĩnh Long"),
    ("Tiền Giang", "Đồng Tháp"), ("Bạc Liêu", "Cà Mau"), ("Kiên Giang", "An Giang"),
    ("Thừa Thiên Huế", "Huế"), ("Hà Tây", "Hà Nội"),
)  # fmt: skip

_CURRENT_KIND = {name: kind for kind, name in CURRENT_PROVINCES}
_FORMER = dict(FORMER_PROVINCES)


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", fold(name))


_PROVINCE_KEYS: dict[str, tuple[str, str | None]] = {}
for _kind, _name in CURRENT_PROVINCES:
    _PROVINCE_KEYS[_key(_name)] = (_name, None)
for _old, _new in FORMER_PROVINCES:
    _PROVINCE_KEYS[_key(_old)] = (_new, _old)
_PROVINCE_KEYS[_key("Thừa Thiên - Huế")] = ("Huế", "Thừa Thiên Huế")
_PROVINCE_KEYS[_key("Sài Gòn")] = ("Hồ Chí Minh", None)
_PROVINCE_KEYS[_key("TP HCM")] = ("Hồ Chí Minh", None)
_PROVINCE_KEYS[_key("HCM")] = ("Hồ Chí Minh", None)
_PROVINCE_KEYS[_key("Bà Rịa Vũng Tàu")] = ("Hồ Chí Minh", "Bà Rịa - Vũng Tàu")


def normalize_province(name: str) -> tuple[str, str, str | None] | None:
    """Map a province name as printed (any case, missing diacritics, OCR slips) to today's.

    Returns:
        ``(kind, current name, former name or None)``, e.g. ``("tỉnh", "Ninh Bình", "Hà Nam")``,
        or ``None`` when the name is not a province (then it may be a district-level city).
    """
    key = _key(re.sub(r"(?i)^\s*(tinh|tỉnh|thanh pho|thành phố|tp\.?)\s+", "", name))
    if not key:
        return None
    hit = _PROVINCE_KEYS.get(key)
    if hit is None and len(key) >= 5:
        # One OCR slip in a name of 5+ letters ("khanhhoa" read "khanhhoe"): edit distance 1.
        from rapidfuzz.distance import Levenshtein

        close = [v for k, v in _PROVINCE_KEYS.items() if Levenshtein.distance(k, key) <= 1]
        if len(close) == 1:
            hit = close[0]
    if hit is None:
        return None
    current, former = hit
    return _CURRENT_KIND[current], current, former


# --------------------------------------------------------------------------------------------
# Bodies

#: Issuing bodies: (folded name as printed, canonical current name, level). Level "unit" means
#: the body takes an administrative unit after it ("Ủy ban nhân dân" + "xã X"); "province" a
#: provincial department ("Sở Tư pháp" + "tỉnh X"); "district" a district-level office
#: (abolished 1 July 2025); "central" a ministry or national department; "school" a school
#: or university whose name follows. Renamed bodies map to their successor (1 March 2025).
BODIES: tuple[tuple[str, str, str], ...] = (
    ("uy ban nhan dan", "Ủy ban nhân dân", "unit"),
    ("hoi dong nhan dan", "Hội đồng nhân dân", "unit"),
    ("cong an", "Công an", "unit"),
    ("so tu phap", "Sở Tư pháp", "province"),
    ("so noi vu", "Sở Nội vụ", "province"),
    ("so lao dong - thuong binh va xa hoi", "Sở Nội vụ", "province"),
    ("so lao dong thuong binh va xa hoi", "Sở Nội vụ", "province"),
    ("so tai chinh", "Sở Tài chính", "province"),
    ("so ke hoach va dau tu", "Sở Tài chính", "province"),
    ("so nong nghiep va moi truong", "Sở Nông nghiệp và Môi trường", "province"),
    ("so tai nguyen va moi truong", "Sở Nông nghiệp và Môi trường", "province"),
    ("so nong nghiep va phat trien nong thon", "Sở Nông nghiệp và Môi trường", "province"),
    ("so khoa hoc va cong nghe", "Sở Khoa học và Công nghệ", "province"),
    ("so thong tin va truyen thong", "Sở Khoa học và Công nghệ", "province"),
    ("so giao duc va dao tao", "Sở Giáo dục và Đào tạo", "province"),
    ("so xay dung", "Sở Xây dựng", "province"),
    ("so giao thong van tai", "Sở Xây dựng", "province"),
    ("so y te", "Sở Y tế", "province"),
    ("so cong thuong", "Sở Công Thương", "province"),
    ("so van hoa, the thao va du lich", "Sở Văn hóa, Thể thao và Du lịch", "province"),
    ("so van hoa the thao va du lich", "Sở Văn hóa, Thể thao và Du lịch", "province"),
    ("phong dang ky kinh doanh", "Phòng Đăng ký kinh doanh", "office"),
    ("van phong dang ky dat dai", "Văn phòng đăng ký đất đai", "office"),
    ("phong tu phap", "Phòng Tư pháp", "district"),
    ("phong tai nguyen va moi truong", "Phòng Tài nguyên và Môi trường", "district"),
    ("phong tai chinh - ke hoach", "Phòng Tài chính - Kế hoạch", "district"),
    ("phong kinh te", "Phòng Kinh tế", "office"),
    ("phong van hoa - xa hoi", "Phòng Văn hóa - Xã hội", "office"),
    ("bo cong an", "Bộ Công an", "central"),
    ("bo tu phap", "Bộ Tư pháp", "central"),
    ("bo noi vu", "Bộ Nội vụ", "central"),
    ("bo giao duc va dao tao", "Bộ Giáo dục và Đào tạo", "central"),
    ("bo tai chinh", "Bộ Tài chính", "central"),
    ("bo ke hoach va dau tu", "Bộ Tài chính", "central"),
    ("bo nong nghiep va moi truong", "Bộ Nông nghiệp và Môi trường", "central"),
    ("bo tai nguyen va moi truong", "Bộ Nông nghiệp và Môi trường", "central"),
    ("bo khoa hoc va cong nghe", "Bộ Khoa học và Công nghệ", "central"),
    ("bo thong tin va truyen thong", "Bộ Khoa học và Công nghệ", "central"),
    (
        "cuc canh sat quan ly hanh chinh ve trat tu xa hoi",
        "Cục Cảnh sát quản lý hành chính về trật tự xã hội",
        "central",
    ),
    (
        "cuc canh sat dkql cu tru va dlqg ve dan cu",
        "Cục Cảnh sát quản lý hành chính về trật tự xã hội",
        "central",
    ),
    (
        "cuc canh sat dang ky quan ly cu tru va du lieu quoc gia ve dan cu",
        "Cục Cảnh sát quản lý hành chính về trật tự xã hội",
        "central",
    ),
    ("truong dai hoc", "Trường Đại học", "school"),
    ("truong cao dang", "Trường Cao đẳng", "school"),
    ("truong trung hoc pho thong", "Trường Trung học phổ thông", "school"),
    ("dai hoc", "Đại học", "school"),
)

#: Schools and universities whose capitalisation cannot be derived from capitals.
KNOWN_SCHOOLS: tuple[str, ...] = (
    "Trường Đại học Bách khoa Hà Nội",
    "Trường Đại học Kinh tế Quốc dân",
    "Trường Đại học Sư phạm Hà Nội",
    "Trường Đại học Cần Thơ",
    "Trường Đại học Vinh",
    "Trường Đại học Đà Lạt",
    "Trường Đại học Nha Trang",
    "Trường Đại học Quy Nhơn",
    "Trường Đại học Kinh tế Thành phố Hồ Chí Minh",
    "Trường Đại học Y Dược Cần Thơ",
    "Trường Đại học Luật Hà Nội",
    "Trường Đại học Thủy lợi",
)

#: Role words printed before a body in signature blocks ("GIÁM ĐỐC SỞ ...", "TM. ỦY BAN ...").
_ROLE_PREFIX = re.compile(
    r"^(?:(?:tm|kt|q|tl|tuq)\.?\s+)*(?:pho\s+)?(?:giam doc|hieu truong|cuc truong|chu tich|"
    r"truong phong)?\s*",
)
_ABBREVIATIONS = (
    (re.compile(r"(?i)\bubnd\b"), "Ủy ban nhân dân"),
    (re.compile(r"(?i)\bhđnd\b|\bhdnd\b"), "Hội đồng nhân dân"),
    (re.compile(r"(?i)\btp\.\s*|\btp\s+"), "thành phố "),
    (re.compile(r"(?i)\btx\.\s*"), "thị xã "),
)
_UNIT_KINDS = (
    "thanh pho",
    "thi xa",
    "thi tran",
    "dac khu",
    "tinh",
    "huyen",
    "quan",
    "xa",
    "phuong",
)
_KIND_TEXT = {
    "thanh pho": "thành phố",
    "thi xa": "thị xã",
    "thi tran": "thị trấn",
    "dac khu": "đặc khu",
    "tinh": "tỉnh",
    "huyen": "huyện",
    "quan": "quận",
    "xa": "xã",
    "phuong": "phường",
}
_LEVEL = {
    "tinh": 3,
    "thanh pho": 3,  # province-level city; district-level ones get 2 below
    "huyen": 2,
    "quan": 2,
    "thi xa": 2,
    "xa": 1,
    "phuong": 1,
    "thi tran": 1,
    "dac khu": 1,
}
_UNIT_RE = re.compile(r"\b(" + "|".join(k.replace(" ", r"\s+") for k in _UNIT_KINDS) + r")\s+")


@dataclass(frozen=True)
class Unit:
    """One administrative unit: kind as printed in running text, name, level (3 province, 2
    district, 1 commune), and the former province name when it was merged away."""

    kind: str
    name: str
    level: int
    former: str | None = None

    @property
    def text(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Issuer:
    """An issuing body, normalised.

    Attributes:
        name: the normal form (the ``issuer`` field value), see the module docstring.
        body: the canonical current body name ("Ủy ban nhân dân", "Sở Tư pháp").
        province: the current province ("Ninh Bình") when the issuer names one.
        former_province: the province as printed when it has been merged away.
        defunct: the issuer was a district-level body or sits in a former district.
        successor: a body that exists today and answers for the document: the normal form
            itself, or for a district-level body its provincial counterpart.
        known: the body was found in :data:`BODIES` (unknown bodies get a lower confidence).
    """

    name: str
    body: str
    province: str | None = None
    former_province: str | None = None
    defunct: bool = False
    successor: str | None = None
    known: bool = True


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFC", " ".join(text.split()))
    for pattern, repl in _ABBREVIATIONS:
        text = pattern.sub(repl, text)
    return " ".join(text.split()).strip(" .,;:")


def _match_body(folded: str) -> tuple[str, str, int] | None:
    """(canonical, level, length of the folded prefix matched) for a body at the start."""
    best: tuple[str, str, int] | None = None
    for key, canonical, level in BODIES:
        if folded.startswith(key) and (len(folded) == len(key) or not folded[len(key)].isalnum()):
            if best is None or len(key) > best[2]:
                best = (canonical, level, len(key))
    return best


def _parse_units(text: str) -> list[Unit]:
    """Units in ``text`` ("xã A, huyện B, tỉnh C"), in printed order."""
    folded = fold(text)
    starts = [
        (m.start(), m.end(), re.sub(r"\s+", " ", m.group(1))) for m in _UNIT_RE.finditer(folded)
    ]
    raw: list[tuple[str, str]] = []
    for i, (_, end, kind) in enumerate(starts):
        stop = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        name = text[end:stop].strip(" ,;.-()")
        name = re.sub(r"(?i)\s*\(?\s*c[ũu]\s*\)?$", "", name).strip(" ,;.-")
        if name:
            raw.append((kind, name))
    has_province = any(kind == "tinh" for kind, _ in raw)
    units: list[Unit] = []
    for kind, name in raw:
        if kind == "thanh pho" and has_province:
            # "Thành phố Hải Dương, Tỉnh Hải Dương": a city under a province, district level.
            units.append(Unit("thành phố", title_case(name), 2))
        else:
            units.append(_unit(kind, name))
    # "tỉnh" inside a name is impossible; a bare province name after a comma ("..., Hà Nam")
    # is common in addresses: accept it when it is a known province.
    tail = text.rsplit(",", 1)[-1].strip() if "," in text else ""
    if tail and not _UNIT_RE.match(fold(tail) + " ") and normalize_province(tail):
        units.append(_unit("tinh", tail))
    return units


def _unit(kind: str, name: str) -> Unit:
    if kind in ("tinh", "thanh pho"):
        hit = normalize_province(name)
        if hit is not None:
            current_kind, current, former = hit
            return Unit(current_kind, current, 3, former)
        if kind == "tinh":
            return Unit("tỉnh", title_case(name), 3)
        # A city that is not a province was a district-level city (thành phố thuộc tỉnh).
        return Unit("thành phố", title_case(name), 2)
    return Unit(_KIND_TEXT[kind], title_case(name), _LEVEL[kind])


def _school_name(rest: str, prefix: str) -> str:
    candidate = f"{prefix} {title_case(rest)}".strip()
    for known in KNOWN_SCHOOLS:
        if _key(known) == _key(candidate):
            return known
    return candidate


def _parse_line(text: str) -> tuple[tuple[str, str] | None, list[Unit], str]:
    """One line: (canonical body and level, or None), its units, and the remaining text."""
    text = _clean(text)
    folded = fold(text)
    offset = 0
    if _match_body(folded) is None:
        # "GIÁM ĐỐC SỞ ...", "TM. ỦY BAN NHÂN DÂN": the role is not part of the body.
        stripped = _ROLE_PREFIX.match(folded)
        offset = stripped.end() if stripped else 0
    hit = _match_body(folded[offset:])
    if hit is None:
        return None, _parse_units(text), text
    canonical, level, length = hit
    rest = text[offset + length :].strip(" ,")
    if level == "school":
        return (_school_name(rest, canonical), level), [], ""
    return (canonical, level), _parse_units(rest), rest


def normalize_issuer(lines: str | Sequence[str], issued: date | None = None) -> Issuer | None:
    """Normalise an issuer from its printed lines (header block, signature block or sentence).

    Args:
        lines: one string ("Ủy ban nhân dân xã Liêm Cần, huyện Thanh Liêm, tỉnh Hà Nam") or
            the lines of a header from top to bottom (["UBND TỈNH QUẢNG NINH", "SỞ NỘI VỤ"]):
            a lower line names the body, the line above its parent.
        issued: the issue date, when known. Unused for the name (a document issued by a body
            keeps answering to its successor) but kept for callers that want to show "at the
            time"; reserved for rules that depend on it.

    Returns:
        The normalised issuer, or None when no body is recognised and no unit is named.
    """
    del issued  # see docstring
    items = [lines] if isinstance(lines, str) else [ln for ln in lines if ln.strip()]
    parsed = [_parse_line(item) for item in items]
    # Lines with units but no body continue the body above ("ỦY BAN NHÂN DÂN" / "XÃ X").
    merged: list[tuple[tuple[str, str] | None, list[Unit]]] = []
    for body, units, _rest in parsed:
        if body is None and merged and not units:
            continue
        if body is None and merged:
            prev_body, prev_units = merged[-1]
            merged[-1] = (prev_body, prev_units + units)
        else:
            merged.append((body, units))
    if not merged or all(body is None for body, _ in merged):
        units = [u for _, us in merged for u in us]
        if not units:
            return None
        return _compose(("Ủy ban nhân dân", "unit"), units, known=False)
    # The lowest line with a body is the issuer; lines above are its parents.
    index = max(i for i, (body, _) in enumerate(merged) if body is not None)
    body, units = merged[index]
    assert body is not None
    parents = merged[:index]
    for parent_body, parent_units in reversed(parents):
        top = max((u.level for u in units), default=0)
        higher = [u for u in parent_units if u.level > top]
        if body[1] in ("office",) and parent_body is not None:
            # "Phòng Đăng ký kinh doanh" under "Sở Tài chính tỉnh X".
            parent = _compose(parent_body, parent_units)
            return Issuer(
                name=f"{body[0]}, {parent.name}",
                body=body[0],
                province=parent.province,
                former_province=parent.former_province,
                defunct=parent.defunct,
                successor=f"{body[0]}, {parent.successor}",
            )
        units = units + higher
    return _compose(body, units)


def open_names(line: str) -> list[str] | None:
    """The names in one printed issuer line that no table of this module can check.

    A header line such as "UBND TỈNH THANH HÓA", "SỞ NÔNG NGHIỆP VÀ MÔI TRƯỜNG" or "CÔNG AN
    PHƯỜNG PHỦ LÝ" is made of an optional body of :data:`BODIES` followed by administrative
    units (kind + name). Bodies and provinces (current or former) are a closed vocabulary:
    compared without diacritics, spaces or punctuation, an OCR error rarely turns one into
    another. Names of lower units (communes, former districts) are open: only another reading
    of the same name can confirm them.

    Returns:
        ``[]`` when every part of the line is a known name; the open names (title case, as
        printed) otherwise; None when the line holds anything else (an unknown word, a body
        followed by text that is no unit, a province name that is not in the tables), i.e.
        nothing about it can be checked.
    """
    text = _clean(line)
    folded = fold(text)
    if not folded.strip():
        return None
    start = 0
    hit = _match_body(folded)
    if hit is not None:
        if hit[1] in ("school",):
            return None  # school names are open and have no unit structure
        start = hit[2]
    rest = text[start:].strip(" ,")
    if not rest:
        return [] if hit is not None else None
    rest_folded = fold(rest)
    matches = list(_UNIT_RE.finditer(rest_folded))
    if not matches or matches[0].start() != 0:
        return None  # words between the body and the first unit: not a known shape
    names: list[str] = []
    for i, match in enumerate(matches):
        stop = matches[i + 1].start() if i + 1 < len(matches) else len(rest)
        name = rest[match.end() : stop].strip(" ,;.-")
        if not name:
            return None
        kind = re.sub(r"\s+", " ", match.group(1))
        if kind in ("tinh", "thanh pho") and _key(name) in _PROVINCE_KEYS:
            continue
        if kind == "tinh":
            return None  # "TỈNH" + a name that is no province: a misreading
        names.append(title_case(name))
    return names


def _compose(body: tuple[str, str], units: list[Unit], known: bool = True) -> Issuer:
    canonical, level = body
    # Highest-level unit last, duplicates (same level) dropped.
    seen: set[int] = set()
    ordered: list[Unit] = []
    for unit in sorted(units, key=lambda u: u.level):
        if unit.level in seen:
            continue
        seen.add(unit.level)
        ordered.append(unit)
    province = next((u for u in ordered if u.level == 3), None)
    defunct = level == "district" or any(u.level == 2 for u in ordered)
    if level in ("central", "school"):
        name = canonical
    elif not ordered:
        name = canonical
    elif level == "province" or (len(ordered) == 1 and province is not None):
        name = f"{canonical} {', '.join(_unit_text(u, i) for i, u in enumerate(ordered))}"
    else:
        name = f"{canonical} {_chain(ordered)}"
    successor = name
    if defunct and province is not None:
        counterpart = _PROVINCIAL_COUNTERPART.get(canonical, canonical)
        successor = f"{counterpart} {province.kind} {province.name}"
    return Issuer(
        name=name,
        body=canonical,
        province=province.name if province else None,
        former_province=province.former if province else None,
        defunct=defunct,
        successor=successor,
        known=known,
    )


def _unit_text(unit: Unit, index: int) -> str:
    return unit.text if unit.level != 2 else f"{unit.text} (cũ)"


def _chain(units: list[Unit]) -> str:
    """ "xã A (huyện B cũ), tỉnh C" and "huyện B (cũ), tỉnh C": former districts marked."""
    parts: list[str] = []
    for unit in units:
        if unit.level == 2 and parts:
            parts[-1] = f"{parts[-1]} ({unit.text} cũ)"
        elif unit.level == 2:
            parts.append(f"{unit.text} (cũ)")
        else:
            parts.append(unit.text)
    return ", ".join(parts)


#: District-level offices and their provincial counterparts (the successor of a defunct body).
_PROVINCIAL_COUNTERPART = {
    "Phòng Tư pháp": "Sở Tư pháp",
    "Phòng Tài nguyên và Môi trường": "Sở Nông nghiệp và Môi trường",
    "Phòng Tài chính - Kế hoạch": "Sở Tài chính",
}


def province_names() -> Iterable[str]:
    """Every province name known, current and former (for tests and lexicons)."""
    yield from (name for _, name in CURRENT_PROVINCES)
    yield from (old for old, _ in FORMER_PROVINCES)
