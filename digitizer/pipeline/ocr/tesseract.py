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
from digitizer.pipeline.layout import Word, reading_order
from digitizer.pipeline.ocr import OcrEngineError, OcrLine, OcrPage, register
from digitizer.pipeline.ocr.leaders import erase_leaders

#: Revision of what this module does around Tesseract (image preparation, parameters, line
#: assembly): part of :attr:`TesseractEngine.version`, so a change recomputes derived objects.
#: 2: dotted form leaders erased before recognition.
REVISION = "2"

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
        # Library version, model identity and our revision: a change recomputes derived objects.
        self.version = (
            f"{tesserocr.tesseract_version().split()[1]}-{self.lang}-{digest.hexdigest()[:8]}"
            f"-r{REVISION}"
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
        """Recognise one page; lines split at column gutters and put in reading order."""
        gray = image if image.mode == "L" else image.convert("L")
        page = OcrPage(width=gray.width, height=gray.height, dpi=dpi)
        gray = erase_leaders(gray)
        lines: list[list[Word]] = []
        word_level = tesserocr.RIL.WORD
        with self._lock:
            api = self._api
            api.SetImage(gray)
            api.SetSourceResolution(dpi)
            api.Recognize()
            iterator = api.GetIterator()
            if iterator is not None:
                for item in tesserocr.iterate_level(iterator, word_level):
                    try:
                        text = (item.GetUTF8Text(word_level) or "").strip()
                    except RuntimeError:  # "No text returned": an empty region, no word
                        text = ""
                    box = item.BoundingBox(word_level)
                    if item.IsAtBeginningOf(tesserocr.RIL.TEXTLINE) or not lines:
                        lines.append([])
                    if text and box is not None:
                        lines[-1].append(Word(text, tuple(box), float(item.Confidence(word_level))))
            api.Clear()
        for segment in reading_order([line for line in lines if line]):
            page.lines.append(
                OcrLine(text=segment.text, bbox=segment.bbox, confidence=segment.confidence)
            )
        return page

    def close(self) -> None:
        """Free the native API."""
        self._api.End()


@register("tesseract")
def _factory(settings: OcrSettings) -> TesseractEngine:
    return TesseractEngine(settings)
