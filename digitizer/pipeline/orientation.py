"""Page orientation: pages scanned sideways (90/270 degrees) or upside down (180).

Tesseract's orientation detector (``osd.traineddata``, Debian ``tesseract-ocr-osd``)
is reliable but costs about half a second a page, so it runs only on suspicion,
after OCR: a page with ink that read badly (sideways and upside-down pages read
as low-confidence garbage) or whose lines run vertically. The page is then
turned and read again, and the better reading kept. Upright pages, nearly all of
them, pay nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np
import tesserocr
from PIL import Image

from digitizer.pipeline.ocr import OcrPage
from digitizer.pipeline.ocr.tesseract import find_tessdata, set_image

#: A page whose OCR confidence is under this (with ink on it) is checked for rotation.
SUSPECT_CONFIDENCE = 60.0
#: Tesseract's orientation confidence needed before a page is turned.
MIN_OSD_CONFIDENCE = 2.0


@dataclass(frozen=True)
class Orientation:
    """Degrees to turn the page counter-clockwise to make it upright, and how sure."""

    degrees: int
    confidence: float


def _thumbnail_ink(image: Image.Image, size: int = 500) -> np.ndarray | None:
    gray = np.asarray(image if image.mode == "L" else image.convert("L"))
    scale = size / max(gray.shape)
    small = cv2.resize(
        gray,
        (max(1, int(gray.shape[1] * scale)), max(1, int(gray.shape[0] * scale))),
        interpolation=cv2.INTER_AREA,
    )
    _, ink = cv2.threshold(small, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    if ink.sum() < 100 or ink.mean() > 0.5:  # blank, or a photo rather than text
        return None
    return ink


def has_ink(image: Image.Image) -> bool:
    """Whether the page has enough dark pixels to hold text."""
    return _thumbnail_ink(image) is not None


class OrientationDetector:
    """Tesseract OSD, created on first use in the process that uses it (fork-safe)."""

    def __init__(self, tessdata: str | None = None) -> None:
        self._tessdata = tessdata
        self._api: tesserocr.PyTessBaseAPI | None = None
        self._lock = threading.Lock()

    def detect(self, image: Image.Image, dpi: int) -> Orientation:
        """The turn that makes ``image`` upright; 0 with confidence 0 when unsure."""
        gray = image if image.mode == "L" else image.convert("L")
        scale = min(1.0, 150 / max(dpi, 1))
        if scale < 1.0:
            gray = gray.resize((max(1, int(gray.width * scale)), max(1, int(gray.height * scale))))
        with self._lock:
            if self._api is None:
                path = find_tessdata("osd", self._tessdata)
                self._api = tesserocr.PyTessBaseAPI(
                    path=str(path), lang="osd", psm=tesserocr.PSM.OSD_ONLY
                )
            pixels = set_image(self._api, gray)
            self._api.SetSourceResolution(max(70, int(dpi * scale)))
            try:
                result = self._api.DetectOrientationScript()
            except RuntimeError:  # too few characters to decide
                result = None
            finally:
                self._api.Clear()
                del pixels
        if not result:
            return Orientation(0, 0.0)
        degrees = int(result["orient_deg"]) % 360
        return Orientation(degrees, float(result["orient_conf"]))

    def close(self) -> None:
        if self._api is not None:
            self._api.End()
            self._api = None


def _vertical_share(ocr: OcrPage) -> float:
    """Share of the text (by characters) in lines taller than they are wide."""
    total = vertical = 0
    for line in ocr.lines:
        if len(line.text) < 5:
            continue
        x0, y0, x1, y1 = line.bbox
        total += len(line.text)
        if y1 - y0 > x1 - x0:
            vertical += len(line.text)
    return vertical / total if total else 0.0


def suspicious(ocr: OcrPage, image: Image.Image) -> bool:
    """Whether an OCR result looks like a page read sideways or upside down: low
    confidence with ink on the page, or text lines running vertically (an engine may
    read a sideways page well, but its layout and the searchable PDF are sideways)."""
    confidence = ocr.confidence
    if confidence is None:
        return has_ink(image)
    return confidence < SUSPECT_CONFIDENCE or _vertical_share(ocr) > 0.5
