"""Split a multi-document scan into documents.

A batch scanned into one PDF holds several documents; the two sides of an ID card are one.
Each page is looked at on its own:

- a page whose top carries the national motto or a title line (Decree 30: every first page
  does; "GIẤY CHỨNG NHẬN", "TỜ KHAI ...") starts a new document;
- a card-sized page (ISO ID-1, 85.6 x 54 mm) showing the front of an ID card ("CĂN CƯỚC")
  starts a citizen_id document, and the back (machine-readable zone "IDVNM...", "Nơi cư trú",
  "Đặc điểm nhân dạng") joins the front next to it, in either order;
- any other page (body text only, an appendix, a blank verso) continues the document before.

Each group is then classified as a whole when a :class:`~.classify.Classifier` is given.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from digitizer.pipeline.classify import Classification, Classifier, find_rule, is_motto
from digitizer.pipeline.issuers import fold
from digitizer.pipeline.ocr import OcrPage

__all__ = ["DocumentGroup", "PageRole", "page_role", "split_pages"]

NAME = "split"
VERSION = "1"

#: ID-1 card, long side in millimetres, and the tolerance on it.
_CARD_MM = 85.6
_CARD_TOLERANCE = 0.2
#: The motto must be within this many lines of the top of a first page.
_MOTTO_LINES = 10
_BACK_MARKERS = (
    r"^i[do0]vnm",
    r"^noi cu tru\s*/",
    r"^dac diem nhan dang",
    r"^ngay, thang, nam cap",
    r"^ngay, thang, nam/date",
)


@dataclass(frozen=True)
class PageRole:
    """What one page looks like on its own.

    ``role`` is ``first`` (starts a document), ``continuation``, ``card_front`` or
    ``card_back``; ``title_type`` is the type its title names, if any.
    """

    index: int
    role: str
    title_type: str | None = None


@dataclass(frozen=True)
class DocumentGroup:
    """Pages (indices into the scan) that form one document, and its classification."""

    pages: list[int]
    classification: Classification | None = None

    @property
    def doc_type(self) -> str | None:
        return self.classification.type if self.classification else None


def _is_card(page: OcrPage) -> bool:
    if page.width <= 0 or page.height <= 0:
        return False
    long_side = max(page.width, page.height) / max(page.dpi, 1) * 25.4
    ratio = max(page.width, page.height) / min(page.width, page.height)
    return abs(long_side - _CARD_MM) <= _CARD_MM * _CARD_TOLERANCE and 1.4 <= ratio <= 1.75


def page_role(page: OcrPage, index: int = 0) -> PageRole:
    """Look at one page: does it start a document, continue one, or is it a card side?"""
    lines = [ln.text for ln in page.lines if ln.text.strip()]
    rule = find_rule([page])
    title_type = rule.doc_type if rule and rule.rule.startswith("title") else None
    folded = [fold(line) for line in lines]
    back = any(re.match(p, f) for f in folded for p in _BACK_MARKERS)
    card = _is_card(page) or (page.width == 0 and any(re.match(r"^i[do0]vnm", f) for f in folded))
    if card or (rule is not None and rule.doc_type == "citizen_id"):
        if title_type == "citizen_id":
            return PageRole(index, "card_front", title_type)
        if back or (rule is not None and rule.rule == "mrz"):
            return PageRole(index, "card_back", "citizen_id")
    motto = any(is_motto(line) for line in lines[:_MOTTO_LINES])
    if motto or title_type or (rule is not None and rule.rule.startswith("letter")):
        return PageRole(index, "first", title_type or (rule.doc_type if rule else None))
    return PageRole(index, "continuation", None)


def split_pages(
    pages: Sequence[OcrPage], classifier: Classifier | None = None
) -> list[DocumentGroup]:
    """Group the pages of a scan into documents (and classify each when asked).

    Returns:
        Groups in page order; every page is in exactly one group.
    """
    roles = [page_role(page, i) for i, page in enumerate(pages)]
    groups: list[list[int]] = []
    kinds: list[list[str]] = []
    for role in roles:
        if not groups:
            groups.append([role.index])
            kinds.append([role.role])
            continue
        previous = kinds[-1]
        if role.role == "continuation":
            joins = True
        elif role.role == "card_back":
            joins = previous == ["card_front"]
        elif role.role == "card_front":
            joins = previous == ["card_back"]
        else:
            joins = False
        if joins:
            groups[-1].append(role.index)
            kinds[-1].append(role.role)
        else:
            groups.append([role.index])
            kinds.append([role.role])
    out = []
    for indices in groups:
        classification = None
        if classifier is not None:
            # Front before back, whatever the scan order, so titles are found first.
            ordered = sorted(indices, key=lambda i: roles[i].role == "card_back")
            classification = classifier.classify([pages[i] for i in ordered])
        out.append(DocumentGroup(indices, classification))
    return out
