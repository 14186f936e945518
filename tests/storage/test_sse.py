"""Server-side encryption (SSE-S3) on a real SeaweedFS with a configured key.

What docker-compose.yml deploys: ``WEED_S3_SSE_KEK`` on the server, ``SOHOA_S3__SSE=true``
in the app. The bytes on the volume disk must not be the plaintext, reads must give the
plaintext back, and the key must matter (another key cannot read them).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.embedded import SeaweedFS
from storage.errors import ObjectStoreUnavailableError
from storage.objects import ObjectStore, S3Config

SSE_HEADER = "x-amz-server-side-encryption"


@pytest.fixture
def weed(tmp_path: Path) -> Iterator[SeaweedFS]:
    server = SeaweedFS(data_dir=tmp_path / "weed", sse_kek=secrets.token_hex(32))
    server.start()
    yield server
    server.stop()


def _store(server: SeaweedFS, bucket: str, sse: bool) -> ObjectStore:
    return ObjectStore(
        S3Config(
            endpoint=server.endpoint,
            access_key=server.access_key,
            secret_key=server.secret_key,
            bucket=bucket,
            sse=sse,
        )
    )


def _on_disk(folder: Path, needle: bytes) -> list[Path]:
    """Files under ``folder`` holding ``needle`` (the volume and filer files)."""
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def _payload() -> tuple[bytes, bytes]:
    """Incompressible bytes with a marker inside (SeaweedFS would gzip a repetitive one)."""
    marker = b"SOHOA-PLAINTEXT-" + secrets.token_hex(12).encode()
    return marker, secrets.token_bytes(30_000) + marker + secrets.token_bytes(30_000)


@pytest.mark.smoke
def test_sse_objects_are_encrypted_at_rest(weed: SeaweedFS) -> None:
    store = _store(weed, "sse-on", sse=True)
    store.ensure_bucket()
    assert store.client.get_bucket_encryption("sse-on").rule.sse_algorithm == "AES256"
    marker, data = _payload()
    store.put_bytes("originals/" + "a" * 64, data)
    info = store.stat("originals/" + "a" * 64)
    assert info is not None and info.metadata.get(SSE_HEADER) == "AES256"
    assert store.get_bytes("originals/" + "a" * 64) == data
    assert store.sha256("originals/" + "a" * 64)[1] == len(data)
    assert _on_disk(Path(weed.data_dir), marker) == []

    # The control: the same server without SSE keeps the plaintext on its volume.
    plain = _store(weed, "sse-off", sse=False)
    plain.ensure_bucket()
    marker2, data2 = _payload()
    plain.put_bytes("originals/" + "b" * 64, data2)
    stat = plain.stat("originals/" + "b" * 64)
    assert stat is not None and SSE_HEADER not in stat.metadata
    assert _on_disk(Path(weed.data_dir), marker2)


def test_bucket_default_encrypts_writes_of_other_clients(weed: SeaweedFS) -> None:
    """A restore (rclone) or an operator's copy does not ask for SSE: the bucket does."""
    _store(weed, "sse-default", sse=True).ensure_bucket()
    other = _store(weed, "sse-default", sse=False)  # a client that asks for nothing
    marker, data = _payload()
    other.put_bytes("derived/x/y", data)
    info = other.stat("derived/x/y")
    assert info is not None and info.metadata.get(SSE_HEADER) == "AES256"
    assert _on_disk(Path(weed.data_dir), marker) == []


def test_another_key_cannot_read_the_objects(weed: SeaweedFS) -> None:
    store = _store(weed, "sse-key", sse=True)
    store.ensure_bucket()
    _, data = _payload()
    store.put_bytes("originals/" + "c" * 64, data)
    endpoint, right_key = weed.endpoint, weed.sse_kek
    weed.stop()
    weed.sse_kek = secrets.token_hex(32)
    weed.start()
    assert weed.endpoint == endpoint  # same server, same data: only the key differs
    with pytest.raises(ObjectStoreUnavailableError, match="InternalError"):
        store.get_bytes("originals/" + "c" * 64)
    weed.stop()
    weed.sse_kek = right_key
    weed.start()
    assert store.get_bytes("originals/" + "c" * 64) == data
