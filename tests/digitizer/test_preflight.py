"""Preflight: content sniffing and limits, one test per kind of bad input."""

from __future__ import annotations

import pytest

from digitizer.errors import (
    CorruptFileError,
    EmptyFileError,
    EncryptedFileError,
    FileTooLargeError,
    ImageTooLargeError,
    TooManyPagesError,
    UnsupportedMediaTypeError,
)
from digitizer.pipeline.preflight import Limits, inspect_file, sniff
from tests import samples

LIMITS = Limits(max_bytes=5 * 1024 * 1024, max_pages=5, max_pixels=40_000_000)

pytestmark = pytest.mark.smoke


@pytest.mark.parametrize(
    ("data", "kind", "pages"),
    [
        (samples.png(), "png", 1),
        (samples.jpeg(), "jpeg", 1),
        (samples.image_pdf(2), "pdf", 2),
        (samples.multipage_tiff(3), "tiff", 3),
    ],
)
def test_accepts_supported_types(data: bytes, kind: str, pages: int) -> None:
    info = inspect_file(data, LIMITS)
    assert info.kind == kind
    assert info.page_count == pages
    assert info.needs_ocr


def test_born_digital_pdf_pages_skip_ocr() -> None:
    info = inspect_file(samples.text_pdf(), LIMITS)
    assert info.text_pages == [0]
    assert not info.needs_ocr


def test_empty_file() -> None:
    with pytest.raises(EmptyFileError):
        inspect_file(b"", LIMITS)


def test_wrong_type_behind_pdf_name_is_judged_by_content() -> None:
    # The name says .pdf; the bytes are an HTML page.
    with pytest.raises(UnsupportedMediaTypeError, match="HTML"):
        inspect_file(b"<!DOCTYPE html><html><body>not a pdf</body></html>", LIMITS)


def test_unsupported_type() -> None:
    with pytest.raises(UnsupportedMediaTypeError, match="GIF"):
        sniff(b"GIF89a\x01\x00\x01\x00")


def test_truncated_pdf() -> None:
    with pytest.raises(CorruptFileError, match="truncated"):
        inspect_file(samples.truncated_pdf(), LIMITS)


def test_corrupt_pdf() -> None:
    with pytest.raises(CorruptFileError):
        inspect_file(samples.corrupt_pdf(), LIMITS)


def test_encrypted_pdf() -> None:
    with pytest.raises(EncryptedFileError, match="password"):
        inspect_file(samples.encrypted_pdf(), LIMITS)


def test_decompression_bomb_image() -> None:
    data = samples.bomb_png(10000, 10000)  # 100 Mpx in a few kB
    assert len(data) < 200_000
    with pytest.raises(ImageTooLargeError, match="pixels"):
        inspect_file(data, LIMITS)


def test_file_over_size_limit() -> None:
    with pytest.raises(FileTooLargeError):
        inspect_file(b"%PDF-1.7\n" + b"0" * (LIMITS.max_bytes + 1), LIMITS)


def test_too_many_pages() -> None:
    with pytest.raises(TooManyPagesError):
        inspect_file(samples.image_pdf(6), Limits(max_bytes=50_000_000, max_pages=5))


def test_truncated_jpeg() -> None:
    data = samples.jpeg()
    with pytest.raises(CorruptFileError, match="JPEG"):
        inspect_file(data[: len(data) // 2], LIMITS)
