"""Reading a page never saves its image: the pipeline JPEG-encodes the same image on a
helper thread, and PIL keeps a save's encoder options on the image object, so two saves
at once mix their options (a document once failed with "TypeError: function takes at
most 4 arguments (18 given)")."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator

import pytest
from PIL import Image, ImageDraw

from digitizer.config import OcrSettings
from digitizer.pipeline.ocr import tesseract
from digitizer.pipeline.orientation import OrientationDetector
from fixtures.generator import FONTS, _font

FONT = "dejavu-serif" if "dejavu-serif" in FONTS else sorted(FONTS)[0]


@pytest.fixture(scope="module")
def engine() -> tesseract.TesseractEngine:
    return tesseract.TesseractEngine(OcrSettings())


@pytest.fixture()
def page() -> Image.Image:
    image = Image.new("L", (1400, 400), 255)
    draw = ImageDraw.Draw(image)
    lines = ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc"]
    for row, text in enumerate(lines):
        draw.text((40, 120 + 140 * row), text, font=_font(FONT, "regular", 48), fill=0, anchor="ls")
    return image


@pytest.fixture()
def saving_forbidden(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Image.Image]]:
    saved: list[Image.Image] = []

    def save(self: Image.Image, *args: object, **kwargs: object) -> None:
        saved.append(self)
        raise AssertionError("a page image was saved while being read")

    monkeypatch.setattr(Image.Image, "save", save)
    yield saved


def test_reading_a_page_does_not_save_its_image(
    engine: tesseract.TesseractEngine, page: Image.Image, saving_forbidden: list[Image.Image]
) -> None:
    result = engine.recognize(page, 300)
    assert not saving_forbidden
    assert "Hạnh phúc" in " ".join(line.text for line in result.lines)


def test_orientation_check_does_not_save_the_image(
    page: Image.Image, saving_forbidden: list[Image.Image]
) -> None:
    detector = OrientationDetector()
    try:
        detector.detect(page, 150)  # at 150 dpi the detector reads the very image it is given
    finally:
        detector.close()
    assert not saving_forbidden


def test_page_read_while_its_jpeg_is_encoded(
    engine: tesseract.TesseractEngine, page: Image.Image
) -> None:
    """The pipeline's overlap, run many times: every read succeeds and reads the same."""
    stop = threading.Event()
    encoded: list[int] = []
    errors: list[BaseException] = []

    def encode() -> None:
        while not stop.is_set():
            out = io.BytesIO()
            try:
                page.save(out, format="JPEG", quality=80)
            except BaseException as exc:  # reported below
                errors.append(exc)
                return
            encoded.append(len(out.getvalue()))

    helper = threading.Thread(target=encode)
    helper.start()
    try:
        texts = {tuple(line.text for line in engine.recognize(page, 300).lines) for _ in range(12)}
    finally:
        stop.set()
        helper.join(timeout=30)
    assert not errors
    assert encoded
    assert len(texts) == 1


def test_set_image_wants_greyscale(engine: tesseract.TesseractEngine) -> None:
    with pytest.raises(ValueError, match="greyscale"):
        tesseract.set_image(engine._api, Image.new("RGB", (10, 10)))
