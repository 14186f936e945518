"""``trueocr`` (fast, whole-page Vietnamese OCR) and the ``cascade`` engine built on it.

``trueocr`` (Apache-2.0, pinned ``trueocr==0.1.1``; it imports only numpy, OpenCV, Pillow and
onnxruntime, and its ONNX detector, orientation, reading-order and recognizer models ship in
the wheel) deskews and turns the page upright itself, so its line boxes are axis-aligned in
that corrected frame. ``OcrPage.skew`` records the correction; boxes are in the corrected frame.

``cascade``: trueocr reads the page; every line whose confidence is below
``CASCADE_THRESHOLD`` is cropped from trueocr's corrected page and re-read by asternet
(:mod:`.asternet`), which is slower but spells Vietnamese better; the re-read wins when its
confidence is higher. With ``SOHOA_OCR__ENGINE=cascade`` most lines cost trueocr's price only.
"""

from __future__ import annotations

import os
import threading

import numpy as np
from PIL import Image

from digitizer.config import OcrSettings
from digitizer.pipeline.layout import Word, reading_order
from digitizer.pipeline.ocr import OcrEngineError, OcrLine, OcrPage, register
from digitizer.pipeline.ocr.onnx_runtime import default_threads, file_digest, find_package_file

__all__ = ["CASCADE_THRESHOLD", "CascadeEngine", "TrueocrEngine"]

#: trueocr line confidence (0-100) under which ``cascade`` re-reads a line with asternet.
CASCADE_THRESHOLD = float(os.environ.get("SOHOA_OCR_CASCADE_THRESHOLD", "97"))


class TrueocrEngine:
    """trueocr page mode: its detector, orientation and deskew, its recognizer."""

    name = "trueocr"

    def __init__(self, settings: OcrSettings) -> None:
        try:
            import trueocr
        except ImportError as exc:  # a default dependency: a broken install
            raise OcrEngineError("trueocr is not installed: pip install trueocr==0.1.1") from exc
        self.settings = settings
        rec = find_package_file("trueocr", "models/rec.onnx", "trueocr==0.1.1")
        self.version = f"trueocr-{trueocr.__version__}-{file_digest(rec)}"
        self._ocr = trueocr.TrueOCR(
            trueocr.OCRConfig(mode="page", threads=default_threads(), save_outputs=False)
        )
        self._lock = threading.Lock()

    def read(self, image: Image.Image) -> tuple[np.ndarray, float, list[dict[str, object]]]:
        """trueocr's corrected gray page, its skew in degrees and its lines (its own order)."""
        if image.width < 1 or image.height < 1:
            raise OcrEngineError("empty image")
        with self._lock:
            result = self._ocr.predict(image.convert("RGB"), save=False)
        gray = np.asarray(result.image.convert("L"))
        skew = float(result.data.get("skew_degrees", 0.0)) + float(
            result.data.get("rotation_clockwise_degrees", 0)
        )
        return gray, skew, list(result.lines)

    def recognize(self, image: Image.Image, dpi: int) -> OcrPage:
        """Recognise one page image."""
        gray, skew, lines = self.read(image)
        return _to_page(lines, gray.shape[1], gray.shape[0], dpi, skew)


def _to_page(
    lines: list[dict[str, object]], width: int, height: int, dpi: int, skew: float
) -> OcrPage:
    """Lines (text, bbox, confidence 0-1) -> OcrPage in our reading order."""
    words_by_line: list[list[Word]] = []
    for line in lines:
        text = str(line["text"])
        words = text.split()
        if not words:
            continue
        x0, y0, x1, y1 = (int(v) for v in line["bbox"])  # type: ignore[attr-defined]
        conf = 100.0 * float(line["confidence"])  # type: ignore[arg-type]
        total = sum(len(w) + 1 for w in words) - 1
        span = max(1, x1 - x0)
        pos = 0
        row: list[Word] = []
        for word in words:
            left = x0 + span * pos // total
            pos += len(word)
            right = x0 + span * pos // total
            pos += 1
            row.append(Word(word, (left, y0, max(right, left + 1), y1), conf))
        words_by_line.append(row)
    page = OcrPage(width=width, height=height, dpi=dpi, skew=round(skew, 3))
    for segment in reading_order(words_by_line):
        page.lines.append(OcrLine(segment.text, segment.bbox, segment.confidence))
    return page


class CascadeEngine:
    """trueocr first; lines under :data:`CASCADE_THRESHOLD` re-read by asternet."""

    name = "cascade"

    def __init__(self, settings: OcrSettings, threshold: float = CASCADE_THRESHOLD) -> None:
        from digitizer.pipeline.ocr.asternet import AsternetRecognizer

        self.fast = TrueocrEngine(settings)
        self.accurate = AsternetRecognizer()
        self.threshold = threshold
        self.version = f"{self.fast.version}+{self.accurate.version}@{threshold:g}"
        #: Lines re-read in the last page (for benchmarks and logs).
        self.last_reread = 0

    def recognize(self, image: Image.Image, dpi: int) -> OcrPage:
        """Recognise one page image."""
        gray, skew, lines = self.fast.read(image)
        weak = [i for i, ln in enumerate(lines) if 100.0 * float(ln["confidence"]) < self.threshold]  # type: ignore[arg-type]
        crops = []
        for i in weak:
            x0, y0, x1, y1 = (int(v) for v in lines[i]["bbox"])  # type: ignore[attr-defined]
            pad = max(1, (y1 - y0) // 10)
            crops.append(gray[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad])
        for i, result in zip(weak, self.accurate.recognize(crops), strict=True):
            if result.text and result.confidence > 100.0 * float(lines[i]["confidence"]):  # type: ignore[arg-type]
                lines[i] = {**lines[i], "text": result.text, "confidence": result.confidence / 100}
        self.last_reread = len(weak)
        return _to_page(lines, gray.shape[1], gray.shape[0], dpi, skew)


@register("trueocr")
def _factory(settings: OcrSettings) -> TrueocrEngine:
    return TrueocrEngine(settings)


@register("cascade")
def _cascade_factory(settings: OcrSettings) -> CascadeEngine:
    return CascadeEngine(settings)
