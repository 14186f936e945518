"""Extract fields per document type, normalised, with a confidence and a source span.

Output, per field (DESIGN.md)::

    {"value": "...", "confidence": 0.97,
     "source": {"page": 0, "bbox": [x0, y0, x1, y1] or None, "text": "the OCR line"}}

Values are normal forms: names in title case with NFC diacritics ("Trần Thùy Uyên"), dates ISO
``YYYY-MM-DD``, sex "Nam"/"Nữ", personal identification numbers as 12 digits, document numbers
as "123/QĐ-UBND", issuers in :mod:`.issuers` normal form (merged provinces mapped, former
districts marked).

How a value is found: labels are matched on folded text (no diacritics, lower case) so that OCR
losing a diacritic on "Ngày sinh" does not lose the field, while the value keeps its own
diacritics. A value ends at the next label on the same line (OCR often joins "Giới tính: Nữ"
and "Dân tộc: Kinh") and may continue on the next line when it was wrapped.

How confident: the OCR line confidence, times how cleanly the value parsed (characters repaired
from OCR look-alikes cost some), times checks: a real calendar date, a personal identification
number whose province code exists and whose century/sex digit and year agree with the date of
birth and sex, names made of Vietnamese syllables, an issuer whose body is known. A check that
fails outright drops the confidence far below any threshold: a confident wrong value is worse
than a question. Evidence independent of OCR lifts it (noisy-or, :func:`_supported`): a header
line made only of known bodies and provinces, a commune name read the same elsewhere in the
document, "Nam"/"Nữ" read exactly, a number symbol that names the issuer, the card's MRZ
repeating a date with a valid check digit. Tesseract's line confidence averages its words, so
label noise or a faint parent line lowers it although the value itself was read right; two
readings that disagree (a place spelt otherwise elsewhere) lower it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from digitizer.pipeline.classify import Classification, ClassifyConfig, Document, as_pages, is_motto
from digitizer.pipeline.issuers import (
    BODIES as _BODY_NAMES,
)
from digitizer.pipeline.issuers import (
    Issuer,
    fold,
    normalize_issuer,
    normalize_tone_marks,
    open_names,
    province_names,
    title_case,
)
from digitizer.pipeline.ocr import OcrPage
from digitizer.services.citizens import PROVINCE_CODES

__all__ = [
    "DEFAULT_FIELD_THRESHOLDS",
    "FIELDS_BY_TYPE",
    "ExtractConfig",
    "FieldValue",
    "classify_json",
    "extract",
    "fields_to_dict",
    "parse_date",
    "parse_personal_id",
    "review_reasons",
]

NAME = "extract"
VERSION = "1"

#: The fields each type is expected to carry (a missing one sends the document to review).
#: Fields that only some variants print (the personal identification number of birth
#: certificates from before 2016) are in OPTIONAL_FIELDS.
FIELDS_BY_TYPE: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "birth_certificate": (
            "full_name", "date_of_birth", "sex", "place_of_birth", "personal_id",
            "mother_name", "father_name", "document_number", "issue_date", "issuer", "signer",
        ),
        "citizen_id": (
            "personal_id", "full_name", "date_of_birth", "sex", "place_of_birth", "issue_date",
            "valid_until", "issuer", "signer",
        ),
        "marriage_certificate": (
            "husband_name", "husband_date_of_birth", "husband_personal_id", "wife_name",
            "wife_date_of_birth", "wife_personal_id", "document_number", "issue_date", "issuer",
            "signer",
        ),
        "death_certificate": (
            "full_name", "date_of_birth", "sex", "personal_id", "date_of_death",
            "place_of_death", "document_number", "issue_date", "issuer", "signer",
        ),
        "residence_confirmation": (
            "full_name", "date_of_birth", "sex", "personal_id", "place_of_residence",
            "document_number", "issue_date", "issuer", "signer", "valid_until",
        ),
        "land_use_certificate": (
            "full_name", "personal_id", "parcel_number", "map_sheet", "area",
            "document_number", "issue_date", "issuer", "signer",
        ),
        "diploma": (
            "full_name", "date_of_birth", "place_of_birth", "document_number", "issue_date",
            "issuer", "signer",
        ),
        "decision": ("document_number", "issue_date", "issuer", "signer"),
        "official_letter": ("document_number", "issue_date", "issuer", "signer"),
        "business_registration": (
            "business_name", "document_number", "full_name", "personal_id", "issue_date",
            "issuer", "signer",
        ),
        "other": (),
    }
)  # fmt: skip
#: Fields that a type's documents may lack without being incomplete.
OPTIONAL_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "birth_certificate": frozenset({"personal_id"}),
        "citizen_id": frozenset({"place_of_birth", "signer", "valid_until"}),
        "land_use_certificate": frozenset({"personal_id"}),
    }
)

#: Per-field review thresholds tuned on OCR'd degraded scans of the training split only
#: (``python -m bench.classify --tune --split train``: 220 documents, 247 pages): the highest
#: confidence of a wrong value there plus 0.02, never below the 0.75 floor of
#: :class:`ExtractConfig`. Fields not listed had no wrong value above the floor.
DEFAULT_FIELD_THRESHOLDS: Mapping[str, float] = MappingProxyType({"place_of_birth": 0.814})


@dataclass(frozen=True)
class ExtractConfig:
    """Review thresholds per field; a value below its field's threshold goes to review."""

    threshold: float = 0.75
    per_field: Mapping[str, float] = field(default_factory=lambda: DEFAULT_FIELD_THRESHOLDS)

    def threshold_for(self, name: str) -> float:
        """The threshold of one field (role prefixes such as ``husband_`` share the base's)."""
        if name in self.per_field:
            return self.per_field[name]
        base = re.sub(r"^(husband|wife)_", "", name)
        base = "full_name" if base == "name" else base
        return self.per_field.get(base, self.threshold)


@dataclass(frozen=True)
class FieldValue:
    """One extracted value with its confidence and where it was read."""

    value: str
    confidence: float
    page: int
    bbox: tuple[int, int, int, int] | None
    text: str

    def __post_init__(self) -> None:
        # Rules add bonuses (a checksum, a consistent date); a confidence stays a probability.
        object.__setattr__(self, "confidence", min(1.0, max(0.0, float(self.confidence))))

    def to_dict(self) -> dict[str, Any]:
        """DESIGN.md's field shape."""
        return {
            "value": self.value,
            "confidence": round(self.confidence, 4),
            "source": {
                "page": self.page,
                "bbox": list(self.bbox) if self.bbox else None,
                "text": self.text,
            },
        }


def fields_to_dict(fields: Mapping[str, FieldValue]) -> dict[str, dict[str, Any]]:
    """The ``fields`` object of ``sohoa classify --json``."""
    return {name: value.to_dict() for name, value in fields.items()}


def classify_json(
    classification: Classification, fields: Mapping[str, FieldValue]
) -> dict[str, Any]:
    """DESIGN.md's ``sohoa classify FILE --json`` object: type, confidence, fields."""
    return {
        "type": classification.type,
        "confidence": round(classification.confidence, 4),
        "fields": fields_to_dict(fields),
    }


# --------------------------------------------------------------------------------------------
# Document model


@dataclass(frozen=True)
class _Line:
    page: int
    index: int  # position in the whole document
    text: str
    folded: str
    bbox: tuple[int, int, int, int] | None
    conf: float  # 0-1
    page_width: int


class _Doc:
    def __init__(self, pages: Sequence[OcrPage]) -> None:
        self.lines: list[_Line] = []
        self.page_lines: list[list[_Line]] = []
        for p, page in enumerate(pages):
            boxed = page.width > 0
            mine = []
            for ln in page.lines:
                text = " ".join(unicodedata.normalize("NFC", ln.text).split())
                # Tesseract sometimes reads Đ as the Icelandic Ð (U+00D0).
                text = text.replace("Ð", "Đ").replace("ð", "đ")
                if not text:
                    continue
                line = _Line(
                    p,
                    len(self.lines),
                    text,
                    fold(text),
                    tuple(ln.bbox) if boxed else None,  # type: ignore[arg-type]
                    max(0.0, min(1.0, ln.confidence / 100.0)),
                    page.width,
                )
                self.lines.append(line)
                mine.append(line)
            self.page_lines.append(mine)

    def after(self, line: _Line, count: int = 1) -> list[_Line]:
        return self.lines[line.index + 1 : line.index + 1 + count]


@dataclass(frozen=True)
class _Hit:
    """A raw value: its text, the line(s) it came from, and a parse-quality factor."""

    text: str
    line: _Line
    quality: float = 1.0
    extra: tuple[_Line, ...] = ()
    #: Per line (``line`` then ``extra``), how strongly something other than OCR's own
    #: confidence says the line was read right (see :func:`_supported`); default none.
    evidence: tuple[float, ...] = ()

    @property
    def conf(self) -> float:
        lines = (self.line, *self.extra)
        evidence = self.evidence + (0.0,) * (len(lines) - len(self.evidence))
        confs = [_supported(ln.conf, e) for ln, e in zip(lines, evidence, strict=False)]
        return min(confs) * self.quality

    @property
    def bbox(self) -> tuple[int, int, int, int] | None:
        boxes = [ln.bbox for ln in (self.line, *self.extra) if ln.bbox]
        if not boxes:
            return None
        return (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )

    @property
    def source_text(self) -> str:
        return "\n".join(ln.text for ln in (self.line, *self.extra))


