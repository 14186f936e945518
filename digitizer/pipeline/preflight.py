"""Preflight: know what a file is before anything trusts it.

Strict sniffing by content (never by file name), limits on bytes, pages and
pixels (decompression bombs), and the facts later steps need: page count,
whether a PDF carries signatures (then it is kept byte for byte), and which PDF
pages already have a usable text layer (they skip OCR).

Used twice: synchronously at upload (so junk gets a problem at once) and as the
first pipeline step in the worker (so a stored original is re-checked by the
same code before it is processed).
"""

from __future__ import annotations

import io
import json
import re
import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

import pymupdf
from PIL import Image

from digitizer.errors import (
    CorruptFileError,
    EmptyFileError,
    EncryptedFileError,
    FileTooLargeError,
    ImageTooLargeError,
    TooManyPagesError,
    UnsupportedMediaTypeError,
)
from storage.objects import derived_key

if TYPE_CHECKING:
    from digitizer.config import Settings
    from storage.objects import ObjectStore

NAME = "preflight"
VERSION = "1"

Kind = Literal["pdf", "jpeg", "png", "tiff", "zip"]

MEDIA_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "tiff": "image/tiff",
    "zip": "application/zip",
}

#: A page with at least this many characters of extractable text is born-digital.
MIN_TEXT_CHARS = 40
RENDER_DPI = 300

# Quiet MuPDF: its warnings about damaged files are turned into our own errors.
pymupdf.TOOLS.mupdf_display_errors(False)
pymupdf.TOOLS.mupdf_display_warnings(False)


@dataclass(frozen=True)
class Limits:
    """What one file may hold."""

    max_bytes: int = 100 * 1024 * 1024
    max_pages: int = 500
    max_pixels: int = 80_000_000


@dataclass
class FileInfo:
    """What preflight found out about a file."""

    kind: Kind
    media_type: str
    page_count: int = 0
    has_signatures: bool = False
    text_pages: list[int] = field(default_factory=list)

    @property
    def needs_ocr(self) -> bool:
        """True when at least one page has no usable text layer."""
        return len(self.text_pages) < self.page_count


def sniff(data: bytes) -> Kind:
    """The file's type from its first bytes.

    Raises:
        EmptyFileError: no bytes at all.
        UnsupportedMediaTypeError: anything but PDF, JPEG, PNG, TIFF or ZIP.
    """
    if not data:
        raise EmptyFileError("the file is empty (0 bytes)")
    head = data[:1024]
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if b"%PDF-" in head:
        return "pdf"
    raise UnsupportedMediaTypeError(
        f"the content is {_describe(head)}, not a PDF, JPEG, PNG, TIFF or ZIP file"
    )


def _describe(head: bytes) -> str:
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    if stripped.startswith(b"<?xml") or stripped.startswith(b"<svg"):
        return "XML/SVG"
    if head.startswith(b"GIF8"):
        return "a GIF image"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "a WebP image"
    if head.startswith((b"\xd0\xcf\x11\xe0", b"\x7fELF", b"MZ")):
        return "a binary (Office or executable) file"
    try:
        head.decode("utf-8")
        return "plain text"
    except UnicodeDecodeError:
        return "of an unknown binary type"


def inspect_file(data: bytes, limits: Limits) -> FileInfo:
    """Sniff and check a single (non-archive) file.

    Raises:
        BadInputError subclasses with a human-readable ``detail``.
    """
    if len(data) > limits.max_bytes:
        raise FileTooLargeError(
            f"the file is {len(data)} bytes; the limit is {limits.max_bytes} bytes"
        )
    kind = sniff(data)
    if kind == "pdf":
        return _inspect_pdf(data, limits)
    if kind == "zip":
        return FileInfo(kind="zip", media_type=MEDIA_TYPES["zip"])
    return _inspect_image(data, kind, limits)


_EOF = re.compile(rb"%%EOF\s*$")


