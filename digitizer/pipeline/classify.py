"""Classify a document into DESIGN.md's types, with a confidence.

Two sources of evidence are combined:

- **Rules** for strong signals: a title line ("GIẤY KHAI SINH", "TRÍCH LỤC KHAI SINH",
  "QUYẾT ĐỊNH", "GIẤY CHỨNG NHẬN QUYỀN SỬ DỤNG ĐẤT", "CĂN CƯỚC", "TỜ KHAI ...") standing on its
  own line near the top of the first page, the machine-readable zone of an ID card ("IDVNM..."),
  and for official letters the "V/v" subject line with "Kính gửi". Only a whole line counts as a
  title: a letter that quotes "Giấy khai sinh" in a sentence, or a decision granting a land-use
  certificate ("QUYẾT ĐỊNH" / "Về việc cấp Giấy chứng nhận ..."), keeps its own type. When
  several signals fire, the first in reading order wins (the title precedes what it quotes).
- **A learned model** (:mod:`.training`): probabilities from word and character n-grams.

The rule multiplies its type's probability by :data:`RULE_WEIGHT` (then renormalised), so a
rule and the model that agree give a confident answer, and a rule the model strongly doubts
gives a middling one that goes to review. Below the type's threshold the answer is ``other``
with the (low) probability of ``other`` as its confidence, never the dominant class; the
dominant class stays available as ``predicted`` for the review screen.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from rapidfuzz import fuzz

from digitizer.pipeline.issuers import fold
from digitizer.pipeline.ocr import OcrLine, OcrPage
from digitizer.pipeline.training import DOC_TYPES, Model

__all__ = [
    "DOC_TYPES",
    "Classification",
    "Classifier",
    "ClassifyConfig",
    "Document",
    "RuleHit",
    "as_pages",
    "classify",
    "document_text",
    "find_rule",
    "is_motto",
]

NAME = "classify"
#: Bumped when the rules change (part of the derived-object key with the model version).
VERSION = "1"

#: How much a rule multiplies its type's probability before renormalising.
RULE_WEIGHT = 25.0

#: A document as the pipeline steps accept it: OCR pages, one page, or plain text (pages
#: separated by form feeds).
Document = str | OcrPage | Sequence[OcrPage]


def _frozen(data: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType(dict(data))


#: Per-type thresholds tuned on OCR'd degraded scans of the training split only
#: (``python -m bench.classify --tune --split train``: 220 documents): no type was predicted
#: wrongly there, so every type uses the 0.6 floor of :class:`ClassifyConfig`. Types that
#: need more get an entry here.
DEFAULT_TYPE_THRESHOLDS: Mapping[str, float] = _frozen({})


@dataclass(frozen=True)
class ClassifyConfig:
    """Review thresholds for the type: below its threshold a document is ``other``/review."""

    threshold: float = 0.6
    per_type: Mapping[str, float] = field(default_factory=lambda: DEFAULT_TYPE_THRESHOLDS)

    def threshold_for(self, doc_type: str) -> float:
        """The threshold of one type."""
        return self.per_type.get(doc_type, self.threshold)


@dataclass(frozen=True)
class RuleHit:
    """A strong signal: the type it points to, where, and the text that fired it."""

    doc_type: str
    page: int
    line: int
    text: str
    rule: str


@dataclass(frozen=True)
class Classification:
    """The answer of :func:`classify`.

    Attributes:
        type: the type code; ``other`` when unsure (below the threshold of ``predicted``).
        confidence: 0-1; for a fallback to ``other``, the probability of ``other`` (low).
        predicted: the most probable type, before the threshold (shown to the reviewer).
        scores: the combined probability of every type.
        rule: the strong signal used, if any.
        model_version: the learned model's version, None for rules only.
        needs_review: the type is below its threshold.
    """

    type: str
    confidence: float
    predicted: str
    scores: dict[str, float]
    rule: RuleHit | None
    model_version: str | None
    needs_review: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the ``type``/``confidence`` part of ``sohoa classify --json``)."""
        return {
            "type": self.type,
            "confidence": round(self.confidence, 4),
            "predicted": self.predicted,
            "needs_review": self.needs_review,
            "model_version": self.model_version,
            "rule": self.rule.rule if self.rule else None,
            "scores": {k: round(v, 4) for k, v in sorted(self.scores.items(), key=lambda i: -i[1])},
        }


# --------------------------------------------------------------------------------------------
# Input