#: Evidence that a reading is right, independent of OCR's confidence in the line: the text is
#: exactly one of a few known words or names (a body, a province, "Nam"/"Nữ"), which OCR
#: errors rarely turn into another one; or an open name (a commune) read the same a second
#: time elsewhere in the document.
_CLOSED_VOCABULARY = 0.8
_CORROBORATED = 0.8
#: A document number whose symbol is well formed ("865/QĐ-SNNMT"): the parse is right; the
#: digits have no check of their own, so this weighs little.
_WELL_FORMED = 0.2
#: ... and whose symbol names the issuer read from the header ("SNNMT" for Sở Nông nghiệp và
#: Môi trường): two regions of the page agree.
_NAMES_ISSUER = 0.35


def _supported(conf: float, evidence: float) -> float:
    """OCR confidence combined with independent evidence (noisy-or): a reading is wrong only
    when OCR erred and the check failed to notice. Tesseract's line confidence averages its
    words, so label noise ("Giới tính/Sex;: Nam") or a faint parent line of a header lowers
    it although the value was read right; a check on the value itself is the better witness.
    """
    return 1.0 - (1.0 - conf) * (1.0 - evidence)


def _value(hit: _Hit, value: str, confidence: float) -> FieldValue:
    return FieldValue(
        value, max(0.0, min(1.0, confidence)), hit.line.page, hit.bbox, hit.source_text
    )


# --------------------------------------------------------------------------------------------
# Finding labelled values

# The next label on the same line: a capitalised word, up to six more words, a colon.
_NEXT_LABEL = re.compile(
    r"\s+(?=\*?\s*(?:\d{1,2}\.\s*)?[A-ZĐÀ-Ỹ][a-zà-ỹđ]+(?:[ ,/][\w()À-ỹđĐ]+){0,6}\s?[:;])"
)
_LABEL_ANYWHERE = re.compile(r"^\s*\*?\s*(?:\d{1,2}\.\s*|[a-zđ]\)\s*)?[^\d:;]{2,48}[:;]")


def _label_re(label: str) -> re.Pattern[str]:
    # Labels are written folded with single spaces; OCR adds or drops spaces around commas.
    # OCR reads a comma as a full stop now and then ("Ngày. tháng, năm sinh").
    body = re.escape(label).replace(r"\ ", r"\s*").replace(",", "[,.]?")
    body = body.replace(r"\/", r"\s*/\s*")
    if "/" not in label:
        # Cards gloss labels in English ("Họ và tên/Full name:"); the gloss is small print,
        # often misread ("Eull name", "Date ofbirth"): the Vietnamese label is what counts.
        body += r"(?:\s*/\s*[a-z][a-z .,']{1,30}?)?"
    # The colon is small and often read with a speck as two marks ("Giới tính/Sex;: Nam").
    return re.compile(r"(?:^|(?<=[\s(*.\d/]))" + body + r"\s*[:;][:;.,']?\s*")


_LABEL_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(label: str) -> re.Pattern[str]:
    pattern = _LABEL_CACHE.get(label)
    if pattern is None:
        pattern = _LABEL_CACHE[label] = _label_re(label)
    return pattern


def _cut_at_next_label(text: str) -> str:
    match = _NEXT_LABEL.search(text)
    return text[: match.start()] if match else text


def _is_label_line(line: _Line) -> bool:
    return bool(_LABEL_ANYWHERE.match(line.text))


def _continues(doc: _Doc, line: _Line, nxt: _Line, value: str) -> bool:
    """Whether ``nxt`` carries on ``value``, wrapped from ``line``."""
    if nxt.page != line.page or _is_label_line(nxt) or is_motto(nxt.text):
        return False
    if len(nxt.text) > 40 or _role_at(nxt) is not None:
        return False
    if nxt.text.isupper() and not value.isupper():
        return False  # a heading or a signature role, not the rest of a mixed-case value
    if line.bbox and nxt.bbox:
        page = doc.page_lines[line.page]
        right = max((ln.bbox[2] for ln in page if ln.bbox), default=0)
        width = line.page_width or right
        # Wrapped: the next line's first word would not have fitted after this line's end.
        first_word = nxt.text.split()[0]
        word_px = (nxt.bbox[2] - nxt.bbox[0]) * (len(first_word) + 1) / max(len(nxt.text), 1)
        near_margin = line.bbox[2] + word_px >= right - 0.01 * width
        same_start = (
            abs(nxt.bbox[0] - _value_x(line)) < 0.04 * width
            or abs(nxt.bbox[0] - line.bbox[0]) < 0.03 * width
        )
        # Centres, not edges: boxes of slightly rotated lines are tall and overlap.
        height = line.bbox[3] - line.bbox[1]
        below = (nxt.bbox[1] + nxt.bbox[3]) > (line.bbox[1] + line.bbox[3]) and (
            nxt.bbox[1] - line.bbox[3] < 1.5 * height
        )
        return near_margin and same_start and below
    return len(line.text) >= 55


def _value_x(line: _Line) -> int:
    return line.bbox[0] if line.bbox else 0


def _find(
    doc: _Doc,
    labels: Sequence[str],
    *,
    lines: Sequence[_Line] | None = None,
    wrap: bool = False,
    next_line: bool = True,
    cut: bool = True,
) -> _Hit | None:
    """The value after the first of ``labels`` (folded) found in ``lines`` (default: all)."""
    for line in lines if lines is not None else doc.lines:
        for label in labels:
            match = _compiled(label).search(line.folded)
            if not match:
                continue
            rest = line.text[match.end() :]
            value = _cut_at_next_label(rest) if cut else rest
            value = value.strip(" .;,")
            if not value:
                if not next_line:
                    continue
                following = doc.after(line)
                if not following or _is_label_line(following[0]):
                    continue
                nxt = following[0]
                text = _cut_at_next_label(nxt.text) if cut else nxt.text
                return _Hit(text.strip(" .;,"), nxt, 1.0, (line,))
            hit = _Hit(value, line)
            if wrap and value == rest.strip(" .;,"):
                extra: list[_Line] = []
                current = line
                for nxt in doc.after(line, 2):
                    if not _continues(doc, current, nxt, value):
                        break
                    extra.append(nxt)
                    current = nxt
                if extra:
                    # Keep the wrapped line's own punctuation ("Phường X," / "Tỉnh Y").
                    joined = " ".join([rest.strip(" ;"), *(e.text for e in extra)])
                    joined = joined.strip(" .;,")
                    hit = _Hit(joined, line, 1.0, tuple(extra))
            return hit
    return None


def _section(doc: _Doc, start: Sequence[str], end: Sequence[str] = ()) -> list[_Line]:
    """Lines after a heading matching ``start`` up to one matching ``end`` (folded prefixes)."""
    out: list[_Line] = []
    inside = False
    for line in doc.lines:
        head = line.folded.strip(" :*-")
        if not inside and any(head.startswith(s) for s in start):
            inside = True
            continue
        if inside and any(head.startswith(e) for e in end):
            break
        if inside:
            out.append(line)
    return out


# --------------------------------------------------------------------------------------------
# Value parsers

_DIGIT_FIX = str.maketrans(
    {
        "O": "0",
        "o": "0",
        "D": "0",
        "Q": "0",
        "l": "1",
        "I": "1",
        "|": "1",
        "i": "1",
        "!": "1",
        "S": "5",
        "s": "5",
        "B": "8",
        "Z": "2",
        "z": "2",
        "g": "9",
        "G": "6",
        "T": "7",
    }
)


def _digits(token: str) -> tuple[str, int]:
    """Repair OCR look-alikes in a token that must be digits; returns (digits, repairs)."""
    fixed = token.translate(_DIGIT_FIX)
    repairs = sum(1 for a, b in zip(token, fixed, strict=True) if a != b)
    return fixed, repairs


# Patterns run on folded (lower-case) text: o, i, l and | may be OCR'd digits.
_DATE_NUMERIC = re.compile(
    r"(?<![\w/])([0-9oil|]{1,2})\s*[/.\-]\s*([0-9oil|]{1,2})\s*[/.\-]\s*([0-9oil|]{4})(?![\w/])"
)
_DATE_WORDS = re.compile(
    r"(?:ng[a-z]{1,2}y\s*)?([0-9oil|]{1,2})\s*(?:th[a-z]ng|/)\s*([0-9oil|]{1,2})\s*(?:n[a-z]m|/)\s*"
    r"([0-9oil|]{4})"
)
# A slash read as I, l or 1 ("27I03/2025", "2210812040"): two-digit day and month only.
_DATE_BROKEN = re.compile(
    r"(?<![0-9])([0-9o]{2})(?:[/.\-]|[il|1]{1,2})([0-9o]{2})(?:[/.\-]|[il|1]{1,2})([0-9o]{4})(?![0-9])"
)


# One separator lost altogether, the other read ("0710/1970"): day and month of two digits.
_DATE_JOINED = re.compile(
    r"(?<![0-9/])([0-9o]{2})(?:([0-9o]{2})/|/([0-9o]{2}))([0-9o]{4})(?![0-9/])"
)
#: A date whose separator had to be assumed: the digits may be right, but nothing on the line
#: says where day and month end; only a second reading (the card's MRZ) can confirm it.
_JOINED = 0.4


