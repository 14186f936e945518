"""The searchable PDF's text layer."""

from __future__ import annotations

import unicodedata

import pymupdf
import pytest

from digitizer.pipeline import textpdf
from digitizer.pipeline.ocr import OcrLine, OcrPage

LINES = [
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    "Độc lập - Tự do - Hạnh phúc",
    "Số định danh cá nhân: 001203004567 — ngày 15/08/2024",
    unicodedata.normalize("NFD", "Nguyễn Thị Hường, phường Đống Đa"),
    "Ωμέγα ∑ 🙂 tab\there",
    "",
]


@pytest.mark.smoke
@pytest.mark.parametrize("text", LINES)
def test_unit_length_is_fonts_own_width(text: str) -> None:
    """The cached per-character width is exactly what PyMuPDF measures (fallback fonts,
    combining marks and characters outside the font included)."""
    assert textpdf.unit_length(text) == textpdf._font().text_length(text, fontsize=1)


@pytest.mark.smoke
def test_text_layer_fits_each_line_to_its_box() -> None:
    """Each invisible line starts at its box and is as wide as it (searchable, selectable
    where the ink is)."""
    dpi = 200
    # Boxes as wide as the text set at 40 px (height to spare: the width decides).
    lines = [
        OcrLine(
            text=t,
            bbox=(100, 120 + 90 * i, 100 + round(40 * textpdf.unit_length(t)), 190 + 90 * i),
            confidence=95.0,
        )
        for i, t in enumerate(LINES[:4])
    ]
    page_ocr = OcrPage(width=1654, height=2339, dpi=dpi, lines=lines)
    with pymupdf.open() as doc:
        page = doc.new_page(width=1654 / dpi * 72, height=2339 / dpi * 72)
        textpdf.add_text_layer(page, page_ocr)
        words = page.get_text("dict")["blocks"]
        spans = [s for b in words for ln in b["lines"] for s in ln["spans"]]
    scale = 72 / dpi
    assert len(spans) == 4
    for line, span in zip(lines, spans, strict=True):
        assert unicodedata.normalize("NFC", span["text"]) == unicodedata.normalize("NFC", line.text)
        x0, _, x1, _ = span["bbox"]
        assert x0 == pytest.approx(line.bbox[0] * scale, abs=1.0)
        assert x1 - x0 == pytest.approx((line.bbox[2] - line.bbox[0]) * scale, rel=0.03)