def as_pages(doc: Document) -> list[OcrPage]:
    """Pages of a document given as OCR pages or as text (form feeds separate pages).

    Text pages have no geometry (``width == 0``) and full line confidence.
    """
    if isinstance(doc, OcrPage):
        return [doc]
    if isinstance(doc, str):
        text = unicodedata.normalize("NFC", doc)
        pages = []
        for chunk in text.split("\f"):
            lines = [
                OcrLine(" ".join(line.split()), (0, 0, 0, 0), 100.0)
                for line in chunk.splitlines()
                if line.strip()
            ]
            pages.append(OcrPage(lines=lines, width=0, height=0, source="text"))
        return pages
    return list(doc)


def document_text(pages: Sequence[OcrPage]) -> str:
    """All pages' text, pages separated by form feeds (what the model sees)."""
    return "\n\f\n".join(page.text for page in pages)


# --------------------------------------------------------------------------------------------
# Rules

_MOTTO = ("cong hoa xa hoi chu nghia viet nam", "doc lap - tu do - hanh phuc")

#: Exact titles (folded; the whole line must match, fuzzily): type, title.
_TITLES: tuple[tuple[str, str], ...] = (
    ("birth_certificate", "giay khai sinh"),
    ("birth_certificate", "trich luc khai sinh"),
    ("birth_certificate", "ban sao giay khai sinh"),
    ("birth_certificate", "trich luc dang ky khai sinh"),
    ("citizen_id", "can cuoc"),
    ("citizen_id", "can cuoc cong dan"),
    ("citizen_id", "chung minh nhan dan"),
    ("citizen_id", "the can cuoc"),
    ("marriage_certificate", "giay chung nhan ket hon"),
    ("marriage_certificate", "trich luc ket hon"),
    ("marriage_certificate", "trich luc dang ky ket hon"),
    ("death_certificate", "trich luc khai tu"),
    ("death_certificate", "trich luc dang ky khai tu"),
    ("death_certificate", "giay chung tu"),
    ("residence_confirmation", "xac nhan thong tin ve cu tru"),
    ("residence_confirmation", "giay xac nhan thong tin ve cu tru"),
    ("residence_confirmation", "xac nhan thong tin cu tru"),
    ("land_use_certificate", "giay chung nhan quyen su dung dat"),
    (
        "land_use_certificate",
        "giay chung nhan quyen su dung dat, quyen so huu tai san gan lien voi dat",
    ),
    (
        "land_use_certificate",
        "giay chung nhan quyen su dung dat quyen so huu nha o va tai san khac gan lien voi dat",
    ),
    ("decision", "quyet dinh"),
    ("business_registration", "giay chung nhan dang ky doanh nghiep"),
    ("business_registration", "giay chung nhan dang ky ho kinh doanh"),
    ("business_registration", "giay chung nhan dang ky kinh doanh"),
)
#: Title prefixes (folded): the line starts with one of these.
_TITLE_PREFIXES: tuple[tuple[str, str], ...] = (
    ("diploma", "bang tot nghiep"),
    ("diploma", "bang cu nhan"),
    ("diploma", "bang thac si"),
    ("diploma", "bang tien si"),
    ("diploma", "bang ky su"),
    ("other", "to khai"),
    ("other", "don de nghi"),
    ("other", "don xin"),
    ("other", "don dang ky"),
    ("other", "phieu yeu cau"),
)
#: Titles printed over two lines ("XÁC NHẬN" / "Thông tin về cư trú").
_TWO_LINE_TITLES: tuple[tuple[str, str, str], ...] = (
    ("residence_confirmation", "xac nhan", "thong tin ve cu tru"),
    ("land_use_certificate", "giay chung nhan", "quyen su dung dat"),
)
_TITLE_RATIO = 88.0
_MRZ = re.compile(r"^I[DO0]VNM[0-9O<]{6,}")
_VV = re.compile(r"^\s*v\s*/\s*v\b")


def is_motto(line: str) -> bool:
    """The national motto or its second line ("Độc lập - Tự do - Hạnh phúc")."""
    folded = " ".join(fold(line).replace("–", "-").split())
    return any(fuzz.ratio(folded, m) >= _TITLE_RATIO for m in _MOTTO)


