"""Searchable PDF: each page image with an invisible text layer on the OCR lines.

Text is written in render mode 3 (invisible) with Noto Sans from
``pymupdf-fonts``, whose ToUnicode map round-trips every Vietnamese letter and
punctuation (Liberation maps '-' to a soft hyphen on extraction). Each line is
sized so that its advance width equals the OCR box width, so selection and
search highlight the right place on the image. Fonts are subset.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import pymupdf
from PIL import Image

from digitizer.pipeline.ocr import OcrPage

NAME = "pdf"
VERSION = "1"
JPEG_QUALITY = 80


@lru_cache(maxsize=1)
def _font() -> pymupdf.Font:
    return pymupdf.Font("notos")


@lru_cache(maxsize=8192)
def _advance(char: str) -> float:
    return float(_font().text_length(char, fontsize=1))


def unit_length(text: str) -> float:
    """The width of ``text`` at font size 1, as ``Font.text_length`` gives it (the sum of
    its glyphs' advances), from a per-character cache: PyMuPDF's own loop makes two
    calls into MuPDF per character, a third of the PDF step's time."""
    return sum(map(_advance, text))


def encode_jpeg(image: Image.Image) -> bytes:
    """A page image as the JPEG the searchable PDF embeds."""
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def add_text_layer(page: pymupdf.Page, ocr: OcrPage) -> None:
    """Write the OCR lines invisibly onto ``page`` (image pixel boxes mapped to points)."""
    if not ocr.lines or not ocr.width:
        return
    font = _font()
    sx = page.rect.width / ocr.width
    sy = page.rect.height / ocr.height
    writer = pymupdf.TextWriter(page.rect)
    for line in ocr.lines:
        x0, y0, x1, y1 = line.bbox
        box_w = (x1 - x0) * sx
        box_h = (y1 - y0) * sy
        unit = unit_length(line.text)
        if unit <= 0 or box_w <= 0 or box_h <= 0:
            continue
        # Fit the width exactly; keep the height sane for lines with few letters.
        size = min(box_w / unit, box_h * 1.2)
        baseline = y1 * sy - box_h * 0.2
        writer.append((x0 * sx, baseline), line.text, font=font, fontsize=max(size, 1.0))
    writer.write_text(page, render_mode=3)


@dataclass
class PdfPage:
    """One page of the searchable PDF.

    The background is, in order of preference, a page of the original PDF
    (``source_page``: kept as it is, no re-encoding), the original JPEG bytes
    (``jpeg``), or a page image (``image``, encoded as JPEG). ``ocr`` is the text
    layer to add; None for born-digital pages that already have text.
    """

    ocr: OcrPage | None = None
    source_page: int | None = None
    jpeg: bytes | None = None
    image: Image.Image | None = None


def build_searchable_pdf(pages: Sequence[PdfPage], original_pdf: bytes | None = None) -> bytes:
    """A PDF of the pages with invisible text layers.

    Args:
        pages: the pages in order.
        original_pdf: the source PDF, needed when a page has a ``source_page``.
    """
    out = pymupdf.open()
    source = pymupdf.open(stream=original_pdf, filetype="pdf") if original_pdf else None
    try:
        for item in pages:
            if item.source_page is not None:
                assert source is not None, "copying a page needs the original PDF"
                out.insert_pdf(source, from_page=item.source_page, to_page=item.source_page)
                page = out[-1]
            else:
                ocr = item.ocr
                assert ocr is not None and (item.jpeg is not None or item.image is not None)
                width = item.image.width if item.image is not None else ocr.width
                height = item.image.height if item.image is not None else ocr.height
                page = out.new_page(width=width / ocr.dpi * 72, height=height / ocr.dpi * 72)
                stream = item.jpeg if item.jpeg is not None else encode_jpeg(item.image)  # type: ignore[arg-type]
                page.insert_image(page.rect, stream=stream)
            if item.ocr is not None:
                add_text_layer(page, item.ocr)
        out.subset_fonts()
        return out.tobytes(garbage=3, deflate=True)
    finally:
        out.close()
        if source is not None:
            source.close()
