"""Page images for the review screen: one page of the original as a modest PNG.

The image shows the page as OCR saw it (EXIF orientation applied, the same quarter turn for a
page read sideways, the same deskew rotation), scaled down to :data:`DPI`, so the recognised
lines' boxes (``bbox`` in the OCR page's pixel space, ``width`` x ``height``) fall on the right
words after scaling by ``image width / width``. Images are derived objects
(``derived/{sha256}/pageimg-{VERSION}/{index}.png``), rendered on the first request and reused.
"""

from __future__ import annotations

import io

import pymupdf
from PIL import Image

from digitizer.pipeline import render
from digitizer.pipeline.ocr import OcrPage

NAME = "pageimg"
VERSION = "1"
#: Resolution of review images: enough to read a scan, a fraction of the OCR image's bytes.
DPI = 100


def _pdf_page(data: bytes, index: int, dpi: int) -> Image.Image:
    with pymupdf.open(stream=data, filetype="pdf") as doc:
        page = doc.load_page(index)
        pix = page.get_pixmap(dpi=dpi, alpha=False)
        mode = "L" if pix.n == 1 else "RGB"
        return Image.frombytes(mode, (pix.width, pix.height), pix.samples)


def _image_page(data: bytes, kind: str, index: int) -> tuple[Image.Image, int]:
    # The same decoding as for OCR (EXIF orientation, low resolutions upscaled).
    for number, page in enumerate(render.iter_pages(data, kind)):
        if number == index:
            assert page is not None
            return page.image, page.dpi
    raise IndexError(f"the file has no page {index}")


def render_page(
    data: bytes, kind: str, index: int, ocr_page: OcrPage | None, dpi: int = DPI
) -> bytes:
    """PNG of page ``index`` (0-based) of an original, aligned with its OCR page.

    Args:
        data: the original's bytes.
        kind: preflight's kind (``pdf`` or an image kind).
        index: the page, 0-based (as fields' ``source.page``).
        ocr_page: the page's OCR result (its size and skew); None renders it as it is.
        dpi: the image's resolution.

    Raises:
        IndexError: no such page.
    """
    if kind == "pdf":
        image, source_dpi = _pdf_page(data, index, dpi), dpi
    else:
        image, source_dpi = _image_page(data, kind, index)
    scale = min(1.0, dpi / source_dpi)
    if scale < 1.0:
        # Scale first: turning and deskewing about the centre commute with scaling.
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.LANCZOS,
        )
    if ocr_page is not None and ocr_page.rotation % 360:
        # The quarter turn that made a sideways page upright (render.turned), then the skew.
        image = image.rotate(ocr_page.rotation % 360, expand=True)
    if ocr_page is not None and abs(ocr_page.skew) >= 0.15:
        # The same rotation as render.deskew (about the centre, size kept, white border).
        fill: int | tuple[int, int, int] = 255 if image.mode == "L" else (255, 255, 255)
        image = image.rotate(
            ocr_page.skew, resample=Image.Resampling.BILINEAR, expand=False, fillcolor=fill
        )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
