"""Render: every page to an image at a known resolution, deskewed.

PDF pages are rendered with PyMuPDF at 300 dpi; images keep their pixels and
their resolution (from metadata, else estimated from an A4 width) and are
upscaled when below 200 dpi. Skew is measured on a small binarised copy by
maximising the variance of row sums (text lines become sharp peaks when
horizontal) and corrected on the full image.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import pymupdf
from PIL import Image, ImageOps

NAME = "render"
#: 2: pages read sideways or upside down are turned (pipeline/orientation.py);
#: 3: skew found from the ink points' projection (may differ from 2 by 0.1 degree);
#: 4: the skew search's page shrunk by a whole factor (may differ from 3 by 0.1 degree).
VERSION = "4"

PDF_DPI = 300
MIN_DPI = 200
TARGET_DPI = 300
MAX_SKEW = 6.0
A4_SHORT_INCHES = 8.27


@dataclass
class RenderedPage:
    """A page image ready for OCR and for the searchable PDF."""

    image: Image.Image
    dpi: int
    skew: float = 0.0
    #: False when EXIF orientation turned the image: its stored pixels are not upright.
    exif_upright: bool = True
    #: Quarter turns (counter-clockwise degrees) applied to make the page upright.
    rotation: int = 0


def turned(page: RenderedPage, degrees: int) -> RenderedPage:
    """The page turned counter-clockwise by a multiple of 90 degrees (skew reset)."""
    degrees %= 360
    if degrees == 0:
        return page
    image = page.image.rotate(degrees, expand=True)
    return RenderedPage(image, page.dpi, 0.0, page.exif_upright, (page.rotation + degrees) % 360)


def iter_pages(
    data: bytes, kind: str, skip: frozenset[int] = frozenset()
) -> Iterator[RenderedPage | None]:
    """Yield each page as an image (None for pages in ``skip``)."""
    if kind == "pdf":
        doc = pymupdf.open(stream=data, filetype="pdf")
        try:
            for number in range(doc.page_count):
                if number in skip:
                    yield None
                    continue
                page = doc.load_page(number)
                pix = page.get_pixmap(dpi=PDF_DPI, colorspace=_colorspace(page), alpha=False)
                mode = "L" if pix.n == 1 else "RGB"
                yield RenderedPage(
                    Image.frombytes(mode, (pix.width, pix.height), pix.samples), PDF_DPI
                )
        finally:
            doc.close()
        return
    with Image.open(io.BytesIO(data)) as img:
        for index in range(getattr(img, "n_frames", 1)):
            if index in skip:
                yield None
                continue
            img.seek(index)
            raw = img.copy()
            rotated = _rotated(raw)
            # exif_transpose copies the image even when there is nothing to turn.
            frame = (ImageOps.exif_transpose(raw) or raw) if rotated else raw
            page = _normalise_image(frame, img.info.get("dpi"))
            page.exif_upright = not rotated
            yield page


def _rotated(image: Image.Image) -> bool:
    orientation = image.getexif().get(0x0112, 1)
    return orientation not in (1, None)


def _colorspace(page: pymupdf.Page) -> pymupdf.Colorspace:
    # Scans of stamped documents are often colour: keep colour where the page has any
    # image in colour, grey otherwise (a third of the bytes).
    for info in page.get_image_info():
        if info.get("colorspace", 1) >= 3:
            return pymupdf.csRGB
    return pymupdf.csGRAY


def _normalise_image(frame: Image.Image, dpi_info: object) -> RenderedPage:
    if frame.mode not in ("L", "RGB"):
        frame = frame.convert("RGB" if frame.mode in ("RGBA", "P", "CMYK", "LA") else "L")
    dpi = _dpi(frame, dpi_info)
    if dpi < MIN_DPI:
        # Tesseract reads best at ~300 dpi; low-resolution phone/fax scans are upscaled.
        scale = TARGET_DPI / dpi
        frame = frame.resize(
            (round(frame.width * scale), round(frame.height * scale)), Image.Resampling.LANCZOS
        )
        dpi = TARGET_DPI
    return RenderedPage(frame, dpi)


def _dpi(frame: Image.Image, dpi_info: object) -> int:
    if isinstance(dpi_info, tuple) and dpi_info and 70 <= float(dpi_info[0]) <= 1200:
        return round(float(dpi_info[0]))
    short = min(frame.width, frame.height)
    return max(72, round(short / A4_SHORT_INCHES))


def estimate_skew(gray: np.ndarray) -> float:
    """Skew angle in degrees (counter-clockwise positive) of a grayscale page."""
    height, width = gray.shape
    # Shrunk by a whole factor to at least 1000 pixels on the long side: cv2's area
    # average has a fast path for whole factors (a 300-dpi page: 23 -> 4 ms).
    factor = max(1, max(height, width) // 1000)
    small = cv2.resize(gray, None, fx=1 / factor, fy=1 / factor, interpolation=cv2.INTER_AREA)
    _, ink = cv2.threshold(small, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    if ink.sum() < 50:
        return 0.0
    # The projection profile of the ink turned by ``angle``: each ink pixel's row after
    # the turn (cv2's rotation about the centre), counted. Turning ~40k points costs a
    # tenth of warping the whole image per angle (bench: 126 -> 48 ms a 300-dpi page),
    # and finds the same angles.
    h, w = ink.shape
    ys, xs = np.nonzero(ink)
    dy = ys.astype(np.float32) - np.float32(h / 2)
    dx = xs.astype(np.float32) - np.float32(w / 2)

    def score(angle: float) -> float:
        theta = np.deg2rad(angle)
        turned = np.cos(theta) * dy - np.sin(theta) * dx + (h / 2 + 0.5)
        rows = np.floor(turned).astype(np.int64)
        counts = np.bincount(rows[(rows >= 0) & (rows < h)], minlength=h)
        return float(np.square(np.diff(counts)).sum())

    coarse = [float(a) for a in np.arange(-MAX_SKEW, MAX_SKEW + 0.01, 0.5)]
    best = max(coarse, key=score)
    fine = [float(a) for a in np.arange(best - 0.5, best + 0.51, 0.1)]
    angle: float = max(fine, key=score)
    return round(angle, 2)


def deskew(page: RenderedPage) -> RenderedPage:
    """Rotate the page so text lines are horizontal (no-op under 0.15 degrees)."""
    arr = np.asarray(page.image)
    gray = arr if arr.ndim == 2 else cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
    angle = estimate_skew(gray)
    if abs(angle) < 0.15:
        return RenderedPage(page.image, page.dpi, 0.0, page.exif_upright, page.rotation)
    h, w = gray.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    border = (255.0, 255.0, 255.0, 255.0)  # a cv::Scalar: white in any channel count
    rotated = cv2.warpAffine(arr, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=border)
    return RenderedPage(Image.fromarray(rotated), page.dpi, angle, page.exif_upright, page.rotation)
