"""The visible signature stamp: Vietnamese text in Noto Sans with a QR verification code.

DejaVu Sans (2048 units/em) comes out mis-spaced in pyHanko's stamps, Noto Sans (1000 units/em)
renders Vietnamese correctly (SIGNING.md). The font comes from ``pymupdf-fonts`` (already a
dependency), read from memory: no font file path to configure, no temporary file.

A stamp looks like this (QR code on the left, links to the verification URL)::

    ┌──────────┬──────────────────────────────────────┐
    │ ▛▀▀▜ QR  │ Đã ký số                             │
    │ ▙▄▄▟     │ Ủy ban nhân dân tỉnh Ninh Bình       │
    │          │ Người ký: Nguyễn Văn An              │
    │          │ Thời gian: 09:41:07 23/11/2026 (GMT+7)│
    └──────────┴──────────────────────────────────────┘
"""

from __future__ import annotations

import dataclasses
import functools
import io
import logging
from datetime import datetime, timedelta, timezone

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.font.api import FontEngineFactory
from pyhanko.pdf_utils.font.opentype import GlyphAccumulator
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.stamp import QRPosition, QRStampStyle

# fontTools warns about every table it cannot subset (e.g. "TTFA NOT subset") on each stamp
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)

#: Vietnam has used UTC+7 without daylight saving time since 1975; a fixed offset avoids
#: depending on the tz database of the host.
VN_TZ = timezone(timedelta(hours=7), "GMT+7")

#: Stamp colour: the red of Vietnamese office seals ("dấu đỏ").
STAMP_RED = (0.75, 0.05, 0.05)

DEFAULT_WIDTH = 250.0
DEFAULT_HEIGHT = 72.0
MARGIN = 28.0
GAP = 8.0


#: What a stamp can contain: Latin with every Vietnamese letter and tone mark, digits,
#: punctuation, the đồng sign. Anything else would render as an empty box.
STAMP_UNICODE_RANGES: tuple[tuple[int, int], ...] = (
    (0x0020, 0x007E),  # Basic Latin
    (0x00A0, 0x024F),  # Latin-1 Supplement, Latin Extended-A/B (Ă Â Đ Ê Ô Ơ Ư ...)
    (0x0300, 0x036F),  # combining diacritics (decomposed input)
    (0x1E00, 0x1EFF),  # Latin Extended Additional (ạ ả ấ ầ ẩ ẫ ậ ... ỹ)
    (0x2000, 0x206F),  # general punctuation (– — ‘ ’ “ ” …)
    (0x20AB, 0x20AB),  # ₫
)


@functools.cache
def noto_sans_bytes() -> bytes:
    """Noto Sans Regular (from ``pymupdf-fonts``) cut down to :data:`STAMP_UNICODE_RANGES`.

    Done once per process: pyHanko subsets the font again for every stamp, and subsetting the
    full 455 KB font (3,246 glyphs) cost ~200 ms a signature; the cut-down font keeps the
    OpenType layout tables HarfBuzz needs to place Vietnamese tone marks.
    """
    try:
        from pymupdf_fonts import NotoSans_Regular

        full = bytes(NotoSans_Regular.fontbuffer)
    except ImportError:  # older pymupdf-fonts layouts: ask PyMuPDF for its "notos" font
        import pymupdf

        full = bytes(pymupdf.Font("notos").buffer)
    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.hinting = False
    options.drop_tables += ["DSIG"]
    font = TTFont(io.BytesIO(full))
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[cp for lo, hi in STAMP_UNICODE_RANGES for cp in range(lo, hi + 1)])
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


@dataclasses.dataclass(frozen=True)
class NotoSansFactory(FontEngineFactory):
    """pyHanko font engine factory that embeds (a subset of) Noto Sans from memory."""

    font_size: int = 8

    def create_font_engine(self, writer, obj_stream=None):  # type: ignore[no-untyped-def]
        if obj_stream is None and writer.stream_xrefs:
            obj_stream = writer.prepare_object_stream()
        return GlyphAccumulator(
            writer=writer,
            font_handle=io.BytesIO(noto_sans_bytes()),
            font_size=self.font_size,
            bcp47_lang_code="vi",
            obj_stream=obj_stream,
        )


def format_vn_time(moment: datetime) -> str:
    """``09:41:07 23/11/2026 (GMT+7)``: the order Vietnamese documents write dates in."""
    local = moment.astimezone(VN_TZ)
    return local.strftime("%H:%M:%S %d/%m/%Y") + " (GMT+7)"


@functools.cache
def stamp_style(font_size: int = 8) -> QRStampStyle:
    """The stamp style: red border and text, QR code left of the text, no background image."""
    return QRStampStyle(
        stamp_text="%(heading)s\n%(office)s\nNgười ký: %(signer)s\nThời gian: %(time)s",
        text_box_style=TextBoxStyle(
            font=NotoSansFactory(font_size=font_size),
            font_size=font_size,
            leading=font_size + 3,
            text_color=STAMP_RED,
        ),
        border_width=1,
        border_color=STAMP_RED,
        background=None,
        qr_position=QRPosition.LEFT_OF_TEXT,
        innsep=4,
    )


def stamp_text_params(
    *, heading: str, office: str, signer: str, moment: datetime, url: str
) -> dict[str, str]:
    """Parameters for :func:`stamp_style`'s template (``url`` feeds the QR code)."""
    return {
        "heading": heading,
        "office": office,
        "signer": signer,
        "time": format_vn_time(moment),
        "url": url,
    }


def _inherited(page: generic.DictionaryObject, key: str) -> generic.PdfObject | None:
    node: generic.PdfObject | None = page
    for _ in range(64):  # page trees are shallow; the bound stops a /Parent loop
        if not isinstance(node, generic.DictionaryObject):
            return None
        if key in node:
            return node[key]
        parent = node.get("/Parent")
        node = parent.get_object() if parent is not None else None
    return None


def page_count(writer: IncrementalPdfFileWriter) -> int:
    return int(writer.root["/Pages"]["/Count"])


def default_stamp_box(
    writer: IncrementalPdfFileWriter,
    page_index: int,
    slot: int,
    width: float = DEFAULT_WIDTH,
    height: float = DEFAULT_HEIGHT,
) -> tuple[int, int, int, int]:
    """Bottom-right corner of the page, stacked upwards by ``slot`` (one slot per signature).

    Coordinates are PDF user space (origin bottom-left of the crop box). Rotated pages keep the
    unrotated box: e-copies are produced upright by the pipeline.
    """
    page_ref, _resources = writer.find_page_for_modification(page_index)
    page = page_ref.get_object()
    box = _inherited(page, "/CropBox") or _inherited(page, "/MediaBox")
    values = list(box) if isinstance(box, generic.ArrayObject) else [0, 0, 595, 842]  # A4
    x0, y0, x1, y1 = (float(v) for v in values[:4])
    left = max(x0, x1 - MARGIN - width)
    bottom = y0 + MARGIN + slot * (height + GAP)
    top = min(y1, bottom + height)
    return (round(left), round(bottom), round(left + width), round(top))
