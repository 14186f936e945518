"""Review page images line up with the OCR page they illustrate."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from digitizer.pipeline import pageimg
from digitizer.pipeline.ocr import OcrPage
from tests import samples


def _png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG"
        return img.size


@pytest.mark.smoke
def test_a_scan_is_scaled_to_review_resolution_with_its_aspect() -> None:
    scan = samples.text_image(["Giấy khai sinh"], size=(1654, 2339))  # A4 at 200 dpi
    ocr = OcrPage(width=1654, height=2339, dpi=200)
    width, height = _png_size(pageimg.render_page(scan, "png", 0, ocr))
    assert (width, height) == (827, 1170)  # 100 dpi
    assert abs(width / height - ocr.width / ocr.height) < 0.01


@pytest.mark.smoke
def test_a_page_read_sideways_is_shown_turned_like_its_ocr() -> None:
    scan = samples.text_image(["Quyết định"], size=(2339, 1654))  # landscape: turned page
    ocr = OcrPage(width=1654, height=2339, dpi=200, rotation=90)
    width, height = _png_size(pageimg.render_page(scan, "png", 0, ocr))
    assert width < height
    assert abs(width / height - ocr.width / ocr.height) < 0.01


@pytest.mark.smoke
def test_pdf_pages_render_at_review_resolution_and_missing_pages_fail() -> None:
    pdf = samples.image_pdf(2)
    assert _png_size(pageimg.render_page(pdf, "pdf", 1, None)) == (827, 1170)
    with pytest.raises((IndexError, ValueError)):
        pageimg.render_page(pdf, "pdf", 5, None)
