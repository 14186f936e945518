"""Splitting multi-document scans: documents apart, the two sides of an ID card together."""

from __future__ import annotations

import pytest

from digitizer.pipeline.classify import Classifier, as_pages
from digitizer.pipeline.ocr import OcrLine, OcrPage
from digitizer.pipeline.split import page_role, split_pages
from fixtures import generator as g

pytestmark = pytest.mark.skipif(not g.FONTS, reason="no font covering Vietnamese is installed")


def _ocr(page: g.GeneratedPage) -> OcrPage:
    """The ground truth as an OCR result (lines with boxes)."""
    return OcrPage(
        lines=[OcrLine(ln.text, ln.bbox, 95.0) for ln in page.lines],
        width=page.image.width,
        height=page.image.height,
        dpi=page.dpi,
    )


def _doc(seed: int, template: str, wording: int = 0, appendix: bool = False) -> list[OcrPage]:
    doc = g.generate_document(seed, template=template, wording=wording, appendix=appendix,
                              dpi=150)  # fmt: skip
    return [_ocr(p) for p in doc.pages]


@pytest.mark.smoke
def test_page_roles() -> None:
    front, back = _doc(1, "can-cuoc-truoc")
    assert page_role(front).role == "card_front"
    assert page_role(back).role == "card_back"
    decision, appendix = _doc(2, "quyet-dinh", appendix=True)
    assert page_role(decision).role == "first"
    assert page_role(appendix).role == "continuation"
    (form,) = _doc(3, "to-khai")
    assert page_role(form).role == "first"
    old_front, old_back = _doc(4, "can-cuoc-truoc", wording=1)
    assert (page_role(old_front).role, page_role(old_back).role) == ("card_front", "card_back")


@pytest.mark.smoke
def test_batch_is_split_into_its_documents() -> None:
    """GIVEN a batch scan of a decision with an appendix, an ID card (front, back), a birth
    certificate, a letter, a blank form and another ID card WHEN split THEN each document is
    one group, and the card sides stay together."""
    parts = [
        _doc(10, "quyet-dinh", appendix=True),
        _doc(11, "can-cuoc-truoc"),
        _doc(12, "giay-khai-sinh"),
        _doc(13, "cong-van", appendix=True),
        _doc(14, "to-khai", wording=1),
        _doc(15, "can-cuoc-truoc", wording=1),
        _doc(16, "gcn-qsdd"),
    ]
    pages = [page for part in parts for page in part]
    expected, start = [], 0
    for part in parts:
        expected.append(list(range(start, start + len(part))))
        start += len(part)
    assert [group.pages for group in split_pages(pages)] == expected


@pytest.mark.smoke
def test_card_back_scanned_before_the_front_and_two_cards_in_a_row() -> None:
    front1, back1 = _doc(20, "can-cuoc-truoc")
    front2, back2 = _doc(21, "can-cuoc-truoc")
    groups = split_pages([back1, front1, front2, back2])
    assert [group.pages for group in groups] == [[0, 1], [2, 3]]


@pytest.mark.smoke
def test_text_pages_without_geometry() -> None:
    decision, appendix = _doc(30, "quyet-dinh", appendix=True)
    (birth,) = _doc(31, "giay-khai-sinh")
    text = "\f".join(p.text for p in (decision, appendix, birth))
    assert [group.pages for group in split_pages(as_pages(text))] == [[0, 1], [2]]


@pytest.mark.smoke
def test_groups_are_classified_as_wholes() -> None:
    pages = [*_doc(40, "can-cuoc-truoc"), *_doc(41, "quyet-dinh-cap-gcn"), *_doc(42, "khai-tu")]
    groups = split_pages(pages, Classifier())  # rules only: enough for titled documents
    predicted = [grp.classification.predicted if grp.classification else None for grp in groups]
    assert predicted == ["citizen_id", "decision", "death_certificate"]
    assert [grp.pages for grp in groups] == [[0, 1], [2], [3]]
    assert split_pages(pages)[0].doc_type is None  # no classifier: groups only
