"""Pages scanned sideways or upside down are turned and read right; upright pages untouched."""

from __future__ import annotations

import io

import pymupdf
import pytest
from click.testing import CliRunner
from PIL import Image

from digitizer.config import OcrSettings
from digitizer.pipeline import orientation, render
from digitizer.pipeline.ocr import OcrPage
from digitizer.pipeline.ocr.tesseract import TesseractEngine
from digitizer.pipeline.runner import read_page
from fixtures import generator
from fixtures.metrics import cer


class CountingDetector(orientation.OrientationDetector):
    """The real detector, counting how often the pipeline asks it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def detect(self, image: Image.Image, dpi: int) -> orientation.Orientation:
        self.calls += 1
        return super().detect(image, dpi)


@pytest.fixture(scope="module")
def engine() -> TesseractEngine:
    return TesseractEngine(OcrSettings())


@pytest.fixture(scope="module")
def page() -> generator.GeneratedPage:
    # A held-out template and font, degraded (skew, blur, noise, JPEG).
    return generator.generate_page(7, "cong-van", "liberation-serif", degraded=True)


@pytest.mark.parametrize("turn", [90, 180, 270])
def test_turned_page_is_read_upright(
    engine: TesseractEngine, page: generator.GeneratedPage, turn: int
) -> None:
    turned = render.RenderedPage(page.image.rotate(turn, expand=True), 300)
    detector = CountingDetector()
    read, ocr = read_page(engine, turned, True, detector)
    assert detector.calls == 1
    assert (turn + read.rotation) % 360 == 0
    assert ocr.rotation == read.rotation
    assert (read.image.width, read.image.height) == page.image.size
    assert cer(page.text, ocr.text) < 0.03


def test_upright_page_pays_nothing(engine: TesseractEngine, page: generator.GeneratedPage) -> None:
    detector = CountingDetector()
    read, ocr = read_page(engine, render.RenderedPage(page.image, 300), True, detector)
    assert detector.calls == 0
    assert read.rotation == 0 and ocr.rotation == 0
    assert cer(page.text, ocr.text) < 0.03


def test_blank_and_photo_pages_are_not_turned(engine: TesseractEngine) -> None:
    detector = CountingDetector()
    blank = render.RenderedPage(Image.new("L", (1240, 1754), 255), 150)
    _, ocr = read_page(engine, blank, True, detector)
    assert ocr.lines == [] and detector.calls == 0
    # Too few characters for Tesseract to decide: unsure, so left as it is.
    found = detector.detect(Image.new("L", (400, 400), 255), 300)
    assert found == orientation.Orientation(0, 0.0)


def test_vertical_lines_are_suspicious_even_when_confident() -> None:
    page = OcrPage(width=100, height=1000)
    from digitizer.pipeline.ocr import OcrLine

    page.lines = [OcrLine("CỘNG HÒA XÃ HỘI", (10, 10, 40, 600), 95.0)]
    assert orientation.suspicious(page, Image.new("L", (100, 1000), 255))
    page.lines = [OcrLine("CỘNG HÒA XÃ HỘI", (10, 10, 600, 40), 95.0)]
    assert not orientation.suspicious(page, Image.new("L", (100, 1000), 255))


def test_cli_ocr_reads_an_upside_down_scan(tmp_path: pytest.TempPathFactory) -> None:
    from digitizer.cli import main

    page = generator.generate_page(11, "quyet-dinh", "dejavu-serif")
    buf = io.BytesIO()
    page.image.rotate(180).save(buf, "PNG", dpi=(300, 300))
    path = tmp_path / "upside-down.png"  # type: ignore[operator]
    path.write_bytes(buf.getvalue())
    result = CliRunner().invoke(main, ["ocr", str(path)])
    assert result.exit_code == 0, result.output
    assert cer(page.text, result.output) < 0.03


def test_pdf_page_of_a_turned_scan_is_stored_upright(
    engine: TesseractEngine, page: generator.GeneratedPage
) -> None:
    from digitizer.pipeline import textpdf

    turned = render.RenderedPage(page.image.rotate(90, expand=True), 300)
    read, ocr = read_page(engine, turned, True, orientation.OrientationDetector())
    pdf = textpdf.build_searchable_pdf([textpdf.PdfPage(ocr=ocr, image=read.image)], None)
    doc = pymupdf.open(stream=pdf, filetype="pdf")
    rect = doc[0].rect
    assert rect.height > rect.width  # portrait again
    assert cer(page.text, doc[0].get_text()) < 0.05
