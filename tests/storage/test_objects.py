"""The object store adapter against a real S3 server over HTTP."""

from __future__ import annotations

import httpx
import pytest

from digitizer.config import Settings
from digitizer.services.wiring import object_store
from storage.embedded import free_port
from storage.errors import ObjectNotFoundError, ObjectStoreUnavailableError
from storage.objects import ObjectStore, S3Config, derived_key, original_key


@pytest.fixture
def store(settings: Settings) -> ObjectStore:
    s = object_store(settings)
    s.ensure_bucket()
    return s


def test_keys_follow_the_design() -> None:
    assert original_key("ab" * 32) == f"originals/{'ab' * 32}"
    assert derived_key("f00", "ocr", "3", "result.json") == "derived/f00/ocr-3/result.json"


def test_put_get_stat_and_metadata(store: ObjectStore) -> None:
    store.put_bytes("derived/x/render-1/p.png", b"pixels", "image/png", metadata={"dpi": "300"})
    assert store.get_bytes("derived/x/render-1/p.png") == b"pixels"
    info = store.stat("derived/x/render-1/p.png")
    assert info is not None
    assert info.size == 6
    assert info.content_type == "image/png"
    assert info.metadata.get("x-amz-meta-dpi") == "300"
    assert store.stat("derived/x/none") is None
    assert store.list_keys("derived/x/") == ["derived/x/render-1/p.png"]


def test_ensure_bucket_is_idempotent(store: ObjectStore) -> None:
    store.ensure_bucket()
    store.ensure_bucket()
    assert store.ping()


def test_put_if_absent_writes_once(store: ObjectStore) -> None:
    key = original_key("1" * 64)
    assert store.put_if_absent(key, b"first")
    assert not store.put_if_absent(key, b"second")
    assert store.get_bytes(key) == b"first"


def test_missing_object(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError):
        store.get_bytes("derived/none/none")


def test_presigned_get_serves_the_bytes_over_http(store: ObjectStore) -> None:
    store.put_bytes("derived/y/pdf-1/searchable.pdf", b"%PDF-1.7 test", "application/pdf")
    url = store.presigned_get("derived/y/pdf-1/searchable.pdf", seconds=60)
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == b"%PDF-1.7 test"


def test_originals_are_never_deleted(store: ObjectStore) -> None:
    key = original_key("2" * 64)
    store.put_bytes(key, b"keep")
    with pytest.raises(ValueError, match="never deleted"):
        store.delete(key)
    assert store.get_bytes(key) == b"keep"


def test_wrong_secret_is_refused(settings: Settings) -> None:
    bad = ObjectStore(
        S3Config(
            endpoint=settings.s3.endpoint,
            access_key=settings.s3.access_key,
            secret_key="wrong-secret",
            bucket=settings.s3.bucket,
        )
    )
    with pytest.raises(ObjectStoreUnavailableError, match=r"refused|error"):
        bad.ensure_bucket()


def test_unreachable_server_fails_fast() -> None:
    dead = ObjectStore(
        S3Config(
            endpoint=f"127.0.0.1:{free_port()}",
            access_key="a",
            secret_key="b",
            bucket="dead-bucket",
        ),
        timeout=2,
    )
    with pytest.raises(ObjectStoreUnavailableError):
        dead.put_bytes("derived/a/b", b"x")
    assert not dead.ping()
