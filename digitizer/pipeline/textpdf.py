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


def _jpeg(image: Image.Image) -> bytes:
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
        unit = font.text_length(line.text, fontsize=1)
        if unit <= 0 or box_w <= 0 or box_h <= 0:
            continue
        # Fit the width exactly; keep the height sane for lines with few letters.
        size = min(box_w / unit, box_h * 1.2)
        baseline = y1 * sy - box_h * 0.2
        writer.append((x0 * sx, baseline), line.text, font=font, fontsize=max(size, 1.0))
    writer.write_text(page, render_mode=3)


def build_searchable_pdf(
    pages: Sequence[tuple[Image.Image, OcrPage] | int],
    original_pdf: bytes | None = None,
) -> bytes:
    """A PDF of page images with text layers.

    Args:
        pages: per page, either ``(image, ocr)`` or the index of a page of
            ``original_pdf`` to copy unchanged (a born-digital page with text).
        original_pdf: the source PDF, needed when a page is copied.
    """
    out = pymupdf.open()
    source = pymupdf.open(stream=original_pdf, filetype="pdf") if original_pdf else None
    try:
        for item in pages:
            if isinstance(item, int):
                assert source is not None, "copying a page needs the original PDF"
                out.insert_pdf(source, from_page=item, to_page=item)
                continue
            image, ocr = item
            width_pt = image.width / ocr.dpi * 72
            height_pt = image.height / ocr.dpi * 72
            page = out.new_page(width=width_pt, height=height_pt)
            page.insert_image(page.rect, stream=_jpeg(image))
            add_text_layer(page, ocr)
        out.subset_fonts()
        return out.tobytes(garbage=3, deflate=True)
    finally:
        out.close()
        if source is not None:
            source.close()
