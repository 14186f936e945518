"""Safe ZIP reading: path tricks, links, nested archives and bombs are refused."""

from __future__ import annotations

import pytest

from digitizer.errors import CorruptFileError, UnsafeArchiveError
from digitizer.services.archive import ArchiveLimits, read_zip
from tests import samples

LIMITS = ArchiveLimits(max_entries=10, max_total_bytes=30 * 1024 * 1024, max_ratio=1000)

pytestmark = pytest.mark.smoke


def test_reads_members_in_order_and_skips_os_litter() -> None:
    data = samples.zip_of(
        {"scans/a.png": b"1", "__MACOSX/._a.png": b"x", "scans/b.jpg": b"2", ".DS_Store": b"y"}
    )
    members = read_zip(data, LIMITS)
    assert [(m.name, m.data) for m in members] == [("a.png", b"1"), ("b.jpg", b"2")]


@pytest.mark.parametrize(
    "name", ["../evil.png", "a/../../evil.png", "/etc/evil.png", "C:/evil.png"]
)
def test_path_traversal_and_absolute_paths(name: str) -> None:
    with pytest.raises(UnsafeArchiveError):
        read_zip(samples.zip_of({"ok.png": b"1", name: b"2"}), LIMITS)


def test_symlink_entry() -> None:
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        read_zip(samples.zip_of({"ok.png": b"1"}, symlink="link.png"), LIMITS)


def test_nested_zip_bomb() -> None:
    data = samples.zip_bomb(levels=3)
    assert len(data) < 200_000
    with pytest.raises(UnsafeArchiveError):
        read_zip(data, LIMITS)


def test_compression_bomb_member() -> None:
    data = samples.zip_of({"zeros.png": b"\x00" * (50 * 1024 * 1024)})
    with pytest.raises(UnsafeArchiveError, match=r"bomb|limit"):
        read_zip(data, LIMITS)


def test_too_many_entries() -> None:
    data = samples.zip_of({f"{n}.png": b"x" for n in range(11)})
    with pytest.raises(UnsafeArchiveError, match="entries"):
        read_zip(data, LIMITS)


def test_damaged_archive() -> None:
    data = samples.zip_of({"a.png": b"1" * 1000})
    with pytest.raises(CorruptFileError):
        read_zip(data[:40] + b"\x00" * 20 + data[60:], LIMITS)