def _uppercase_share(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    return sum(ch.isupper() for ch in letters) / len(letters)


def _title_zone(count: int) -> int:
    # Titles sit under the header: within the first 18 lines or the first 45% of the page.
    return max(18, int(count * 0.45))


def _clean_title(line: str) -> str:
    folded = fold(line)
    folded = re.sub(r"[\"“”'`]", "", folded)
    return " ".join(folded.strip(" .:;").split())


def _title_type(line: str) -> str | None:
    if _uppercase_share(line) < 0.7:
        return None
    text = _clean_title(line)
    if len(text) < 4:
        return None
    best: tuple[float, str] | None = None
    for doc_type, title in _TITLES:
        score = fuzz.ratio(text, title)
        if score >= _TITLE_RATIO and (best is None or score > best[0]):
            best = (score, doc_type)
    if best:
        return best[1]
    for doc_type, prefix in _TITLE_PREFIXES:
        if len(text) >= len(prefix) and fuzz.ratio(text[: len(prefix)], prefix) >= _TITLE_RATIO:
            return doc_type
    return None


def find_rule(pages: Sequence[OcrPage]) -> RuleHit | None:
    """The first strong signal in reading order (titles on the first page, an ID card's
    machine-readable zone on any page, a letter's "V/v" with "Kính gửi"), or None."""
    hits: list[RuleHit] = []
    everything = "\n".join(fold(page.text) for page in pages)
    has_kinh_gui = bool(re.search(r"kinh\s*gui\s*:", everything))
    for page_index, page in enumerate(pages):
        lines = [ln.text for ln in page.lines]
        zone = _title_zone(len(lines))
        for i, text in enumerate(lines):
            if page_index == 0 and i < zone:
                if is_motto(text):
                    continue
                doc_type = _title_type(text)
                if doc_type:
                    hits.append(RuleHit(doc_type, page_index, i, text, f"title:{doc_type}"))
                    break
                if i + 1 < len(lines):
                    first, second = _clean_title(text), _clean_title(lines[i + 1])
                    for kind, top, bottom in _TWO_LINE_TITLES:
                        if (
                            fuzz.ratio(first, top) >= _TITLE_RATIO
                            and fuzz.partial_ratio(bottom, second) >= _TITLE_RATIO
                            and _uppercase_share(text) >= 0.7
                        ):
                            hits.append(RuleHit(kind, page_index, i, text, f"title:{kind}"))
                            break
                    if hits:
                        break
                if has_kinh_gui and _VV.match(fold(text)):
                    hits.append(
                        RuleHit("official_letter", page_index, i, text, "letter:v/v+kinh-gui")
                    )
                    break
            if _MRZ.match(text.replace(" ", "")):
                hits.append(RuleHit("citizen_id", page_index, i, text, "mrz"))
                break
        if hits:
            break
    if not hits:
        return None
    return min(hits, key=lambda h: (h.page, h.line))


# --------------------------------------------------------------------------------------------
# Combination


class Classifier:
    """Rules plus an optional learned model, with review thresholds.

    A worker builds one at start-up (the model loads once) and calls :meth:`classify` per
    document; it holds no per-document state and is safe to share between threads.
    """

    def __init__(self, model: Model | None = None, config: ClassifyConfig | None = None) -> None:
        self.model = model
        self.config = config or ClassifyConfig()

    @property
    def version(self) -> str:
        """Rules version plus model version (recorded per document)."""
        return f"{VERSION}+{self.model.version if self.model else 'rules-only'}"

    def classify(self, doc: Document) -> Classification:
        """Classify a whole document (all its pages)."""
        pages = as_pages(doc)
        rule = find_rule(pages)
        if self.model is not None:
            scores = self.model.predict_proba([document_text(pages)])[0]
        else:
            # Without a model every type is equally likely; a rule alone reaches
            # RULE_WEIGHT / (RULE_WEIGHT + 10) = 0.71, under the usual thresholds for review
            # only when the threshold is raised above it.
            scores = {t: 1.0 / len(DOC_TYPES) for t in DOC_TYPES}
        if rule is not None:
            scores = dict(scores)
            scores[rule.doc_type] *= RULE_WEIGHT
            total = sum(scores.values()) or 1.0
            scores = {t: v / total for t, v in scores.items()}
        predicted = max(scores, key=lambda t: scores[t])
        confidence = scores[predicted]
        if confidence >= self.config.threshold_for(predicted):
            return Classification(
                predicted,
                confidence,
                predicted,
                scores,
                rule,
                self.model.version if self.model else None,
                False,
            )
        return Classification(
            "other",
            scores.get("other", 0.0) if predicted != "other" else confidence,
            predicted,
            scores,
            rule,
            self.model.version if self.model else None,
            True,
        )


def classify(
    doc: Document, model: Model | None = None, config: ClassifyConfig | None = None
) -> Classification:
    """Classify one document (see :class:`Classifier`; build one to classify many)."""
    return Classifier(model, config).classify(doc)
