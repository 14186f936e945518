"""Model files are found as package data, without running the packages' code."""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np
import pytest

from digitizer.pipeline.ocr import OcrEngineError
from digitizer.pipeline.ocr.onnx_runtime import (
    crop_quad,
    file_digest,
    find_package_file,
    open_session,
    order_quad,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def test_finds_wheel_files_without_importing_the_package() -> None:
    sys.modules.pop("asterocr", None)
    onnx = find_package_file("asterocr", "assets/asternet.onnx")
    vocab = find_package_file("asterocr", "assets/vocab.json")
    det = find_package_file("rapidocr", "models/PP-OCRv6_det_small.onnx")
    assert onnx.stat().st_size > 1_000_000 and vocab.is_file() and det.is_file()
    # The supply-chain rule of research/OCR.md: asterocr's Python code never runs.
    assert "asterocr" not in sys.modules
    assert len(file_digest(det)) == 8


def test_missing_package_or_file_is_a_clear_error() -> None:
    with pytest.raises(OcrEngineError, match="pip install"):
        find_package_file("no_such_package_sohoa", "x.onnx")
    with pytest.raises(OcrEngineError, match="not found"):
        find_package_file("rapidocr", "models/none.onnx")


def test_open_session_rejects_a_broken_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(OcrEngineError):
        open_session(bad, threads=1)


def test_order_quad_and_perspective_crop_straighten_a_rotated_line() -> None:
    image = np.full((200, 400), 255, np.uint8)
    rect = ((200.0, 100.0), (300.0, 40.0), 4.0)
    cv2.fillPoly(image, [cv2.boxPoints(rect).astype(np.int32)], 0)
    shuffled = cv2.boxPoints(rect)[[2, 0, 3, 1]]
    quad = order_quad(shuffled)
    assert quad[0][0] < quad[1][0] and quad[0][1] < quad[3][1]
    crop = crop_quad(image, quad)
    assert abs(crop.shape[1] - 300) <= 2 and abs(crop.shape[0] - 40) <= 2
    assert crop[5:-5, 5:-5].mean() < 10  # all ink: the rotated bar came out upright