def parse_date(text: str) -> tuple[date, float] | None:
    """The first date in ``text`` and a quality factor (1.0 clean, less when repaired).

    Accepts "09/06/2025", "9-6-2025", "09.06.2025", "ngày 09 tháng 6 năm 2025",
    "ngày 9/6/2025", with O/l/I read for 0/1 (quality 0.85 per repair).
    """
    folded = fold(text)
    for pattern in (_DATE_WORDS, _DATE_NUMERIC, _DATE_BROKEN):
        for match in pattern.finditer(folded):
            parts = [match.group(i) for i in (1, 2, 3)]
            fixed = [_digits(p) for p in parts]
            if not all(f.isdigit() for f, _ in fixed):
                continue
            repairs = sum(r for _, r in fixed)
            day, month, year = (int(f) for f, _ in fixed)
            try:
                value = date(year, month, day)
            except ValueError:
                continue
            if not 1880 <= year <= 2100:
                continue
            if pattern is _DATE_BROKEN and not re.search(r"\d[/.\-]\d", match.group(0)[1:-1]):
                return value, 0.5 * 0.85**repairs  # both separators guessed
            if pattern is _DATE_BROKEN:
                return value, 0.6 * 0.85**repairs
            return value, 0.85**repairs
    for match in _DATE_JOINED.finditer(folded):
        day_text, month_text = match.group(1), match.group(2) or match.group(3)
        fixed = [_digits(p) for p in (day_text, month_text, match.group(4))]
        if not all(f.isdigit() for f, _ in fixed):
            continue
        day, month, year = (int(f) for f, _ in fixed)
        try:
            value = date(year, month, day)
        except ValueError:
            continue
        if 1880 <= year <= 2100:
            return value, _JOINED * 0.85 ** sum(r for _, r in fixed)
    return None


_PID = re.compile(r"(?<![\w])([0-9OoIl|SBZ][0-9OoIl|SBZ ]{10,16}[0-9OoIl|SBZ])(?![\w])")


def parse_personal_id(text: str) -> tuple[str, float] | None:
    """A 12-digit personal identification number in ``text`` and a quality factor.

    Spaces inside ("001 090 012345") are dropped; O/l/I/S/B read for digits are repaired at a
    cost. The province code must be one of :data:`PROVINCE_CODES`.
    """
    for match in _PID.finditer(text):
        raw = match.group(1).replace(" ", "")
        if len(raw) != 12:
            continue
        digits, repairs = _digits(raw)
        if not digits.isdigit():
            continue
        if digits[:3] not in PROVINCE_CODES:
            return digits, 0.2  # structure broken: certainly review
        return digits, 0.8**repairs
    return None


