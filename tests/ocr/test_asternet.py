"""asternet line recognizer (ONNX from the asterocr wheel) and the ``ppocr-vie`` engine.

CER bounds are the values measured on these pages (train split, research notes) with margin.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from digitizer.config import OcrSettings
from digitizer.pipeline.ocr import OcrPage
from digitizer.pipeline.ocr.asternet import HEIGHT, MAX_WIDTH, AsternetRecognizer, PpocrVieEngine
from fixtures import generator
from fixtures.metrics import aligned_cer, cer

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def engine() -> PpocrVieEngine:
    return PpocrVieEngine(OcrSettings(engine="ppocr-vie"))


def _crop(page: generator.GeneratedPage, index: int, pad: int = 6) -> np.ndarray:
    x0, y0, x1, y1 = page.lines[index].bbox
    gray = np.asarray(page.image.convert("L"))
    return gray[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad]


def test_recognizer_spells_vietnamese_lines(engine: PpocrVieEngine) -> None:
    page = generator.generate_page(11, "van-ban", "noto-sans")
    crops = [_crop(page, i) for i in range(8)]
    results = engine.recognizer.recognize(crops)
    text = "\n".join(r.text for r in results)
    reference = "\n".join(ln.text for ln in page.lines[:8])
    assert cer(reference, text) < 0.02
    assert all(50 < r.confidence <= 100 for r in results)


def test_recognizer_splits_lines_wider_than_the_network(engine: PpocrVieEngine) -> None:
    page = generator.generate_page(11, "van-ban", "noto-sans")
    a, b = _crop(page, 2), _crop(page, 3)
    height = min(a.shape[0], b.shape[0])
    wide = np.hstack([a[:height], np.full((height, height), 255, np.uint8), b[:height]])
    assert wide.shape[1] * HEIGHT / height > MAX_WIDTH  # would crash the network unsplit
    (result,) = engine.recognizer.recognize([wide])
    assert cer(page.lines[2].text + " " + page.lines[3].text, result.text) < 0.03


def test_recognizer_handles_empty_input() -> None:
    recognizer = AsternetRecognizer(threads=1)
    assert recognizer.recognize([]) == []
    blank = recognizer.recognize([np.zeros((0, 0), np.uint8), np.full((1, 1), 255, np.uint8)])
    assert [r.text for r in blank] == ["", ""]


@pytest.mark.parametrize(
    ("seed", "template", "font", "degraded", "bound"),
    [
        (2, "quyet-dinh", "noto-sans", False, 0.01),
        (2, "quyet-dinh", "noto-sans", True, 0.01),
        (3, "trich-luc-khai-sinh", "liberation-sans", True, 0.01),
    ],
)
def test_ppocr_vie_page_cer(
    engine: PpocrVieEngine, seed: int, template: str, font: str, degraded: bool, bound: float
) -> None:
    page = generator.generate_page(seed, template, font, degraded=degraded)
    out = engine.recognize(page.image, 300)
    assert isinstance(out, OcrPage) and out.width == page.image.width
    assert cer(page.text, out.text) < bound  # header read column by column, as the truth
    words = [(ln.text, ln.bbox) for ln in out.lines]
    assert aligned_cer([(ln.text, ln.bbox) for ln in page.lines], words) < bound
    assert out.confidence is not None and out.confidence > 90
    assert out.from_dict(out.to_dict()).text == out.text


@pytest.mark.parametrize("size", [(1, 1), (2480, 3508), (20000, 20000)])
def test_blank_pages_give_an_empty_result(engine: PpocrVieEngine, size: tuple[int, int]) -> None:
    out = engine.recognize(Image.new("L", size, 255), 300)
    assert out.lines == [] and out.confidence is None


def test_photo_without_text_gives_little_or_nothing(engine: PpocrVieEngine) -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(128, 40, (600, 800)).clip(0, 255).astype(np.uint8)
    photo = Image.fromarray(noise).resize((1600, 1200), Image.Resampling.BICUBIC)
    out = engine.recognize(photo.convert("RGB"), 300)
    assert len(out.text) < 40
