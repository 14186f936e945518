"""Tesseract through ``tesserocr`` (in-process: the model loads once per worker).

Weights: Debian's ``tesseract-ocr-vie`` package (``vie.traineddata``).

Before recognition, dotted form leaders are erased (:mod:`.leaders`). After it, every word
Tesseract is unsure of (confidence under :data:`REREAD_BELOW`) is cropped at its line's height
and re-read by the asternet line recogniser (:mod:`.asternet`, weights from the ``asterocr``
wheel): Tesseract's doubtful words are mostly a wrong tone or vowel mark ("Đỉnh" for "Đinh",
"BĂNG" for "BẰNG"), which asternet spells better. The re-reading replaces the word only when it
is one word read with confidence :data:`ACCEPT_FROM` or more. Two or three words a page are
re-read, a few hundredths of a second; asternet loads on the first doubtful word.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import tesserocr
from PIL import Image

from digitizer.config import OcrSettings
from digitizer.pipeline.layout import Word, reading_order
from digitizer.pipeline.ocr import OcrEngineError, OcrLine, OcrPage, register
from digitizer.pipeline.ocr.leaders import erase_leaders

if TYPE_CHECKING:
    from digitizer.pipeline.ocr.asternet import AsternetRecognizer

log = logging.getLogger(__name__)

#: Revision of what this module does around Tesseract (image preparation, parameters, line
#: assembly): part of :attr:`TesseractEngine.version`, so a change recomputes derived objects.
#: 2: dotted form leaders erased before recognition. 3: doubtful words re-read by asternet,
#: one column page segmentation, specks dropped.
REVISION = "3"
#: Page segmentation: one column of lines of any size. Tesseract's automatic layout analysis
#: (``AUTO``) made a block of a blank form's list numbers ("1." to "10." under each other) and
#: read them as a column of noise; columns are found by :mod:`digitizer.pipeline.layout` instead.
PSM = tesserocr.PSM.SINGLE_COLUMN
#: A "word" with no letter or digit read with a confidence under this is a speck, not text
#: (a stray mark in a header's gutter would otherwise join the two columns).
SPECK_BELOW = 60.0
#: Words Tesseract reads with a confidence under this are re-read by asternet...
REREAD_BELOW = 90.0
#: ...whose reading replaces them when it is one word with at least this confidence.
ACCEPT_FROM = 95.0

_CANDIDATES = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
)


def set_image(api: tesserocr.PyTessBaseAPI, gray: Image.Image) -> bytes:
    """Give ``api`` a greyscale page as raw pixels; returns the buffer, which the caller
    keeps until recognition is over.

    ``api.SetImage(image)`` would ``save`` the image as BMP, and ``Image.save`` keeps its
    encoder options on the image object itself: a page image that another thread is
    saving meanwhile (the pipeline encodes the searchable PDF's JPEG beside the OCR)
    hands one encoder the other's options ("function takes at most 4 arguments (18
    given)"). Raw bytes only read the pixels, and skip a BMP round trip.
    """
    if gray.mode != "L":
        raise ValueError(f"expected a greyscale (L) image, got {gray.mode}")
    pixels = gray.tobytes()
    api.SetImageBytes(pixels, gray.width, gray.height, 1, gray.width)
    return pixels


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
            psm=PSM,
            oem=tesserocr.OEM.LSTM_ONLY,
        )
        # The API object holds state between SetImage and the iterator; one page at a time.
        self._lock = threading.Lock()
        self._reader: AsternetRecognizer | None = None
        self._reader_missing = False

    def recognize(self, image: Image.Image, dpi: int) -> OcrPage:
        """Recognise one page; lines split at column gutters and put in reading order."""
        gray = image if image.mode == "L" else image.convert("L")
        page = OcrPage(width=gray.width, height=gray.height, dpi=dpi)
        gray = erase_leaders(gray)
        lines: list[list[Word]] = []
        word_level = tesserocr.RIL.WORD
        with self._lock:
            api = self._api
            pixels = set_image(api, gray)
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
                    confidence = float(item.Confidence(word_level))
                    if text and box is not None and not _speck(text, confidence):
                        lines[-1].append(Word(text, tuple(box), confidence))
            api.Clear()
            del pixels
            lines = self._reread([line for line in lines if line], np.asarray(gray))
        for segment in reading_order(lines):
            page.lines.append(
                OcrLine(text=segment.text, bbox=segment.bbox, confidence=segment.confidence)
            )
        return page

    def _recognizer(self) -> AsternetRecognizer | None:
        """asternet, loaded on first use; None (and a warning once) when its weights are missing."""
        if self._reader is None and not self._reader_missing:
            from digitizer.pipeline.ocr.asternet import AsternetRecognizer

            try:
                self._reader = AsternetRecognizer()
            except OcrEngineError as exc:
                self._reader_missing = True
                log.warning("doubtful words are not re-read: %s", exc)
        return self._reader

    def _reread(self, lines: list[list[Word]], gray: np.ndarray) -> list[list[Word]]:
        """``lines`` with their doubtful words replaced by asternet's confident readings."""
        doubtful = [
            (i, j)
            for i, line in enumerate(lines)
            for j, w in enumerate(line)
            if w.confidence < REREAD_BELOW
        ]
        if not doubtful:
            return lines
        reader = self._recognizer()
        if reader is None:
            return lines
        # an empty crop (a word at the page's edge) is not re-read
        cropped = [(at, _word_crop(gray, lines[at[0]], lines[at[0]][at[1]])) for at in doubtful]
        doubtful = [at for at, crop in cropped if crop.size]
        crops = [crop for _, crop in cropped if crop.size]
        try:
            results = reader.recognize(crops) if crops else []
        except Exception:  # an improvement only: never lose Tesseract's page over it
            log.warning(
                "re-reading %d doubtful words failed; Tesseract's kept", len(crops), exc_info=True
            )
            return lines
        out = [list(line) for line in lines]
        for (i, j), result in zip(doubtful, results, strict=True):
            text = result.text.strip()
            if text and " " not in text and result.confidence >= ACCEPT_FROM:
                out[i][j] = Word(text, lines[i][j].bbox, result.confidence)
        return out

    def close(self) -> None:
        """Free the native API."""
        self._api.End()


def _speck(text: str, confidence: float) -> bool:
    return confidence < SPECK_BELOW and not any(ch.isalnum() for ch in text)


def _word_crop(gray: np.ndarray, line: Sequence[Word], word: Word) -> np.ndarray:
    """The word's columns at its whole line's height (marks above capitals included), padded."""
    top = min(w.bbox[1] for w in line)
    bottom = max(w.bbox[3] for w in line)
    pad = max(3, (bottom - top) // 6)
    x0, _, x1, _ = word.bbox
    return gray[max(0, top - pad) : bottom + pad, max(0, x0 - pad) : x1 + pad]


@register("tesseract")
def _factory(settings: OcrSettings) -> TesseractEngine:
    return TesseractEngine(settings)
