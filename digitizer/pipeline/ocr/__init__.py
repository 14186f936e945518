"""OCR engines behind one protocol, chosen by name (``SOHOA_OCR__ENGINE``).

An engine takes one page image and returns lines with text, box and confidence.
Engines load their weights once (in ``__init__``) and are reused for every page
and every job of a worker process. Weights come only from installed packages or
an operator-supplied folder: nothing is downloaded at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image

from digitizer.config import OcrSettings


@dataclass(frozen=True)
class OcrLine:
    """One recognised line; ``bbox`` is (x0, y0, x1, y1) in image pixels."""

    text: str
    bbox: tuple[int, int, int, int]
    confidence: float  # 0-100


@dataclass
class OcrPage:
    """The lines of one page, in reading order."""

    lines: list[OcrLine] = field(default_factory=list)
    width: int = 0
    height: int = 0
    dpi: int = 300
    source: str = "ocr"  # "ocr" or "text-layer" (born-digital PDF page)
    skew: float = 0.0  # degrees the page was rotated before OCR
    rotation: int = 0  # quarter turns (0/90/180/270, counter-clockwise) that made it upright

    @property
    def text(self) -> str:
        """The page text, one line per line."""
        return "\n".join(line.text for line in self.lines)

    @property
    def confidence(self) -> float | None:
        """Mean line confidence weighted by line length; None for an empty page."""
        total = sum(len(line.text) for line in self.lines)
        if total == 0:
            return None
        return sum(line.confidence * len(line.text) for line in self.lines) / total

    def to_dict(self) -> dict[str, object]:
        """JSON form (stored as a derived object)."""
        return {
            "width": self.width,
            "height": self.height,
            "dpi": self.dpi,
            "source": self.source,
            "skew": self.skew,
            "rotation": self.rotation,
            "confidence": self.confidence,
            "lines": [
                {"text": ln.text, "bbox": list(ln.bbox), "confidence": round(ln.confidence, 2)}
                for ln in self.lines
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> OcrPage:
        """Inverse of :meth:`to_dict`."""
        lines = [
            OcrLine(
                text=str(item["text"]),
                bbox=(
                    int(item["bbox"][0]),
                    int(item["bbox"][1]),
                    int(item["bbox"][2]),
                    int(item["bbox"][3]),
                ),
                confidence=float(item["confidence"]),
            )
            for item in data["lines"]  # type: ignore[attr-defined]
        ]
        return cls(
            lines=lines,
            width=int(data["width"]),  # type: ignore[call-overload]
            height=int(data["height"]),  # type: ignore[call-overload]
            dpi=int(data["dpi"]),  # type: ignore[call-overload]
            source=str(data["source"]),
            skew=float(data.get("skew", 0.0)),  # type: ignore[arg-type]
            rotation=int(data.get("rotation", 0)),  # type: ignore[call-overload]
        )


class OcrEngine(Protocol):
    """What every engine provides."""

    #: Registry name, e.g. ``tesseract``.
    name: str
    #: Changes whenever the engine's output may change (weights, settings):
    #: part of the derived-object key, so a new version recomputes.
    version: str

    def recognize(self, image: Image.Image, dpi: int) -> OcrPage:
        """Recognise one page image."""
        ...


class OcrEngineError(Exception):
    """An engine cannot be created (missing weights or library)."""


_REGISTRY: dict[str, Callable[[OcrSettings], OcrEngine]] = {}


def register(name: str) -> Callable[[Callable[[OcrSettings], OcrEngine]], Callable[..., OcrEngine]]:
    """Class decorator registering an engine factory under ``name``."""

    def wrap(factory: Callable[[OcrSettings], OcrEngine]) -> Callable[..., OcrEngine]:
        _REGISTRY[name] = factory
        return factory

    return wrap


def available_engines() -> list[str]:
    """Names of the registered engines."""
    _load_builtin()
    return sorted(_REGISTRY)


def create_engine(settings: OcrSettings) -> OcrEngine:
    """Create the configured engine (loads its weights).

    Raises:
        OcrEngineError: unknown engine name or weights missing.
    """
    _load_builtin()
    _share_thread_budget()
    factory = _REGISTRY.get(settings.engine)
    if factory is None:
        raise OcrEngineError(
            f"unknown OCR engine {settings.engine!r}; available: {', '.join(sorted(_REGISTRY))}"
        )
    return factory(settings)


def _share_thread_budget() -> None:
    """OpenCV (leaders, deskew) keeps to the OCR's thread budget (``SOHOA_OCR_THREADS``,
    one per worker where workers share the cores): its own pool would use every core
    and, with a worker per core, spend CPU on contention (measured: 113 -> 133 ms CPU for
    the leaders' pass of a page with two threads, for 94 instead of 113 ms)."""
    import cv2

    from digitizer.pipeline.ocr.onnx_runtime import default_threads

    cv2.setNumThreads(default_threads())


def _load_builtin() -> None:
    # Imported lazily so that importing the protocol costs nothing; each module only
    # registers its factory (weights load when an engine is created).
    from digitizer.pipeline.ocr import asternet, paddle, tesseract, trueocr_engine  # noqa: F401
