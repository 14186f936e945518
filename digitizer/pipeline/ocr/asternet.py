"""Vietnamese line recognizer ``asternet`` (CTC) and the ``ppocr-vie`` engine.

Weights: ``asterocr/assets/asternet.onnx`` and ``vocab.json`` from the ``asterocr`` wheel
(MIT, pinned ``asterocr==1.0.2``). The package's Python code is never imported (it also ships
training tools and a tunnel manager, research/OCR.md): the files are located with
:func:`~digitizer.pipeline.ocr.onnx_runtime.find_package_file` and run with onnxruntime here.

``ppocr-vie`` = PP-OCRv6 text detection (:mod:`.ppocr_det`, from the ``rapidocr`` wheel) +
perspective line crops + asternet, put in reading order by :func:`digitizer.pipeline.layout.
reading_order` (two-column headers column by column).
"""

from __future__ import annotations

import json
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from digitizer.config import OcrSettings
from digitizer.pipeline.layout import Word, reading_order
from digitizer.pipeline.ocr import OcrEngineError, OcrLine, OcrPage, register
from digitizer.pipeline.ocr.onnx_runtime import (
    crop_quad,
    file_digest,
    find_package_file,
    open_session,
)
from digitizer.pipeline.ocr.ppocr_det import PpocrDetector, TextBox

__all__ = ["AsternetRecognizer", "LineResult", "PpocrVieEngine", "boxes_to_page"]

_MODEL = "assets/asternet.onnx"
_VOCAB = "assets/vocab.json"
#: Input height of the network, and the widest input its positional encoding accepts.
HEIGHT = 32
MAX_WIDTH = 1024
#: Crops are batched by similar width; this many per batch at most.
BATCH = 8


@dataclass(frozen=True)
class LineResult:
    """A recognised line crop: text (NFC) and confidence 0-100 (mean CTC peak probability)."""

    text: str
    confidence: float


