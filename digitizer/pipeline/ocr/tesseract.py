"""Tesseract through ``tesserocr`` (in-process: the model loads once per worker).

Weights: Debian's ``tesseract-ocr-vie`` package (``vie.traineddata``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import tesserocr
from PIL import Image

from digitizer.config import OcrSettings
from digitizer.pipeline.ocr import OcrEngineError, OcrLine, OcrPage, register

_CANDIDATES = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
)


def find_tessdata(lang: str, configured: str | None = None) -> Path:
    """The tessdata folder that holds ``{lang}.traineddata`` for every language of ``lang``."""
    candidates = [configured] if configured else []
    if os.environ.get("TESSDATA_PREFIX"):
        candidates.append(os.environ["TESSDATA_PREFIX"])
    candidates.extend(_CANDIDATES)
    wanted = lang.split("+")
    for folder in candidates:
        if folder and all((Path(folder) / f"{code}.traineddata").is_file() for code in wanted):
            return Path(folder)
    raise OcrEngineError(
        f"no tessdata folder with {lang}.traineddata; install Debian's tesseract-ocr-{wanted[0]} "
        "or set SOHOA_OCR__TESSDATA"
    )


class TesseractEngine:
    """Tesseract LSTM, page segmentation ``AUTO`` (layout analysis finds columns)."""

    name = "tesseract"

    def __init__(self, settings: OcrSettings) -> None:
        self.lang = settings.lang
        self.tessdata = find_tessdata(settings.lang, settings.tessdata)
        digest = hashlib.sha256()
        for code in self.lang.split("+"):
            stat = (self.tessdata / f"{code}.traineddata").stat()
            digest.update(f"{code}:{stat.st_size}".encode())
        # Library version and model identity: a new model recomputes derived objects.
        self.version = (
            f"{tesserocr.tesseract_version().split()[1]}-{self.lang}-{digest.hexdigest()[:8]}"
        )
        self._api = tesserocr.PyTessBaseAPI(
            path=str(self.tessdata),
            lang=self.lang,
            psm=tesserocr.PSM.AUTO,
            oem=tesserocr.OEM.LSTM_ONLY,
        )
        # The API object holds state between SetImage and the iterator; one page at a time.
        self._lock = threading.Lock()

    def recognize(self, image: Image.Image, dpi: int) -> OcrPage:
        """Recognise one page; lines in Tesseract's reading order (blocks, then lines)."""
        gray = image if image.mode == "L" else image.convert("L")
        page = OcrPage(width=gray.width, height=gray.height, dpi=dpi)
        level = tesserocr.RIL.TEXTLINE
        with self._lock:
            api = self._api
            api.SetImage(gray)
            api.SetSourceResolution(dpi)
            api.Recognize()
            iterator = api.GetIterator()
            if iterator is None:
                return page
            for item in tesserocr.iterate_level(iterator, level):
                text = (item.GetUTF8Text(level) or "").strip()
                box = item.BoundingBox(level)
                if not text or box is None:
                    continue
                page.lines.append(
                    OcrLine(text=text, bbox=tuple(box), confidence=float(item.Confidence(level)))
                )
            api.Clear()
        return page

    def close(self) -> None:
        """Free the native API."""
        self._api.End()


@register("tesseract")
def _factory(settings: OcrSettings) -> TesseractEngine:
    return TesseractEngine(settings)
