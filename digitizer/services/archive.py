"""Safe reading of ZIP batches.

Nothing is written to disk: members are read into memory under limits, so path
tricks (``../``, absolute paths, drive letters) cannot escape anywhere; they are
still refused because an archive that tries them is hostile. Nested archives are
refused rather than expanded (the classic nested ZIP bomb), sizes are checked
while reading, not trusted from the headers.
"""

from __future__ import annotations

import io
import lzma
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath

from digitizer.errors import CorruptFileError, UnsafeArchiveError

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    """What one archive may hold."""

    max_entries: int = 2_000
    max_total_bytes: int = 512 * 1024 * 1024
    max_member_bytes: int = 100 * 1024 * 1024
    max_ratio: int = 1000


@dataclass(frozen=True)
class Member:
    """One file taken out of an archive."""

    name: str
    data: bytes


def _skip(name: str) -> bool:
    parts = PurePosixPath(name).parts
    # Finder and Windows litter: not documents, not worth a rejection.
    return (
        any(p == "__MACOSX" for p in parts)
        or parts[-1].startswith("._")
        or parts[-1] in {".DS_Store", "Thumbs.db", "desktop.ini"}
    )


def _check_name(name: str) -> None:
    if not name or "\x00" in name:
        raise UnsafeArchiveError("the archive has an entry without a valid name")
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        raise UnsafeArchiveError(f"the archive entry {name!r} has an absolute path")
    if ".." in PurePosixPath(normalized).parts:
        raise UnsafeArchiveError(f"the archive entry {name!r} points outside the archive")


def read_zip(data: bytes, limits: ArchiveLimits) -> list[Member]:
    """The files of a ZIP archive, in archive order, checked against ``limits``.

    Raises:
        UnsafeArchiveError: path tricks, links, nested archives, too many or too big entries.
        CorruptFileError: the archive cannot be read.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise CorruptFileError(f"the ZIP archive cannot be read: {exc}") from exc
    if len(infos) > limits.max_entries:
        raise UnsafeArchiveError(
            f"the archive has {len(infos)} entries; the limit is {limits.max_entries}"
        )
    for info in infos:
        _check_name(info.filename)
    members: list[Member] = []
    total = 0
    with archive:
        for info in infos:
            if info.is_dir() or _skip(info.filename):
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchiveError(f"the archive entry {info.filename!r} is a symbolic link")
            if info.flag_bits & 0x1:
                raise UnsafeArchiveError(f"the archive entry {info.filename!r} is encrypted")
            declared = info.file_size
            if info.compress_size and declared / info.compress_size > limits.max_ratio:
                raise UnsafeArchiveError(
                    f"the archive entry {info.filename!r} expands {declared // info.compress_size}"
                    " times: a compression bomb"
                )
            body = _read_member(archive, info, limits, total)
            total += len(body)
            if body[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
                raise UnsafeArchiveError(
                    f"the archive entry {info.filename!r} is itself an archive; "
                    "nested archives are not accepted"
                )
            members.append(Member(name=PurePosixPath(info.filename).name, data=body))
    return members


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ArchiveLimits, total: int
) -> bytes:
    # Header sizes can lie; count what decompression actually produces.
    cap = min(limits.max_member_bytes, limits.max_total_bytes - total)
    out = bytearray()
    try:
        with archive.open(info) as fh:
            while chunk := fh.read(_CHUNK):
                out += chunk
                if len(out) > cap:
                    raise UnsafeArchiveError(
                        f"the archive entry {info.filename!r} expands beyond the size limit"
                    )
                if info.compress_size and len(out) / info.compress_size > limits.max_ratio:
                    raise UnsafeArchiveError(
                        f"the archive entry {info.filename!r} expands too much: a compression bomb"
                    )
    except (
        zipfile.BadZipFile,
        OSError,  # bz2 reports bad data as OSError
        EOFError,
        NotImplementedError,
        zlib.error,  # deflate data that does not decode
        lzma.LZMAError,
        ValueError,  # header offsets that point before the file (negative seek)
    ) as exc:
        raise CorruptFileError(f"the archive entry {info.filename!r} is damaged: {exc}") from exc
    return bytes(out)
