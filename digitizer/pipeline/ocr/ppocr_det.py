"""PP-OCR text detection (DB) from the ONNX file shipped in the ``rapidocr`` wheel.

Only the model file is used (``rapidocr/models/PP-OCRv6_det_small.onnx``); no ``rapidocr`` code
is imported. Pre-processing and the DB post-processing (probability map -> threshold -> contours
-> minimum-area rectangles -> unclip) are re-implemented here with OpenCV and NumPy, so the
``pyclipper``/``shapely`` dependencies of rapidocr are not needed: the unclip of a rectangle is
done analytically (offset by ``area * ratio / perimeter`` on every side), which is what the
polygon offset does for the rectangles DB boxes are reduced to.

Pinned: ``rapidocr==3.10.0`` (the detector file's identity is also part of ``version``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from digitizer.pipeline.ocr.onnx_runtime import (
    file_digest,
    find_package_file,
    open_session,
    order_quad,
)

__all__ = ["DET_MODEL", "PpocrDetector", "TextBox"]

#: The detector inside the ``rapidocr`` wheel.
DET_MODEL = "models/PP-OCRv6_det_small.onnx"


@dataclass(frozen=True)
class TextBox:
    """One detected text line: a quadrilateral (TL, TR, BR, BL) in image pixels and its score."""

    quad: np.ndarray
    score: float

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """Axis-aligned (x0, y0, x1, y1)."""
        xs, ys = self.quad[:, 0], self.quad[:, 1]
        return (
            int(np.floor(xs.min())),
            int(np.floor(ys.min())),
            int(np.ceil(xs.max())),
            int(np.ceil(ys.max())),
        )


class PpocrDetector:
    """PP-OCRv6 small DB detector on onnxruntime (weights loaded once).

    Args:
        det_dpi: the page is resized to this resolution before detection (text lines of 10-14 pt
            are 20-30 px high at 150 dpi, well within what DB was trained on; 300 dpi costs 4x).
        thresh: probability threshold for the text mask.
        box_thresh: minimum mean probability inside a box to keep it.
        unclip_ratio: how far boxes grow past the shrunk text kernel (DB default 1.5-2.0).
        max_side: cap on the longer side fed to the network (bounds time and memory).
    """

    def __init__(
        self,
        det_dpi: int = 150,
        thresh: float = 0.3,
        box_thresh: float = 0.5,
        unclip_ratio: float = 1.6,
        max_side: int = 2400,
        threads: int | None = None,
    ) -> None:
        path = find_package_file("rapidocr", DET_MODEL, "rapidocr==3.10.0")
        self.session = open_session(path, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.det_dpi = det_dpi
        self.thresh = thresh
        self.box_thresh = box_thresh
        self.unclip_ratio = unclip_ratio
        self.max_side = max_side
        self.version = (
            f"ppocrv6s-{file_digest(path)}-{det_dpi}-{thresh}-{box_thresh}-{unclip_ratio}"
        )

    # -- pre-processing -------------------------------------------------------------------
    def _scale(self, width: int, height: int, dpi: int) -> float:
        scale = self.det_dpi / dpi if dpi > 0 else 1.0
        scale = min(scale, self.max_side / max(width, height, 1))
        return max(scale, 32 / max(min(width, height), 1)) if min(width, height) > 0 else 1.0

    @staticmethod
    def _tensor(pixels: np.ndarray, scale: float) -> tuple[np.ndarray, float, float]:
        """Resize first (a 20000 px scan is never copied to RGB at full size), then 3 channels."""
        h, w = pixels.shape[:2]
        new_h = max(32, int(h * scale / 32 + 0.5) * 32)
        new_w = max(32, int(w * scale / 32 + 0.5) * 32)
        interp = cv2.INTER_AREA if new_w < w else cv2.INTER_LINEAR
        resized = _as_rgb(cv2.resize(pixels, (new_w, new_h), interpolation=interp))
        arr = (resized.astype(np.float32) / 255.0 - 0.5) / 0.5
        return arr.transpose(2, 0, 1)[np.newaxis], w / new_w, h / new_h

    # -- inference ---------------------------------------------------------------------------
    def probability_map(self, image: Image.Image | np.ndarray, dpi: int = 300) -> np.ndarray:
        """The DB text probability map at network resolution (for tests and debugging)."""
        pixels = _pixels(image)
        tensor, _, _ = self._tensor(pixels, self._scale(pixels.shape[1], pixels.shape[0], dpi))
        return self.session.run(None, {self.input_name: tensor})[0][0, 0]

    def detect(self, image: Image.Image | np.ndarray, dpi: int = 300) -> list[TextBox]:
        """Text line boxes, top to bottom then left to right, in input-image pixels."""
        pixels = _pixels(image)
        height, width = pixels.shape[:2]
        if width < 8 or height < 8:
            return []
        tensor, sx, sy = self._tensor(pixels, self._scale(width, height, dpi))
        prob = self.session.run(None, {self.input_name: tensor})[0][0, 0]
        boxes = self.boxes_from_map(prob)
        out: list[TextBox] = []
        for quad, score in boxes:
            quad = quad * np.array([sx, sy], dtype=np.float32)
            quad[:, 0] = np.clip(quad[:, 0], 0, width)
            quad[:, 1] = np.clip(quad[:, 1], 0, height)
            out.append(TextBox(order_quad(quad), score))
        out.sort(key=lambda b: (b.bbox[1], b.bbox[0]))
        return out

    def boxes_from_map(self, prob: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """DB post-processing: quadrilaterals (in map pixels) and scores from a probability map."""
        mask = cv2.dilate((prob > self.thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        results: list[tuple[np.ndarray, float]] = []
        for contour in contours[:1000]:
            if len(contour) < 4:
                continue
            (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
            if min(w, h) < 3:
                continue
            score = _box_score(prob, contour.reshape(-1, 2))
            if score < self.box_thresh:
                continue
            area, perimeter = w * h, 2 * (w + h)
            distance = area * self.unclip_ratio / perimeter
            rect = ((cx, cy), (w + 2 * distance, h + 2 * distance), angle)
            if min(rect[1]) < 5:
                continue
            results.append((cv2.boxPoints(rect).astype(np.float32), score))
        return results


def _box_score(prob: np.ndarray, points: np.ndarray) -> float:
    """Mean probability inside the contour (DB's 'slow' score, robust for thin lines)."""
    x0, y0 = np.maximum(points.min(axis=0), 0)
    x1 = min(int(points[:, 0].max()), prob.shape[1] - 1)
    y1 = min(int(points[:, 1].max()), prob.shape[0] - 1)
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    cv2.fillPoly(mask, [(points - [x0, y0]).astype(np.int32)], (1.0,))
    return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def _pixels(image: Image.Image | np.ndarray) -> np.ndarray:
    """Gray or RGB uint8 array (gray stays gray: cheaper to resize)."""
    if isinstance(image, np.ndarray):
        return image
    if image.mode not in ("L", "RGB"):
        image = image.convert("L" if image.mode in ("1", "I;16", "I", "F", "LA") else "RGB")
    return np.asarray(image)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    return image