def pid_consistency(pid: str, born: date | None, sex: str | None) -> float:
    """How well a number's century/sex digit and year agree with a birth date and sex.

    Returns 1.0 when they agree, 0.9 when unknown, 0.15 when they contradict.
    """
    digit, year = int(pid[3]), int(pid[4:6])
    century = 1900 + (digit // 2) * 100
    factor = 0.9
    if born is not None:
        if born.year != century + year:
            return 0.15
        factor = 1.0
    if sex is not None:
        female = digit % 2 == 1
        if female != (sex == "Nữ"):
            return 0.15
    return factor


_ONSETS = (
    "ngh",
    "ng",
    "nh",
    "ch",
    "gh",
    "gi",
    "kh",
    "ph",
    "qu",
    "th",
    "tr",
    "b",
    "c",
    "d",
    "g",
    "h",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "x",
)
_SYLLABLE = re.compile(r"^(?:" + "|".join(_ONSETS) + r")?(?:[aeiouy]{1,3})(?:ch|ng|nh|[cmnpt])?$")


def _is_syllable(word: str) -> bool:
    nfd = unicodedata.normalize("NFD", word.lower())
    tones = sum(1 for ch in nfd if ch in "\u0300\u0301\u0303\u0309\u0323")
    if tones > 1:
        return False
    return bool(_SYLLABLE.match(fold(word)))


#: Common family names. OCR of capitals loses or changes diacritics ("NGUYÊN" for "NGUYỄN",
#: "ĐỈNH" for "ĐINH"); a family name that is not here but folds to exactly one that is, is
#: read as that one.
SURNAMES = frozenset(
    """Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý Đinh Trương Lương
    Mai Tạ Lâm Quách Kiều Cao Đoàn Đào Trịnh Hà Lưu Tô Thái Tăng Châu Phùng Triệu Nghiêm Mạc
    Hứa Từ Khúc La Lục Vương Chu Doãn Thân Văn Giang Kim Âu Diệp Đàm Tôn Khổng Hàn Ông Vi Lại
    Mạnh Thạch Ninh Quan Tiêu Lò Bạch Hồng Tống Khương Đồng Phí Nông Sầm Lỗ Cù Đường Mã Lạc
    Viên Hầu Quản Lã Thiều Ung Uông Bế Đới Khuất Nhâm""".split()
)
#: Common middle and given names (the same use: snap when the folded form is unambiguous).
GIVEN_NAMES = frozenset(
    """Văn Thị Hữu Đức Minh Quốc Thanh Xuân Gia Bảo Trọng Ngọc Thu Thùy Hoài Diệu Khánh Phương
    Công Đình Duy Hồng Kim Mạnh Thế Tuấn Quang Anh Thành Tiến Trung Hoàng Huy Hải Nhật Đăng
    Phúc Tấn Như Bích Mỹ Lan Hương Thảo Mai Linh Trang Hà Hằng Hạnh Hiền Hoa Huyền Hường Lệ
    Loan Nga Ngân Nguyệt Nhung Oanh Phượng Quyên Quỳnh Tâm Thắm Thoa Thúy Thủy Trâm Uyên Vân
    Vy Yến Ánh Châu Duyên Giang Diệp Dung Dương Đào Điệp Hạ Hân Hậu Khuê Liên Liễu Ly My Nhi
    Nhàn Nhiên Quế Sương Tiên Trinh Tú Tuyết Vi An Bình Cường Dũng Đạt Đông Hiếu Hùng Khoa
    Khải Long Nam Quân Sơn Thắng Trí Việt Vĩnh Lộc Bách Chiến Cương Danh Dân Định Giáp Hào
    Hiệp Hiển Hòa Hoan Học Hợp Hưng Khang Khôi Kiên Lâm Lực Luân Lượng Nghĩa Nguyên Nhân Phong
    Phát Phú Quý Sang Sinh Tài Tân Thái Thạch Thiện Thịnh Thông Toàn Trường Tùng Tường Vinh Vũ
    Kha Ngôn Sỹ Tín Triều Trực Uy Vương Khiêm Thiên Thư Thương Thục Trà Trúc Ngà Lành Lụa Mơ
    Mận Cúc Huệ Hoàn Hiên Phi Phước Thuận Toản Tuệ Vỹ Ý Ỷ Yên Hưởng Lương Lý Đoan Đan Đại
    Điền Đoàn Giao Khuyên Liêm Luyến Nhạn Nhã Nương Phụng Quyết Tạo""".split()
)
_SNAPPED = 0.92  # a syllable read as the only name it can be
_AMBIGUOUS = 0.5  # unknown syllable that folds to several names: a person must read it
_UNKNOWN = 0.85  # a rare name: plausible, a little less sure
#: A rare syllable one letter away from a common name ("VẾN" beside "YẾN", "GLANG" beside
#: "GIANG"): more often a misreading of the common name than a rare name.
_NEAR_KNOWN = 0.6


def _lexicon_index(words: frozenset[str]) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for word in sorted(words):
        index.setdefault(fold(word), []).append(word)
    return index


_SURNAME_INDEX = _lexicon_index(SURNAMES)
_GIVEN_INDEX = _lexicon_index(GIVEN_NAMES | SURNAMES)


def _snap_name(words: list[str]) -> tuple[list[str], float]:
    """Check each syllable of a title-cased name against the lexicons; snap OCR slips."""
    out, quality = [], 1.0
    for position, word in enumerate(words):
        lexicon = SURNAMES if position == 0 else GIVEN_NAMES | SURNAMES
        if word in lexicon:
            out.append(word)
            continue
        index = _SURNAME_INDEX if position == 0 else _GIVEN_INDEX
        candidates = index.get(fold(word), [])
        if len(candidates) == 1:
            out.append(candidates[0])
            quality *= _SNAPPED
        elif candidates:
            out.append(word)
            quality *= _AMBIGUOUS
        else:
            out.append(word)
            near = _near_known(fold(word), index)
            quality *= _NEAR_KNOWN if near else _UNKNOWN
    return out, quality


def _near_known(folded: str, index: Mapping[str, list[str]]) -> bool:
    """Whether a folded syllable is one edit from a folded name of ``index``."""
    if len(folded) < 3:
        return False  # two letters are one edit from half the lexicon: no information
    return (
        process.extractOne(folded, index.keys(), scorer=Levenshtein.distance, score_cutoff=1)
        is not None
    )


def parse_name(text: str) -> tuple[str, float] | None:
    """A personal name in title case, and a quality factor (syllables that are not Vietnamese
    cost a lot: "NGUYỄN VĂN A8" is an OCR error, not a name). Syllables are checked against
    common names: a slip that can only be one name is corrected ("NGUYÊN" -> "Nguyễn") at a
    small cost, one that could be several is kept and doubted."""
    text = unicodedata.normalize("NFC", text)
    # Specks OCR'd as punctuation before or after the name ("_' ĐINH PHƯƠNG CHÂU").
    text = re.sub(r"^[\W_]+|_", " ", text).strip()
    text = re.split(r"[,;(]|\s+-\s+|\bsinh\b|\bnăm sinh\b", text, maxsplit=1)[0]
    words = [w for w in re.split(r"\s+", text.strip(" .:*")) if w]
    if not 2 <= len(words) <= 6:
        return None
    if any(not w.isalpha() for w in words):
        return None
    good = sum(_is_syllable(w) for w in words)
    if good != len(words):
        return title_case(" ".join(words)), 0.3
    snapped, quality = _snap_name(title_case(" ".join(words)).split())
    if snapped[-1] in _MIDDLE_ONLY:
        quality *= 0.3  # "Hoàng Thị": a middle name never ends a name; the rest was lost
    return " ".join(snapped), quality


#: Middle names that mark sex and never stand as a given name.
_MIDDLE_ONLY = frozenset({"Thị", "Văn"})


def _sex(text: str) -> tuple[str, float] | None:
    folded = fold(text).strip(" .:;")
    word = folded.split()[0] if folded.split() else ""
    if word in ("nam", "male", "m"):
        return "Nam", 1.0 if word == "nam" else 0.9
    if word in ("nu", "female", "f"):
        return "Nữ", 1.0 if word == "nu" else 0.9
    return None


#: Tesseract reads the Đ of a symbol as "ĐÐ" now and then: a known artefact, undone.
_DOUBLED_D = 0.9
_SYMBOL_FIX = {"QD": "QĐ", "HDND": "HĐND", "NQ": "NQ", "TLKS": "TLKS"}
_DOC_NUMBER = re.compile(
    r"([0-9OoIl|SBZ]{1,6})\s*((?:/\s*[0-9A-ZĐa-zđ]{1,12}\s*)*(?:[-–]\s*[0-9A-ZĐa-zđ]{1,10}\s*)*)"
)


def parse_document_number(text: str) -> tuple[str, float] | None:
    """ "Số: 123/QĐ-UBND" -> "123/QĐ-UBND"; a bare "Số: 45" -> "45"."""
    text = re.sub(r"(?i)^\s*s[ốoóồôỗ6]\s*[:;.]?\s*", "", text.strip())
    match = _DOC_NUMBER.match(text)
    if not match:
        return None
    number, repairs = _digits(match.group(1))
    if not number.isdigit() or not re.search(r"\d", match.group(1)):
        return None
    quality = 1.0
    if re.match(r"[^\s.,;]", text[match.start() + len(match.group(0).rstrip()) :]):
        quality *= 0.4  # the number goes on with characters no parse explains: read it again
    symbol = re.sub(r"\s+", "", match.group(2)).replace("–", "-").upper()
    if "ĐĐ" in symbol:  # one Đ read twice (Đ and Ð)
        symbol = symbol.replace("ĐĐ", "Đ")
        quality *= _DOUBLED_D
    quality *= 0.85**repairs
    parts = re.split(r"([/-])", symbol)
    fixed_parts = []
    for part in parts:
        if part in _SYMBOL_FIX:
            quality *= 0.9 if _SYMBOL_FIX[part] != part else 1.0
            part = _SYMBOL_FIX[part]
        fixed_parts.append(part)
    symbol = "".join(fixed_parts)
    if symbol and not re.fullmatch(r"(?:/[0-9A-ZĐ]+)+(?:-[0-9A-ZĐ]+)*", symbol):
        quality *= 0.4
    return number + symbol, quality


def _clean_text(text: str) -> str:
    text = " ".join(unicodedata.normalize("NFC", text).split()).strip(" .;,:")
    text = re.sub(r"\s+,", ",", text)
    return normalize_tone_marks(text)


_PROVINCE_IN_PLACE = re.compile(r"\b(Tỉnh|Thành phố|tỉnh|thành phố|TỈNH|THÀNH PHỐ)\s+([^,]+)")
_ALL_PROVINCES = _lexicon_index(frozenset(province_names()))


#: Words of enterprise names ("CÔNG TY TNHH THƯƠNG MẠI VÀ DỊCH VỤ ..."), checked like names.
BUSINESS_WORDS = frozenset(
    """CÔNG TY TNHH CỔ PHẦN MỘT HAI THÀNH VIÊN DỊCH VỤ XÂY DỰNG THƯƠNG MẠI VÀ NGHỆ SẢN XUẤT
    ĐẦU TƯ PHÁT TRIỂN VẬN TẢI DU LỊCH XUẤT NHẬP KHẨU TẬP ĐOÀN HỢP TÁC XÃ DOANH NGHIỆP TƯ NHÂN
    KỸ THUẬT GIÁO DỤC TƯ VẤN THIẾT KẾ TRUYỀN THÔNG QUẢNG CÁO THỰC PHẨM NÔNG SẢN BẤT ĐỘNG SẢN
    CHI NHÁNH HỘ KINH DOANH""".split()
)
_BUSINESS_INDEX = _lexicon_index(
    BUSINESS_WORDS | frozenset(w.upper() for w in GIVEN_NAMES | SURNAMES)
)


def _business_name(text: str) -> tuple[str, float]:
    """An enterprise name in capitals, each word checked against business words and names
    (capitals lose diacritics in OCR: "VA" is "VÀ", "TIEN" could be "TIẾN" or "TIÊN")."""
    words, quality = _clean_text(text).upper().split(), 1.0
    out = []
    for word in words:
        if word in BUSINESS_WORDS or not word.isalpha() or word.title() in GIVEN_NAMES | SURNAMES:
            out.append(word)
            continue
        candidates = _BUSINESS_INDEX.get(fold(word), [])
        if len(candidates) == 1:
            out.append(candidates[0].upper())
            quality *= _SNAPPED
        else:
            out.append(word)
            # Enterprise names are full of ordinary words no lexicon lists: only a word that
            # could be several known ones is doubted hard.
            quality *= _AMBIGUOUS if candidates else 0.97
    return " ".join(out), quality


_UNIT_NAME = re.compile(
    r"\b(?:Phường|Xã|Thị trấn|Đặc khu|Quận|Huyện|Thị xã|phường|xã|thị trấn|đặc khu|quận|huyện|"
    r"thị xã)\s+([^,]+)"
)


def _place_readings(doc: _Doc, value: str, hit: _Hit) -> float:
    """Another reading of the same unit names in the document (an address repeating the
    commune): read with other diacritics ("Phường Hài An" here, "Phường Hải An" there) and
    never the same, the two readings disagree and a person must choose (0.5); otherwise 1."""
    skip = {ln.index for ln in (hit.line, *hit.extra)}
    for match in _UNIT_NAME.finditer(value):
        name = match.group(1).strip()
        key = fold(name)
        pattern = re.compile(r"(?<!\w)" + re.escape(key) + r"(?!\w)")
        wanted = normalize_tone_marks(name).lower()
        same = other = False
        for line in doc.lines:
            if line.index in skip:
                continue
            for found in pattern.finditer(line.folded):
                text = line.text[found.start() : found.end()]
                if normalize_tone_marks(text).lower() == wanted:
                    same = True
                else:
                    other = True
        if other and not same:
            return 0.5
    return 1.0


#: Address words, restored like province names ("Tố dân phố" -> "Tổ dân phố").
_ADDRESS_WORDS = _lexicon_index(
    frozenset({"Tổ dân phố", "Thôn", "Số", "đường", "phố", "Phường", "Xã", "Đặc khu", "Ấp"})
)


def _place(text: str) -> tuple[str, float]:
    """An address or place as printed, with province names' diacritics checked.

    A province name OCR'd with a wrong diacritic ("Tỉnh Đông Nai") is restored when it folds to
    exactly one province; the value keeps its wording otherwise.
    """
    text = _clean_text(text)
    quality = 1.0

    def fix(match: re.Match[str]) -> str:
        nonlocal quality
        name = match.group(2).strip()
        candidates = _ALL_PROVINCES.get(fold(name), [])
        if name in candidates or not candidates:
            return match.group(0)
        if len(candidates) == 1:
            quality *= _SNAPPED
            return f"{match.group(1)} {candidates[0]}"
        quality *= _AMBIGUOUS
        return match.group(0)

    text = _PROVINCE_IN_PLACE.sub(fix, text)
    parts = []
    for part in text.split(", "):
        # The leading address word(s) of each part ("Tổ dân phố", "Thôn", "Phường"), compared
        # without diacritics: "Tố dân phố" and "Tổ đân phố" are OCR slips of one word.
        words = part.split(" ")
        for size in (3, 2, 1):
            head = " ".join(words[:size])
            candidates = _ADDRESS_WORDS.get(fold(head), [])
            if len(candidates) == 1:
                if candidates[0] != head:
                    part = " ".join([candidates[0], *words[size:]])
                    quality *= _SNAPPED
                break
        parts.append(part)
    return ", ".join(parts), quality


# --------------------------------------------------------------------------------------------
# Field finders shared by types

_LABELS: dict[str, tuple[str, ...]] = {
    "full_name": ("ho, chu dem, ten", "ho, chu dem va ten", "ho va ten", "ho ten",
                  "ho, chu dem va ten/full name", "ho va ten/full name"),
    "date_of_birth": ("ngay, thang, nam sinh", "ngay sinh", "sinh ngay",
                      "ngay, thang, nam sinh/date of birth", "ngay sinh/date of birth"),
    "sex": ("gioi tinh", "gioi tinh/sex"),
    "personal_id": ("so dinh danh ca nhan", "so dinh danh ca nhan/personal identification number",
                    "so/no.", "so giay to phap ly cua ca nhan", "so can cuoc cong dan"),
    "mother_name": ("ho, chu dem, ten nguoi me", "ho va ten me", "ho ten me"),
    "father_name": ("ho, chu dem, ten nguoi cha", "ho va ten cha", "ho ten cha"),
    "place_of_birth": ("noi sinh", "tai"),
}  # fmt: skip


def _name_field(
    doc: _Doc, labels: Sequence[str], lines: Sequence[_Line] | None = None
) -> tuple[_Hit, str, float] | None:
    hit = _find(doc, labels, lines=lines)
    if hit is None:
        return None
    hit = _same_row_rest(doc, hit)
    parsed = parse_name(hit.text)
    if parsed is None:
        return None
    return hit, parsed[0], parsed[1]


def _same_row_rest(doc: _Doc, hit: _Hit) -> _Hit:
    """A value whose printed line OCR split in two boxes at a wide gap ("Họ, chữ đệm, tên:
    HOÀNG THỊ" | "TRANG"): the next box on the same row, just right of this one, that is no
    label, carries on the value."""
    line = hit.line
    following = doc.after(line)
    if hit.extra or not following or line.bbox is None:
        return hit
    nxt = following[0]
    if nxt.page != line.page or nxt.bbox is None or _is_label_line(nxt):
        return hit
    centre = (nxt.bbox[1] + nxt.bbox[3]) / 2
    gap = nxt.bbox[0] - line.bbox[2]
    same_row = line.bbox[1] < centre < line.bbox[3]
    if not same_row or not 0 <= gap < 0.08 * (line.page_width or line.bbox[2]):
        return hit
    if hit.text.isupper() != nxt.text.isupper():
        return hit
    return _Hit(f"{hit.text} {nxt.text.strip()}", line, hit.quality, (nxt,))


def _date_field(
    doc: _Doc, labels: Sequence[str], lines: Sequence[_Line] | None = None
) -> tuple[_Hit, date, float] | None:
    hit = _find(doc, labels, lines=lines, cut=False)
    if hit is None:
        return None
    parsed = parse_date(hit.text)
    if parsed is None:
        return None
    return hit, parsed[0], parsed[1]


_DATE_LINE = re.compile(r"(?:^|\s)([^:;,/]{2,45}),\s*ng[a-z]{1,2}y\s*[0-9oil|]{1,2}\s*th[a-z]ng")
_MOTTO_START = re.compile(r"\s*(?:cong hoa xa hoi|doc lap\s*-)")


def _date_line(doc: _Doc) -> tuple[_Hit, date, float] | None:
    """The place-and-date line ("Diên Khánh, ngày 12 tháng 12 năm 2025")."""
    for line in doc.lines:
        if _DATE_LINE.search(line.folded):
            parsed = parse_date(line.text)
            if parsed:
                return _Hit(line.text, line), parsed[0], parsed[1]
    return None


def _number_line(doc: _Doc) -> tuple[_Hit, str, float] | None:
    """The "Số: ..." line of the header."""
    for line in doc.lines[:30]:
        if re.match(r"^\s*so\s*[:;.]\s*[0-9ooil|]", line.folded):
            parsed = parse_document_number(line.text)
            if parsed:
                return _Hit(line.text, line), parsed[0], parsed[1]
    return None


_ROLE_PREFIX = re.compile(r"^(?:tm|kt|q|tl|tuq)\.\s")
_ROLE = re.compile(
    r"(?:^|(?<=[\s:;]))((?:(?:tm|kt|q|tl|tuq)\.\s*)?(?:pho\s+)?(?:chu tich|g[il]am doc|"
    r"truong phong|hieu truong|truong cong an|cuc truong|nguoi ky giay khai sinh)\b|"
    r"quan ly hanh chinh ve trat tu xa hoi$)"
)


def _role_at(line: _Line) -> int | None:
    """Where a signature role starts on the line ("KT. CHỦ TỊCH"; also after "Nơi nhận:" or a
    recipient when the text was read row by row), or None. Roles are printed in capitals."""
    for match in _ROLE.finditer(line.folded):
        rest = line.text[match.start(1) :].strip(" .")
        if rest.isupper() and (match.start(1) == 0 or len(rest) <= 40):
            return match.start(1)
    return None


def _role_lines(doc: _Doc) -> list[_Line]:
    return [ln for ln in doc.lines if _role_at(ln) is not None]


def _signer(doc: _Doc) -> tuple[_Hit, str, float] | None:
    """The name under the last signature role ("CHỦ TỊCH", "KT. GIÁM ĐỐC", ...)."""
    roles = _role_lines(doc)
    if not roles:
        return None
    last = roles[-1]
    for nxt in doc.after(last, 5):
        if nxt.page != last.page or _role_at(nxt) is not None:
            continue
        if re.search(r"\(.*\)", nxt.text) or _is_label_line(nxt):
            continue
        parsed = parse_name(nxt.text)
        if parsed is None or len(nxt.text.split()) > 5:
            continue
        if last.bbox and nxt.bbox:
            centre = (last.bbox[0] + last.bbox[2]) / 2
            if not nxt.bbox[0] - 0.1 * nxt.page_width < centre < nxt.bbox[2] + 0.1 * nxt.page_width:
                continue
        return _Hit(nxt.text, nxt), parsed[0], parsed[1]
    return None


def _header_office(doc: _Doc) -> tuple[_Hit, Issuer, bool] | None:
    """The issuing office of a Decree 30 header: the lines above "Số:", left of the motto.

    Returns the hit, the issuer, and whether the header names a commune that other lines of
    the document (not the date line) confirm, every other header line being known names.
    """
    first = doc.page_lines[0] if doc.page_lines else []
    office: list[_Line] = []
    texts: list[str] = []
    garbled = False
    for line in first[:12]:
        if re.match(r"^\s*so\s*[:;.]", line.folded) or _DATE_LINE.search(line.folded):
            break
        if line.bbox and line.page_width and line.bbox[0] > 0.45 * line.page_width:
            continue  # right column
        # Text read row by row puts the motto on the office's line: keep the left part.
        cut = _MOTTO_START.search(line.folded)
        text = line.text[: cut.start()].strip() if cut else line.text
        if not text or is_motto(text):
            continue
        if not text.isupper():
            # Specks and broken words in the header zone: a line of the office may be lost.
            garbled = garbled or sum(ch.isalpha() for ch in text) >= 4
            continue
        if not _starts_with_body_or_unit(text):
            garbled = True  # "CỔNG PHƯƠNG AN": a misread line, not an office
        office.append(line)
        texts.append(text)
    office, texts = office[:3], texts[:3]
    if not office:
        return None
    issuer = normalize_issuer(texts)
    if issuer is None:
        return None
    quality = 0.5 if garbled else 1.0
    if len(texts) == 1 and issuer.body != "Bộ Công an":
        # Offices print two lines (parent over issuer, or "ỦY BAN NHÂN DÂN" over its unit): one
        # line alone is usually the parent of a line OCR lost.
        quality *= 0.6
    if re.match(r"^\s*ubnd\b", fold(texts[-1])):
        # Decree 30 abbreviates only the parent ("UBND TỈNH X" over "SỞ Y"): the issuer's own
        # line is missing.
        quality *= 0.4
    spelt = _with_place_spelling(doc, issuer)
    evidence: tuple[float, ...] = ()
    confirmed = False
    if spelt == issuer:
        # When the date line spells the unit otherwise, the two readings disagree: OCR's
        # confidence alone speaks for the value.
        evidence = tuple(_header_evidence(doc, text, office) for text in texts)
        confirmed = _communes_confirmed(doc, texts, office)
    hit = _Hit(" ".join(texts), office[0], quality, tuple(office[1:]), evidence)
    return hit, spelt, confirmed


def _communes_confirmed(doc: _Doc, texts: Sequence[str], header: Sequence[_Line]) -> bool:
    """Whether the header names a commune ("CÔNG AN XÃ KRÔNG PẮC") read the same on other
    lines than the date line ("Công an Xã Krông Pắc xác nhận:", an address), every other part
    of the header being known names: then a date line naming another place ("Krông Đắc,
    ngày ...") is the misreading, not the header."""
    found = _date_line(doc)
    skip = [*header, found[0].line] if found else list(header)
    names = [open_names(text) for text in texts]
    if any(n is None for n in names):
        return False
    flat = [name for line_names in names if line_names for name in line_names]
    return bool(flat) and all(_read_elsewhere(doc, name, skip) for name in flat)


def _header_evidence(doc: _Doc, text: str, header: Sequence[_Line]) -> float:
    """How far a header line is confirmed apart from OCR: a line made only of known names
    (body, province) is; one that also names a commune is when that name is read the same,
    diacritics included, on another line of the document (the date line "Phủ Lý, ngày ...",
    "Công an Phường Phủ Lý xác nhận:")."""
    names = open_names(text)
    if names is None:
        return 0.0
    if not names:
        return _CLOSED_VOCABULARY
    if all(_read_elsewhere(doc, name, header) for name in names):
        return _CORROBORATED
    return 0.0


def _read_elsewhere(doc: _Doc, name: str, skip: Sequence[_Line]) -> bool:
    """Whether ``name`` appears, as whole words with the same diacritics (case aside), on a
    line of the document other than ``skip``."""
    wanted = normalize_tone_marks(name).lower()
    pattern = re.compile(r"(?<!\w)" + re.escape(wanted) + r"(?!\w)")
    skipped = {ln.index for ln in skip}
    return any(
        ln.index not in skipped and pattern.search(normalize_tone_marks(ln.text).lower())
        for ln in doc.lines
    )


def _starts_with_body_or_unit(text: str) -> bool:
    folded = fold(text).strip()
    if re.match(r"^(ubnd|tm\.|kt\.)", folded):
        return True
    if any(folded.startswith(key) for key, _c, _l in _BODY_NAMES):
        return True
    return bool(
        re.match(r"^(tinh|thanh pho|huyen|quan|thi xa|thi tran|xa|phuong|dac khu)\b", folded)
    )


def _place_agrees(doc: _Doc, issuer: Issuer) -> bool | None:
    """Whether the date line's place ("Vinh Hưng, ngày ...") is one of the issuer's units: it
    is, in Decree 30 documents. None when there is no date line."""
    found = _date_line(doc)
    if found is None:
        return None
    match = _DATE_LINE.search(found[0].line.folded)
    if match is None:
        return None
    place = re.sub(r"[^a-z0-9]", "", match.group(1))
    names = [issuer.name, issuer.former_province or "", issuer.province or ""]
    return any(place and place in re.sub(r"[^a-z0-9]", "", fold(n)) for n in names)


def _with_place_spelling(doc: _Doc, issuer: Issuer) -> Issuer:
    """Spell the issuer's own unit as the date line does ("Biên Hòa, ngày ..."): mixed case
    is read more reliably than the capitals of the header."""
    found = _date_line(doc)
    if found is None:
        return issuer
    match = _DATE_LINE.search(found[0].line.folded)
    if match is None:
        return issuer
    place = found[0].line.text[match.start(1) : match.end(1)].strip()
    place_key = fold(place)
    words = issuer.name.split(",")[0].split()
    for size in range(min(6, len(words)), 0, -1):
        for start in range(len(words) - size + 1):
            chunk = " ".join(words[start : start + size])
            if fold(chunk) == place_key and chunk != place:
                head = issuer.name.split(",")[0].replace(chunk, place, 1)
                rest = issuer.name[len(issuer.name.split(",")[0]) :]
                return Issuer(
                    head + rest,
                    issuer.body,
                    issuer.province,
                    issuer.former_province,
                    issuer.defunct,
                    issuer.successor,
                    issuer.known,
                )
    return issuer


def _issuer_value(hit: _Hit, issuer: Issuer) -> FieldValue:
    quality = 1.0 if issuer.known else 0.5
    return _value(hit, issuer.name, hit.conf * quality)


def _registry_issuer(doc: _Doc, labels: Sequence[str]) -> tuple[_Hit, Issuer] | None:
    hit = _find(doc, labels, wrap=True)
    if hit is None:
        return None
    issuer = normalize_issuer(hit.text)
    if issuer is None:
        return None
    return hit, issuer


def _office_issuer(doc: _Doc, registry_labels: Sequence[str] = ()) -> FieldValue | None:
    """Header office; completed from the registration line when it names the same body."""
    header = _header_office(doc)
    registry = _registry_issuer(doc, registry_labels) if registry_labels else None
    if header and registry:
        # The registration line repeats the body in mixed case, with its province: when it is
        # the same body (compared without diacritics), it is the better reading.
        if fold(registry[1].name).startswith(fold(header[1].name)):
            return _issuer_value(registry[0], registry[1])
    if header:
        hit, issuer, confirmed = header
        value = _issuer_value(hit, issuer)
        if not confirmed and _place_agrees(doc, issuer) is False:
            value = _scaled(value, 0.6)  # the header names another place than the date line
        return value
    if registry:
        return _issuer_value(*registry)
    return None


def _signature_office(doc: _Doc) -> FieldValue | None:
    """Issuer printed above the signer's role ("SỞ NÔNG NGHIỆP ..." / "TỈNH X" / "KT. ...")."""
    roles = [ln for ln in _role_lines(doc) if _role_at(ln) == 0]
    if not roles:
        return None
    first_role = roles[0]
    above: list[_Line] = []
    for line in reversed(doc.lines[max(0, first_role.index - 4) : first_role.index]):
        if not line.text.isupper() or _DATE_LINE.search(line.folded):
            break
        if _ROLE_PREFIX.match(line.folded):
            continue  # "KT. GIÁM ĐỐC" read with a slip: a role, not part of the body
        above.insert(0, line)
    if not above:
        return None
    issuer = normalize_issuer(" ".join(ln.text for ln in above))
    if issuer is None:
        return None
    hit = _Hit(" ".join(ln.text for ln in above), above[0], 1.0, tuple(above[1:]))
    return _issuer_value(hit, issuer)


# --------------------------------------------------------------------------------------------
# Per-type extraction


class _Out:
    """Collects fields and applies cross-checks at the end."""

    def __init__(self) -> None:
        self.fields: dict[str, FieldValue] = {}
        self._number: tuple[_Hit, str, float] | None = None

    def put(self, name: str, value: FieldValue | None) -> None:
        if value is not None and value.value:
            self.fields[name] = value

    def name(self, name: str, found: tuple[_Hit, str, float] | None) -> None:
        if found:
            hit, value, quality = found
            self.put(name, _value(hit, value, hit.conf * quality))

    def date(self, name: str, found: tuple[_Hit, date, float] | None) -> None:
        if found:
            hit, value, quality = found
            self.put(name, _value(hit, value.isoformat(), hit.conf * quality))

    def text(self, name: str, hit: _Hit | None, quality: float = 1.0) -> None:
        if hit:
            self.put(name, _value(hit, _clean_text(hit.text), hit.conf * quality))

    def place(self, name: str, hit: _Hit | None, doc: _Doc | None = None) -> None:
        if hit:
            value, quality = _place(hit.text)
            if doc is not None:
                quality *= _place_readings(doc, value, hit)
            self.put(name, _value(hit, value, hit.conf * quality))

    def pid(self, name: str, hit: _Hit | None) -> None:
        if hit:
            parsed = parse_personal_id(hit.text)
            if parsed:
                self.put(name, _value(hit, parsed[0], hit.conf * parsed[1]))

    def number(self, found: tuple[_Hit, str, float] | None, *, names_issuer: bool = False) -> None:
        """The "Số: ..." number. ``names_issuer``: this type's symbols name the issuing body
        ("QĐ-SNNMT", "XN-CA"); checked against the issuer in :meth:`finish`."""
        self._number = found if names_issuer else None
        if found:
            self.put("document_number", _number_value(found, None))

    def finish(self) -> None:
        """Checks that need several fields: a symbol that names the issuer confirms the
        number's reading; one that names another body withdraws the format's support."""
        issuer = self.fields.get("issuer")
        if self._number and issuer:
            self.put("document_number", _number_value(self._number, issuer.value))

    def sex(self, hit: _Hit | None) -> None:
        if hit:
            parsed = _sex(hit.text)
            if parsed:
                value, quality = parsed
                # "Nam" and "Nữ" share no letter after the first: a value read exactly as
                # one of them, and nothing else, is a closed-vocabulary reading.
                words = hit.text.strip(" .:;,").split()
                exact = len(words) == 1 and words[0].lower() == value.lower()
                evidence = _CLOSED_VOCABULARY if exact else 0.0
                self.put("sex", _value(hit, value, _supported(hit.conf, evidence) * quality))

    def cross_check(self, prefix: str = "") -> None:
        """Personal id against date of birth and sex: agreement confirms, conflict demotes."""
        pid = self.fields.get(f"{prefix}personal_id")
        if pid is None:
            return
        dob = self.fields.get(f"{prefix}date_of_birth")
        sex = self.fields.get("sex") if not prefix else None
        born = date.fromisoformat(dob.value) if dob else None
        factor = pid_consistency(pid.value, born, sex.value if sex else None)
        self.fields[f"{prefix}personal_id"] = _scaled(pid, factor)
        if factor < 0.5:
            if dob:
                self.fields[f"{prefix}date_of_birth"] = _scaled(dob, 0.5)
            if sex:
                self.fields["sex"] = _scaled(sex, 0.5)


_WELL_FORMED_NUMBER = re.compile(r"[1-9]\d{0,5}(?:/(?:19|20)\d\d)?/[A-ZĐ]{2,}(?:-[A-ZĐ0-9]+)*")


def _number_value(found: tuple[_Hit, str, float], issuer: str | None) -> FieldValue:
    """A document number's confidence: OCR's, lifted a little when the parse needed no repair
    and the symbol is well formed ("865/QĐ-SNNMT": number, optional year, letters); with
    ``issuer`` (types whose symbols name the issuing body), lifted a little more when the
    symbol names it and not at all when it names another body."""
    hit, value, quality = found
    evidence = 0.0
    # The doubled Đ is the one repair that says nothing about the digits.
    if quality in (1.0, _DOUBLED_D) and _WELL_FORMED_NUMBER.fullmatch(value):
        evidence = _WELL_FORMED
        if issuer is not None:
            evidence = _NAMES_ISSUER if _symbol_names_issuer(value, issuer) else 0.0
    return _value(hit, value, _supported(hit.conf, evidence) * quality)


def _supported_value(value: FieldValue, evidence: float) -> FieldValue:
    return FieldValue(
        value.value, _supported(value.confidence, evidence), value.page, value.bbox, value.text
    )


def _scaled(value: FieldValue, factor: float) -> FieldValue:
    return FieldValue(value.value, value.confidence * factor, value.page, value.bbox, value.text)


def _person(doc: _Doc, out: _Out, names: Sequence[str] = _LABELS["full_name"]) -> None:
    out.name("full_name", _name_field(doc, names))
    out.date("date_of_birth", _date_field(doc, _LABELS["date_of_birth"]))
    out.sex(_find(doc, _LABELS["sex"]))
    out.pid("personal_id", _find(doc, _LABELS["personal_id"]))


def _birth_words_check(doc: _Doc, out: _Out) -> None:
    """A birth date also written in words ("ghi bằng chữ") that agrees confirms the digits."""
    dob = out.fields.get("date_of_birth")
    words = _find(doc, ("ghi bang chu",), wrap=True, cut=False)
    if dob is None or words is None:
        return
    parsed = _words_date(words.text)
    if parsed is None:
        return
    factor = 1.15 if parsed.isoformat() == dob.value else 0.3
    out.fields["date_of_birth"] = _scaled(dob, factor)


_NUMBER_WORDS = {
    "khong": 0, "mot": 1, "mốt": 1, "hai": 2, "ba": 3, "bon": 4, "tu": 4, "nam": 5, "lam": 5,
    "sau": 6, "bay": 7, "tam": 8, "chin": 9,
}  # fmt: skip


def _words_number(words: list[str]) -> int | None:
    total, current = 0, 0
    for word in words:
        if word in ("nghin", "ngan"):
            total += max(current, 1) * 1000
            current = 0
        elif word == "tram":
            total += current * 100
            current = 0
        elif word == "muoi":
            current = max(current, 1) * 10 if current else 10
        elif word == "linh" or word == "le":
            continue
        elif word in _NUMBER_WORDS:
            digit = _NUMBER_WORDS[word]
            current = current + digit if current >= 10 or current == 0 else current * 10 + digit
        else:
            return None
    return total + current


def _words_date(text: str) -> date | None:
    folded = re.sub(r"[^a-z ,]", " ", fold(text))
    match = re.search(r"ngay\s+(.+?),?\s+thang\s+(.+?),?\s+nam\s+(.+)$", folded.strip())
    if not match:
        return None
    parts = [_words_number(m.replace(",", " ").split()) for m in match.groups()]
    if any(p is None for p in parts):
        return None
    day, month, year = parts  # type: ignore[misc]
    try:
        return date(year, month, day)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return None


def _birth_certificate(doc: _Doc, out: _Out) -> None:
    _person(doc, out)
    _birth_words_check(doc, out)
    out.place("place_of_birth", _find(doc, ("noi sinh",), wrap=True), doc)
    out.name("mother_name", _name_field(doc, _LABELS["mother_name"]))
    out.name("father_name", _name_field(doc, _LABELS["father_name"]))
    out.number(_number_line(doc))
    out.date(
        "issue_date",
        _date_line(doc) or _date_field(doc, ("ngay, thang, nam dang ky", "ngay dang ky")),
    )
    out.put("issuer", _office_issuer(doc, ("noi dang ky khai sinh", "noi dang ky")))
    out.name("signer", _signer(doc))
    out.cross_check()


def _citizen_id(doc: _Doc, out: _Out) -> None:
    _person(doc, out, ("ho, chu dem va ten/full name", "ho va ten/full name", "ho va ten"))
    out.place(
        "place_of_birth",
        _find(doc, ("noi dang ky khai sinh/place of birth", "noi dang ky khai sinh"), wrap=True),
        doc,
    )
    out.date(
        "issue_date",
        _date_field(
            doc,
            (
                "ngay, thang, nam cap/date of issue",
                "ngay, thang, nam/date, month, year",
                "date, month, year",
                "ngay cap",
                "date of issue",
            ),
        ),
    )
    out.date(
        "valid_until",
        _date_field(
            doc,
            (
                "co gia tri den/date of expiry",
                "ngay, thang, nam het han/date of expiry",
                "co gia tri den",
                "date of expiry",
            ),
        ),
    )
    issuer = None
    for i, line in enumerate(doc.lines):
        if line.folded.strip() == "bo cong an":
            issuer = _issuer_value(_Hit(line.text, line), normalize_issuer(line.text))  # type: ignore[arg-type]
            break
        if line.folded.startswith("cuc truong cuc canh sat"):
            lines = [line, *doc.lines[i + 1 : i + 2]]
            found = normalize_issuer(" ".join(ln.text for ln in lines))
            if found:
                issuer = _issuer_value(_Hit(line.text, line, 1.0, tuple(lines[1:])), found)
            break
    out.put("issuer", issuer)
    out.name("signer", _signer(doc))
    if "personal_id" not in out.fields:
        # "Số định danh cá nhân/Personal identification" wraps before "number:" on the card:
        # the number is then the only 12-digit token on a line of its own.
        for line in doc.lines:
            if re.match(r"^I[DO0]VNM", line.text.replace(" ", "")):
                continue
            parsed = parse_personal_id(line.text)
            if parsed and len(re.sub(r"\D", "", line.text)) <= 13:
                out.put(
                    "personal_id",
                    _value(_Hit(line.text, line), parsed[0], line.conf * parsed[1] * 0.95),
                )
                break
    _mrz_check(doc, out)
    _mrz_dates_check(doc, out)
    out.cross_check()


def _mrz_check(doc: _Doc, out: _Out) -> None:
    """The machine-readable zone repeats the number: agreement confirms it."""
    pid = out.fields.get("personal_id")
    if pid is None:
        return
    for line in doc.lines:
        compact = line.text.replace(" ", "")
        if re.match(r"^I[DO0]VNM", compact):
            digits, _ = _digits(compact[5:])
            if pid.value in digits:
                out.fields["personal_id"] = _scaled(pid, 1.1)
            return


def _icao_check(data: str) -> str:
    """ICAO 9303 check digit of digits and fillers."""
    weights = (7, 3, 1)
    return str(
        sum((int(ch) if ch.isdigit() else 0) * weights[i % 3] for i, ch in enumerate(data)) % 10
    )


_MRZ_DATES = re.compile(r"[0-9OoIlSBZ]{7}[MF<][0-9OoIlSBZ]{7}VNM")
#: The machine-readable zone of a card repeats the birth date, sex and expiry, each date with
#: its check digit: a second reading, in another font, that checks itself.
_MRZ_AGREES = 0.9


def _mrz_dates_check(doc: _Doc, out: _Out) -> None:
    """The second MRZ line ("9510179F3510177VNM<<<...") against the printed date of birth, sex
    and expiry: a date whose check digit holds and agrees confirms the printed value; one that
    disagrees sends it to a person."""
    for line in doc.lines:
        compact = line.text.replace(" ", "")
        if not _MRZ_DATES.match(compact):
            continue
        # Digits read as look-alike letters are repaired: the check digits judge the result.
        fixed = compact[:7].translate(_DIGIT_FIX) + compact[7] + compact[8:15].translate(_DIGIT_FIX)
        if not re.fullmatch(r"\d{7}[MF<]\d{7}", fixed):
            return
        born, born_check, sex = fixed[:6], fixed[6], fixed[7]
        expires, expires_check = fixed[8:14], fixed[14]
        checks = {
            "date_of_birth": born if _icao_check(born) == born_check else None,
            "valid_until": expires if _icao_check(expires) == expires_check else None,
        }
        for name, digits in checks.items():
            value = out.fields.get(name)
            if value is None or digits is None:
                continue
            printed = date.fromisoformat(value.value).strftime("%y%m%d")
            if printed == digits:
                out.fields[name] = _supported_value(value, _MRZ_AGREES)
            else:
                out.fields[name] = _scaled(value, 0.3)
        printed_sex = out.fields.get("sex")
        if printed_sex is not None and sex in "MF" and checks["date_of_birth"] is not None:
            if (sex == "F") == (printed_sex.value == "Nữ"):
                out.fields["sex"] = _supported_value(printed_sex, _MRZ_AGREES)
            else:
                out.fields["sex"] = _scaled(printed_sex, 0.3)
        return


def _marriage_certificate(doc: _Doc, out: _Out) -> None:
    husband = _section(
        doc, ("thong tin nguoi chong", "ben chong"), ("thong tin nguoi vo", "ben vo")
    )
    wife = _section(doc, ("thong tin nguoi vo", "ben vo"), ("noi dang ky",))
    for prefix, lines in (("husband_", husband), ("wife_", wife)):
        if not lines:
            continue
        out.name(f"{prefix}name", _name_field(doc, _LABELS["full_name"], lines))
        out.date(f"{prefix}date_of_birth", _date_field(doc, _LABELS["date_of_birth"], lines))
        out.pid(f"{prefix}personal_id", _find(doc, _LABELS["personal_id"], lines=lines))
        out.cross_check(prefix)
    out.number(_number_line(doc))
    out.date("issue_date", _date_line(doc) or _date_field(doc, ("ngay, thang, nam dang ky",)))
    out.put("issuer", _office_issuer(doc, ("noi dang ky ket hon",)))
    out.name("signer", _signer(doc))


def _death_certificate(doc: _Doc, out: _Out) -> None:
    _person(doc, out, ("ho, chu dem, ten", "ho va ten nguoi chet", "ho va ten"))
    out.date("date_of_death", _date_field(doc, ("da chet vao luc", "thoi diem chet")))
    out.place("place_of_death", _find(doc, ("noi chet",), wrap=True), doc)
    out.number(_number_line(doc))
    out.date("issue_date", _date_line(doc))
    out.put("issuer", _office_issuer(doc, ("noi dang ky khai tu",)))
    out.name("signer", _signer(doc))
    out.cross_check()


def _residence_confirmation(doc: _Doc, out: _Out) -> None:
    _person(doc, out, ("ho, chu dem va ten", "ho va ten"))
    out.place("place_of_residence", _find(doc, ("noi thuong tru",), wrap=True), doc)
    out.number(_number_line(doc), names_issuer=True)
    out.date("issue_date", _date_line(doc))
    out.put("issuer", _office_issuer(doc))
    out.name("signer", _signer(doc))
    issued = out.fields.get("issue_date")
    for line in doc.lines:
        match = re.search(
            r"co gia tri(?: su dung)?\s+([0-9ooil|]{1,3})\s+ngay\s+ke tu ngay", line.folded
        )
        if match and issued:
            days, repairs = _digits(match.group(1))
            if days.isdigit():
                until = date.fromisoformat(issued.value) + timedelta(days=int(days))
                conf = min(issued.confidence, line.conf) * 0.85**repairs
                out.put("valid_until", _value(_Hit(line.text, line), until.isoformat(), conf))
            break
    out.cross_check()


def _land_use_certificate(doc: _Doc, out: _Out) -> None:
    out.name("full_name", _name_field(doc, ("ong", "ba", "ong (ba)", "ho va ten")))
    out.pid("personal_id", _find(doc, ("so dinh danh ca nhan",)))
    for line in doc.lines:
        parcel = re.search(r"thua dat so\s*[:;]?\s*([0-9ooil|]{1,5})\b", line.folded)
        sheet = re.search(r"to ban do so\s*[:;]?\s*([0-9ooil|]{1,4})\b", line.folded)
        if parcel and "parcel_number" not in out.fields:
            value, repairs = _digits(line.text[parcel.start(1) : parcel.end(1)])
            if value.isdigit():
                out.put(
                    "parcel_number",
                    _value(_Hit(line.text, line), str(int(value)), line.conf * 0.85**repairs),
                )
        if sheet and "map_sheet" not in out.fields:
            value, repairs = _digits(line.text[sheet.start(1) : sheet.end(1)])
            if value.isdigit():
                out.put(
                    "map_sheet",
                    _value(_Hit(line.text, line), str(int(value)), line.conf * 0.85**repairs),
                )
        area = re.search(r"dien tich\s*[:;]?\s*([0-9][0-9.,]*)\s*m", line.folded)
        if area and "area" not in out.fields:
            raw = area.group(1).rstrip(".,")
            # Vietnamese numbers: "." groups thousands, "," is the decimal mark ("1.250,5").
            if "," in raw:
                raw = raw.replace(".", "").replace(",", ".")
            elif re.fullmatch(r"\d{1,3}(?:\.\d{3})+", raw):
                raw = raw.replace(".", "")
            if not re.fullmatch(r"\d+(?:\.\d+)?", raw):
                continue
            out.put("area", _value(_Hit(line.text, line), raw, line.conf))
    serial = _find(doc, ("so phat hanh", "so seri", "so serial"))
    if serial:
        match = re.match(r"([A-ZĐ]{2})\s*([0-9OoIl]{6,8})$", serial.text.strip())
        if match:
            digits, repairs = _digits(match.group(2))
            if digits.isdigit():
                out.put(
                    "document_number",
                    _value(serial, f"{match.group(1)} {digits}", serial.conf * 0.85**repairs),
                )
    out.date("issue_date", _date_line(doc))
    out.put("issuer", _signature_office(doc))
    out.name("signer", _signer(doc))


def _diploma(doc: _Doc, out: _Out) -> None:
    out.name(
        "full_name", _name_field(doc, ("ho va ten", "ong (ba)", "ho, chu dem va ten", "ong", "ba"))
    )
    out.date("date_of_birth", _date_field(doc, _LABELS["date_of_birth"]))
    out.place("place_of_birth", _find(doc, ("noi sinh", "tai"), wrap=True), doc)
    number = _find(doc, ("so hieu van bang", "so hieu"))
    if number:
        match = re.match(r"([A-Z]\s+)?([0-9OoIl]{6,8})$", number.text.strip())
        if match:
            digits, repairs = _digits(match.group(2))
            prefix = (match.group(1) or "").strip()
            if digits.isdigit():
                value = f"{prefix} {digits}" if prefix else digits
                out.put("document_number", _value(number, value, number.conf * 0.85**repairs))
    out.date("issue_date", _date_line(doc))
    issuer = None
    for line in doc.lines[:20]:
        if re.match(r"^(giam doc so|hieu truong)\b", line.folded):
            lines = [line]
            nxt = doc.after(line)
            if nxt and nxt[0].text.isupper() and re.match(r"^(tinh|thanh pho)\b", nxt[0].folded):
                lines.append(nxt[0])
            found = normalize_issuer(" ".join(ln.text for ln in lines))
            if found:
                issuer = _issuer_value(_Hit(line.text, line, 1.0, tuple(lines[1:])), found)
            break
    out.put("issuer", issuer)
    out.name("signer", _signer(doc))


def _business_registration(doc: _Doc, out: _Out) -> None:
    name = _find(
        doc,
        (
            "ten cong ty viet bang tieng viet",
            "ten doanh nghiep viet bang tieng viet",
            "ten ho kinh doanh",
        ),
        wrap=True,
        cut=False,
    )
    if name:
        value, quality = _business_name(name.text)
        out.put("business_name", _value(name, value, name.conf * quality))
    code = _find(doc, ("ma so doanh nghiep", "ma so ho kinh doanh"))
    if code:
        digits, repairs = _digits(code.text.replace(" ", "").split("-")[0])
        if digits.isdigit() and len(digits) == 10:
            out.put("document_number", _value(code, digits, code.conf * 0.85**repairs))
    reps = _section(doc, ("4. nguoi dai dien", "nguoi dai dien", "thong tin ve chu so huu"))
    out.name("full_name", _name_field(doc, ("ho va ten",), reps or None))
    out.pid("personal_id", _find(doc, _LABELS["personal_id"], lines=reps or None))
    out.date("issue_date", _date_line(doc))
    issued = out.fields.get("issue_date")
    registrations = [
        found[0]
        for line in doc.lines
        if re.match(r"^dang ky (?:lan dau|thay doi)", line.folded)
        for found in [parse_date(line.text)]
        if found
    ]
    if issued and registrations:
        # Printed at the latest registration: the date line repeats that date.
        agrees = max(registrations).isoformat() == issued.value
        out.fields["issue_date"] = _scaled(issued, 1.0 if agrees else 0.5)
    out.put("issuer", _office_issuer(doc))
    out.name("signer", _signer(doc))


def _symbol_names_issuer(number: str, issuer: str) -> bool:
    """Whether a document number's symbol names the issuer's body ("865/QĐ-SNNMT" and "Sở
    Nông nghiệp và Môi trường ...", "777/XN-CA" and "Công an ...")."""
    tokens = re.split(r"[/-]", fold(number).upper())
    body = issuer.split(",")[0]
    acronym = _acronym(next((b for _k, b, _l in _BODY_NAMES if body.startswith(b)), body))
    # A chairman signs for the committee: "QĐ-CT" is the committee's decision too.
    accepted = (acronym, "CT") if acronym == "UBND" else (acronym,)
    return any(t.startswith(accepted) for t in tokens if t)


def _acronym(body: str) -> str:
    """ "Sở Khoa học và Công nghệ" -> "SKHCN", "Ủy ban nhân dân" -> "UBND", "Công an" -> "CA"."""
    words = [w for w in fold(body).split() if w not in ("va", "-", ",")]
    return "".join(w[0] for w in words).upper()


def _official_document(doc: _Doc, out: _Out) -> None:
    out.number(_number_line(doc), names_issuer=True)
    out.date("issue_date", _date_line(doc))
    issuer = _office_issuer(doc)
    document_number = out.fields.get("document_number")
    if issuer and document_number and not _symbol_names_issuer(document_number.value, issuer.value):
        # The symbol names the issuer ("QĐ-SNV", "SNV-VP", "UBND-VP", "CAX-QLHC"): a header
        # whose body is not in it was probably misread or partly lost.
        issuer = _scaled(issuer, 0.5)
    out.put("issuer", issuer)
    out.name("signer", _signer(doc))


_EXTRACTORS: dict[str, Callable[[_Doc, _Out], None]] = {
    "birth_certificate": _birth_certificate,
    "citizen_id": _citizen_id,
    "marriage_certificate": _marriage_certificate,
    "death_certificate": _death_certificate,
    "residence_confirmation": _residence_confirmation,
    "land_use_certificate": _land_use_certificate,
    "diploma": _diploma,
    "decision": _official_document,
    "official_letter": _official_document,
    "business_registration": _business_registration,
}


def extract(doc: Document, doc_type: str) -> dict[str, FieldValue]:
    """Extract the fields of ``doc_type`` from a document (OCR pages or text).

    Returns:
        Field name -> value; fields not found are absent. ``other`` has no fields.

    Raises:
        ValueError: unknown type.
    """
    if doc_type not in FIELDS_BY_TYPE:
        raise ValueError(f"unknown document type {doc_type!r}")
    extractor = _EXTRACTORS.get(doc_type)
    if extractor is None:
        return {}
    out = _Out()
    extractor(_Doc(as_pages(doc)), out)
    out.finish()
    return out.fields


def review_reasons(
    classification: Classification,
    fields: Mapping[str, FieldValue],
    *,
    classify_config: ClassifyConfig | None = None,
    extract_config: ExtractConfig | None = None,
) -> list[str]:
    """Why a document needs a person: type below threshold, a value below its field's
    threshold, an expected field missing. Empty: ready.

    Reasons name types and fields, never values (they may be personal data).
    """
    classify_config = classify_config or ClassifyConfig()
    extract_config = extract_config or ExtractConfig()
    reasons = []
    if classification.needs_review or classification.confidence < classify_config.threshold_for(
        classification.type
    ):
        reasons.append(f"type:{classification.predicted}")
    for name, value in fields.items():
        if value.confidence < extract_config.threshold_for(name):
            reasons.append(f"low:{name}")
    optional = OPTIONAL_FIELDS.get(classification.type, frozenset())
    for name in FIELDS_BY_TYPE.get(classification.type, ()):
        if name not in fields and name not in optional:
            reasons.append(f"missing:{name}")
    return reasons