class AsternetRecognizer:
    """Reads single text-line crops (uint8 grayscale arrays); weights load once."""

    def __init__(self, threads: int | None = None) -> None:
        path = find_package_file("asterocr", _MODEL, "asterocr==1.0.2")
        vocab = json.loads(find_package_file("asterocr", _VOCAB).read_text(encoding="utf-8"))
        self.chars: list[str] = list(vocab["chars"])
        self.session = open_session(path, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.version = f"asternet-{file_digest(path)}"

    # -- pre-processing ------------------------------------------------------------------
    @staticmethod
    def _resize(crop: np.ndarray) -> np.ndarray:
        h, w = crop.shape[:2]
        width = max(HEIGHT, round(w * HEIGHT / max(h, 1)))
        width = (width + 3) // 4 * 4
        interp = cv2.INTER_AREA if h > HEIGHT else cv2.INTER_CUBIC
        return cv2.resize(crop, (width, HEIGHT), interpolation=interp)

    @staticmethod
    def _split(resized: np.ndarray) -> list[np.ndarray]:
        """Cut a line wider than :data:`MAX_WIDTH` at the lightest columns (word gaps)."""
        pieces: list[np.ndarray] = []
        rest = resized
        while rest.shape[1] > MAX_WIDTH:
            ink = (255 - rest[:, : MAX_WIDTH - 4].astype(np.int32)).sum(axis=0)
            window = ink[MAX_WIDTH // 2 :]
            cut = MAX_WIDTH // 2 + int(np.argmin(window[::-1]))
            cut = len(ink) - 1 - int(np.argmin(ink[::-1][: MAX_WIDTH // 2]))
            cut = max(cut, 8) // 4 * 4 or MAX_WIDTH - 4
            pieces.append(rest[:, :cut])
            rest = rest[:, cut:]
        pieces.append(rest)
        return [p for p in pieces if p.shape[1] >= 4]

    # -- inference -------------------------------------------------------------------------
    def recognize(self, crops: Sequence[np.ndarray]) -> list[LineResult]:
        """Recognise line crops (uint8 gray, any size); one result per crop, in order."""
        pieces: list[np.ndarray] = []
        owner: list[int] = []
        for index, crop in enumerate(crops):
            if crop.size == 0 or min(crop.shape[:2]) < 2:
                continue
            for piece in self._split(self._resize(crop)):
                pieces.append(piece)
                owner.append(index)
        decoded: list[tuple[str, float, int]] = [("", 0.0, 0)] * len(pieces)
        for chunk in _batches([p.shape[1] for p in pieces]):
            width = max(pieces[i].shape[1] for i in chunk)
            batch = np.ones((len(chunk), 3, HEIGHT, width), dtype=np.float32)
            for row, i in enumerate(chunk):
                batch[row, :, :, : pieces[i].shape[1]] = pieces[i].astype(np.float32) / 255.0
            log_probs = self.session.run(None, {self.input_name: batch})[0]  # (T, B, C)
            for row, i in enumerate(chunk):
                steps = pieces[i].shape[1] // 4
                decoded[i] = self._decode(log_probs[:steps, row])
        texts: list[list[str]] = [[] for _ in crops]
        scores: list[list[tuple[float, int]]] = [[] for _ in crops]
        for (text, conf, count), index in zip(decoded, owner, strict=True):
            if text:
                texts[index].append(text)
                scores[index].append((conf, count))
        results = []
        for parts, confs in zip(texts, scores, strict=True):
            text = unicodedata.normalize("NFC", " ".join(" ".join(parts).split()))
            total = sum(c for _, c in confs)
            conf = sum(p * c for p, c in confs) / total if total else 0.0
            results.append(LineResult(text, 100.0 * conf))
        return results

    def _decode(self, log_probs: np.ndarray) -> tuple[str, float, int]:
        """Greedy CTC (blank 0): text, mean peak probability of kept steps, their count."""
        best = log_probs.argmax(axis=-1)
        if best.size == 0:
            return "", 0.0, 0
        keep = (best != 0) & np.concatenate(([True], best[1:] != best[:-1]))
        if not keep.any():
            return "", 0.0, 0
        text = "".join(self.chars[i] for i in best[keep] if i < len(self.chars))
        peaks = np.exp(log_probs[np.arange(len(best)), best][keep])
        return text, float(peaks.mean()), int(keep.sum())


def _batches(widths: Sequence[int]) -> list[list[int]]:
    """Indices grouped by similar width (padding costs the attention head quadratically)."""
    batches: list[list[int]] = []
    for i in sorted(range(len(widths)), key=lambda k: widths[k]):
        if batches and len(batches[-1]) < BATCH and widths[i] <= 1.3 * widths[batches[-1][0]]:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def boxes_to_page(
    boxes: Sequence[TextBox],
    results: Sequence[LineResult],
    width: int,
    height: int,
    dpi: int,
) -> OcrPage:
    """Lines in reading order from detected boxes and their recognised texts.

    Each box's words get x positions proportional to their length, so that a box the detector
    ran across a column gutter is still split there by :func:`reading_order`.
    """
    skew = estimate_skew(boxes)
    # Order in a deskewed frame (rotated about the page centre): on a page scanned 3 degrees
    # off, the axis-aligned boxes of neighbouring lines overlap and rows would merge.
    centre = np.array([width / 2, height / 2], dtype=np.float32)
    to_flat = _rotation(-skew)
    lines: list[list[Word]] = []
    for box, result in zip(boxes, results, strict=True):
        words = result.text.split()
        if not words:
            continue
        flat = (box.quad - centre) @ to_flat.T + centre
        x0, y0 = (int(v) for v in np.floor(flat.min(axis=0)))
        x1, y1 = (int(v) for v in np.ceil(flat.max(axis=0)))
        total = sum(len(w) + 1 for w in words) - 1
        span = max(1, x1 - x0)
        line: list[Word] = []
        pos = 0
        for word in words:
            left = x0 + span * pos // total
            pos += len(word)
            right = x0 + span * pos // total
            pos += 1
            line.append(Word(word, (left, y0, max(right, left + 1), y1), result.confidence))
        lines.append(line)
    page = OcrPage(width=width, height=height, dpi=dpi, skew=round(skew, 3))
    back = _rotation(skew)
    for segment in reading_order(lines):
        x0, y0, x1, y1 = segment.bbox
        corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)
        corners = (corners - centre) @ back.T + centre
        lo = np.clip(np.floor(corners.min(axis=0)), 0, [width, height]).astype(int)
        hi = np.clip(np.ceil(corners.max(axis=0)), 0, [width, height]).astype(int)
        bbox = (int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1]))
        page.lines.append(OcrLine(segment.text, bbox, segment.confidence))
    return page


def estimate_skew(boxes: Sequence[TextBox]) -> float:
    """Page skew in degrees (positive: text runs downhill to the right), from the slopes of
    the detected line boxes' top and bottom edges, weighted by length; 0 with too few boxes."""
    angles: list[float] = []
    weights: list[float] = []
    for box in boxes:
        tl, tr, br, bl = box.quad
        for a, b in ((tl, tr), (bl, br)):
            dx, dy = float(b[0] - a[0]), float(b[1] - a[1])
            if dx > 4 * max(1.0, abs(float(bl[1] - tl[1]))):  # long, flat boxes only
                angles.append(float(np.degrees(np.arctan2(dy, dx))))
                weights.append(dx)
    if len(angles) < 4:
        return 0.0
    order = np.argsort(angles)
    cum = np.cumsum(np.asarray(weights)[order])
    return float(np.asarray(angles)[order][np.searchsorted(cum, cum[-1] / 2)])


def _rotation(degrees: float) -> np.ndarray:
    rad = np.radians(degrees)
    c, s = np.cos(rad), np.sin(rad)
    return np.array([[c, -s], [s, c]], dtype=np.float32)


def _gray(image: Image.Image) -> np.ndarray:
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    arr = np.asarray(image)
    return arr if arr.ndim == 2 else cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)


class PpocrVieEngine:
    """PP-OCRv6 detection + asternet recognition on perspective line crops."""

    name = "ppocr-vie"

    def __init__(self, settings: OcrSettings) -> None:
        self.settings = settings
        self.detector = PpocrDetector()
        self.recognizer = AsternetRecognizer()
        self.version = f"{self.detector.version}+{self.recognizer.version}"
        self._lock = threading.Lock()

    def read(self, gray: np.ndarray, dpi: int) -> tuple[list[TextBox], list[LineResult]]:
        """Detected boxes and their recognised lines (detector order), for composite engines."""
        boxes = self.detector.detect(gray, dpi)
        crops = [crop_quad(gray, box.quad) for box in boxes]
        return boxes, self.recognizer.recognize(crops)

    def recognize(self, image: Image.Image, dpi: int) -> OcrPage:
        """Recognise one page image."""
        if image.width < 1 or image.height < 1:
            raise OcrEngineError("empty image")
        gray = _gray(image)
        with self._lock:
            boxes, results = self.read(gray, dpi)
        return boxes_to_page(boxes, results, image.width, image.height, dpi)


@register("ppocr-vie")
def _factory(settings: OcrSettings) -> PpocrVieEngine:
    return PpocrVieEngine(settings)
