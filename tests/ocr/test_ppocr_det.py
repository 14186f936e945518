"""PP-OCRv6 detection (ONNX from the rapidocr wheel) and its DB post-processing."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from digitizer.pipeline.ocr.asternet import estimate_skew
from digitizer.pipeline.ocr.ppocr_det import PpocrDetector
from fixtures import generator

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def detector() -> PpocrDetector:
    return PpocrDetector(threads=2)


def _covered(ref: tuple[int, int, int, int], boxes: list[tuple[int, int, int, int]]) -> bool:
    """Some detected box overlaps the reference line box by at least 60% of its area."""
    x0, y0, x1, y1 = ref
    area = max(1, (x1 - x0) * (y1 - y0))
    for a0, b0, a1, b1 in boxes:
        w, h = min(x1, a1) - max(x0, a0), min(y1, b1) - max(y0, b0)
        if w > 0 and h > 0 and w * h / area >= 0.6:
            return True
    return False


def test_db_postprocessing_on_a_synthetic_map(detector: PpocrDetector) -> None:
    prob = np.zeros((100, 300), np.float32)
    prob[40:50, 20:220] = 0.9  # one line's shrunk kernel
    prob[80:82, 10:12] = 0.9  # a speck: too small
    boxes = detector.boxes_from_map(prob)
    assert len(boxes) == 1
    quad, score = boxes[0]
    assert score > 0.7
    xs, ys = quad[:, 0], quad[:, 1]
    # unclipped: grows past the kernel on every side
    assert xs.min() < 20 and xs.max() > 219 and ys.min() < 40 and ys.max() > 49


@pytest.mark.parametrize("degraded", [False, True])
def test_detects_every_line_of_a_generated_page(detector: PpocrDetector, degraded: bool) -> None:
    page = generator.generate_page(4, "quyet-dinh", "dejavu-sans", degraded=degraded)
    boxes = [b.bbox for b in detector.detect(page.image, 300)]
    missed = [ln.text for ln in page.lines if not _covered(ln.bbox, boxes)]
    assert len(missed) <= 1, missed
    assert len(boxes) <= len(page.lines) + 3


def test_skew_is_measured_from_the_boxes(detector: PpocrDetector) -> None:
    page = generator.generate_page(5, "cong-van", "dejavu-serif")
    rotated = page.image.rotate(2.0, expand=False, fillcolor=255)  # counter-clockwise
    skew = estimate_skew(detector.detect(rotated, 300))
    assert skew == pytest.approx(-2.0, abs=0.4)


@pytest.mark.parametrize("size", [(1, 1), (5, 400), (2480, 3508)])
def test_blank_and_tiny_images_give_no_boxes(
    detector: PpocrDetector, size: tuple[int, int]
) -> None:
    assert detector.detect(Image.new("L", size, 255), 300) == []
