"""The default engine re-reads the words Tesseract doubts with asternet, and only those."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitizer.config import OcrSettings
from digitizer.pipeline.layout import Word
from digitizer.pipeline.ocr import tesseract
from fixtures.generator import FONTS, _font

FONT = "dejavu-serif" if "dejavu-serif" in FONTS else sorted(FONTS)[0]  # training split


@pytest.fixture(scope="module")
def engine() -> tesseract.TesseractEngine:
    return tesseract.TesseractEngine(OcrSettings())


def _line(text: str) -> np.ndarray:
    image = Image.new("L", (1800, 160), 255)
    ImageDraw.Draw(image).text(
        (40, 110), text, font=_font(FONT, "regular", 58), fill=0, anchor="ls"
    )
    return np.asarray(image)


def _words(engine: tesseract.TesseractEngine, gray: np.ndarray) -> list[Word]:
    """Tesseract's words of a one-line image, with their boxes."""
    level = tesseract.tesserocr.RIL.WORD
    api = engine._api
    api.SetImage(Image.fromarray(gray))
    api.Recognize()
    words = [
        Word((item.GetUTF8Text(level) or "").strip(), item.BoundingBox(level), 99.0)
        for item in tesseract.tesserocr.iterate_level(api.GetIterator(), level)
    ]
    api.Clear()
    return words


def test_doubtful_word_is_re_read_and_a_sure_one_is_kept(engine: tesseract.TesseractEngine) -> None:
    gray = _line("Họ và tên: Đinh Thị Hằng")
    words = _words(engine, gray)
    texts = [w.text for w in words]
    assert "Đinh" in texts and "Hằng" in texts
    name = texts.index("Đinh")
    last = texts.index("Hằng")
    # Tesseract's typical slips, one doubted and one read with confidence.
    words[name] = Word("Đỉnh", words[name].bbox, 40.0)
    words[last] = Word("Hẳng", words[last].bbox, 99.0)
    fixed = engine._reread([words], gray)[0]
    assert fixed[name].text == "Đinh"
    assert fixed[name].confidence >= tesseract.ACCEPT_FROM
    assert fixed[last].text == "Hẳng"  # not doubted: not re-read
    assert [w.bbox for w in fixed] == [w.bbox for w in words]


def test_page_without_doubt_does_not_load_asternet() -> None:
    fresh = tesseract.TesseractEngine(OcrSettings())
    words = [Word("Hà", (0, 0, 10, 10), 96.0), Word("Nội", (12, 0, 30, 10), 93.0)]
    assert fresh._reread([words], np.full((20, 40), 255, np.uint8)) == [words]
    assert fresh._reader is None


class _Failing:
    def recognize(self, crops: list[np.ndarray]) -> list[object]:
        raise RuntimeError("onnxruntime: bad input shape")


def test_failing_re_read_keeps_tesseracts_words(engine: tesseract.TesseractEngine) -> None:
    gray = _line("Họ và tên: Đinh Thị Hằng")
    words = [Word("Đỉnh", (600, 40, 760, 130), 40.0), Word("Hằng", (900, 40, 1100, 130), 99.0)]
    saved = engine._reader
    engine._reader = _Failing()  # type: ignore[assignment]
    try:
        assert engine._reread([words], gray) == [words]
    finally:
        engine._reader = saved


def test_word_outside_the_image_is_not_re_read(engine: tesseract.TesseractEngine) -> None:
    gray = _line("Họ và tên: Đinh Thị Hằng")
    words = _words(engine, gray)
    name = [w.text for w in words].index("Đinh")
    words[name] = Word("Đỉnh", words[name].bbox, 40.0)
    # a doubted word whose box lies past the page's right edge: an empty crop
    off_page = Word("x", (5000, 40, 5100, 130), 10.0)
    fixed = engine._reread([[*words, off_page]], gray)[0]
    assert fixed[name].text == "Đinh"
    assert fixed[-1] == off_page