def _inspect_pdf(data: bytes, limits: Limits) -> FileInfo:
    # MuPDF silently repairs truncated files; a scan that lost its last pages must
    # not pass as complete, so the end-of-file marker is required.
    if not _EOF.search(data[-2048:]):
        raise CorruptFileError("the PDF is truncated: its end-of-file marker is missing")
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as exc:  # MuPDF raises several types for damaged files
        raise CorruptFileError(f"the PDF cannot be read: {_short(exc)}") from exc
    try:
        if doc.needs_pass:
            raise EncryptedFileError("the PDF is protected by a password; upload it unlocked")
        count = doc.page_count
        if count == 0:
            raise CorruptFileError("the PDF has no pages")
        if count > limits.max_pages:
            raise TooManyPagesError(f"the PDF has {count} pages; the limit is {limits.max_pages}")
        text_pages: list[int] = []
        for number in range(count):
            try:
                page = doc.load_page(number)
                rect = page.rect
                text = page.get_text("text")
            except Exception as exc:
                raise CorruptFileError(
                    f"page {number + 1} of the PDF cannot be read: {_short(exc)}"
                ) from exc
            pixels = (rect.width * RENDER_DPI / 72) * (rect.height * RENDER_DPI / 72)
            if pixels > limits.max_pixels:
                raise ImageTooLargeError(
                    f"page {number + 1} is {rect.width / 72 * 25.4:.0f} x "
                    f"{rect.height / 72 * 25.4:.0f} mm, too large to render at {RENDER_DPI} dpi"
                )
            if len(text.strip()) >= MIN_TEXT_CHARS and "\ufffd" not in text:
                text_pages.append(number)
        signed = doc.get_sigflags() > 0 or b"/ByteRange" in data
        return FileInfo(
            kind="pdf",
            media_type=MEDIA_TYPES["pdf"],
            page_count=count,
            has_signatures=signed,
            text_pages=text_pages,
        )
    finally:
        doc.close()


def _inspect_image(data: bytes, kind: Kind, limits: Limits) -> FileInfo:
    frames = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                n_frames = getattr(img, "n_frames", 1)
                if n_frames > limits.max_pages:
                    raise TooManyPagesError(
                        f"the image has {n_frames} pages; the limit is {limits.max_pages}"
                    )
                for index in range(n_frames):
                    img.seek(index)
                    width, height = img.size
                    if width * height > limits.max_pixels:
                        raise ImageTooLargeError(
                            f"page {index + 1} is {width} x {height} pixels; the limit is "
                            f"{limits.max_pixels} pixels"
                        )
                    img.load()  # decode now: a truncated scan fails here, not later
                    frames += 1
    except (ImageTooLargeError, TooManyPagesError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"the image is too large to decode safely: {exc}") from exc
    except Exception as exc:
        raise CorruptFileError(
            f"the {kind.upper()} image cannot be decoded: {_short(exc)}"
        ) from exc
    return FileInfo(kind=kind, media_type=MEDIA_TYPES[kind], page_count=frames)


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


# -- settings and stored findings (used by intake, so kept free of the OCR stack) ----------
def limits_from(settings: Settings) -> Limits:
    """Preflight limits from the settings."""
    return Limits(
        max_bytes=settings.limits.max_upload_bytes,
        max_pages=settings.limits.max_pages,
        max_pixels=settings.limits.max_pixels,
    )


def preflight_key(sha256: str) -> str:
    """Where preflight's findings for an original are kept."""
    return derived_key(sha256, NAME, VERSION, "info.json")


def store_preflight(store: ObjectStore, sha256: str, info: FileInfo) -> None:
    """Keep preflight's findings (intake stores them so the worker need not decode again)."""
    body = json.dumps(asdict(info), ensure_ascii=False, separators=(",", ":")).encode()
    store.put_bytes(preflight_key(sha256), body, "application/json")
