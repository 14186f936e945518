"""The upload and status API on real PostgreSQL (or SQLite), SeaweedFS and Redis."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select

from digitizer.config import Settings
from digitizer.services.wiring import object_store
from storage.db import Document, OutboxEntry, session_scope
from storage.embedded import free_port
from storage.objects import original_key
from tests import samples
from tests.helpers import client, drain

PROBLEM = "application/problem+json"


def _count(settings: Settings, model: type) -> int:
    with session_scope(settings.db.url) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.smoke
def test_upload_returns_202_with_id_and_status_url(settings: Settings) -> None:
    api = client(settings)
    data = samples.png()
    response = api.post("/v1/documents", files={"file": ("scan.png", data, "image/png")})
    assert response.status_code == 202, response.text
    body = response.json()
    [doc] = body["documents"]
    assert doc["sha256"] == hashlib.sha256(data).hexdigest()
    assert doc["duplicate"] is False
    assert doc["status_url"] == f"/v1/documents/{doc['id']}"
    status = api.get(doc["status_url"]).json()
    assert status["state"] in {"uploaded", "queued"}
    assert status["filename"] == "scan.png"
    # The original is stored byte for byte under its hash.
    assert object_store(settings).get_bytes(original_key(doc["sha256"])) == data


@pytest.mark.smoke
def test_same_bytes_twice_is_the_same_document_and_one_job(settings: Settings) -> None:
    api = client(settings)
    data = samples.jpeg()
    first = api.post("/v1/documents", files={"file": ("a.jpg", data, "image/jpeg")}).json()
    second = api.post("/v1/documents", files={"file": ("b.jpg", data, "image/jpeg")}).json()
    assert first["documents"][0]["id"] == second["documents"][0]["id"]
    assert second["documents"][0]["duplicate"] is True
    assert _count(settings, Document) == 1
    assert _count(settings, OutboxEntry) == 1


def test_batch_zip_progress_reaches_done(settings: Settings) -> None:
    api = client(settings)
    archive = samples.zip_of(
        {
            "ho-so/1.png": samples.png(["Giấy khai sinh số 12"]),
            "ho-so/2.jpg": samples.jpeg(["Quyết định số 34/QĐ-UBND"]),
            "ho-so/3.pdf": samples.image_pdf(2),
            "ho-so/readme.txt": b"not a scan",
        }
    )
    response = api.post(
        "/v1/batches",
        files=[("files", ("ho-so.zip", archive, "application/zip"))],
        data={"name": "Lô số 1"},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert len(body["documents"]) == 3
    assert [r["filename"] for r in body["rejected"]] == ["readme.txt"]
    assert body["rejected"][0]["problem"]["status"] == 415
    batch_url = body["batch"]["status_url"]
    before = api.get(batch_url).json()["progress"]
    assert before["total"] == 3 and before["done"] is False

    drain(settings)

    after = api.get(batch_url).json()
    assert after["progress"]["done"] is True
    assert after["progress"]["percent"] == 100.0
    assert sum(after["progress"]["by_state"].values()) == 3
    for doc in after["documents"]:
        status = api.get(doc["status_url"]).json()
        assert status["state"] in {"ready", "needs_review"}, status
        assert status["searchable_pdf_url"]


@pytest.mark.parametrize(
    ("name", "data", "status", "slug"),
    [
        ("empty.pdf", b"", 422, "empty-file"),
        ("fake.pdf", b"<html><body>hello</body></html>", 415, "unsupported-media-type"),
        ("truncated.pdf", samples.truncated_pdf(), 422, "corrupt-file"),
        ("corrupt.pdf", samples.corrupt_pdf(), 422, "corrupt-file"),
        ("locked.pdf", samples.encrypted_pdf(), 422, "encrypted-file"),
        ("bomb.png", samples.bomb_png(12000, 12000), 422, "image-too-large"),
        ("image.gif", b"GIF89a\x01\x00\x01\x00\x00\x00", 415, "unsupported-media-type"),
        ("evil.zip", samples.zip_of({"../../etc/cron.d/x.png": b"1"}), 422, "unsafe-archive"),
        ("abs.zip", samples.zip_of({"/etc/x.png": b"1"}), 422, "unsafe-archive"),
        ("bomb.zip", samples.zip_bomb(3), 422, "unsafe-archive"),
    ],
)
def test_bad_input_gets_a_problem_and_loses_nothing(
    settings: Settings, name: str, data: bytes, status: int, slug: str
) -> None:
    api = client(settings)
    kept = samples.png(["Văn bản đã lưu trước"])
    stored = api.post("/v1/documents", files={"file": ("kept.png", kept, "image/png")}).json()
    response = api.post("/v1/documents", files={"file": (name, data, "application/pdf")})
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["type"] == f"/problems/{slug}"
    assert problem["status"] == status
    assert problem["detail"]
    # Nothing stored before is lost; nothing new was recorded.
    assert _count(settings, Document) == 1
    sha = stored["documents"][0]["sha256"]
    assert object_store(settings).get_bytes(original_key(sha)) == kept


def test_file_over_the_size_limit(settings: Settings) -> None:
    small = settings.model_copy(
        update={"limits": settings.limits.model_copy(update={"max_upload_bytes": 2_000})}
    )
    api = client(small)
    response = api.post("/v1/documents", files={"file": ("big.png", samples.png(), "image/png")})
    assert response.status_code == 413
    assert response.json()["type"] == "/problems/file-too-large"
    assert _count(settings, Document) == 0


@pytest.mark.smoke
def test_keys_and_roles_are_required(settings: Settings) -> None:
    anonymous = client(settings, role=None)
    response = anonymous.post(
        "/v1/documents", files={"file": ("a.png", samples.png(), "image/png")}
    )
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)
    bad_key = client(settings, role=None)
    bad_key.headers["X-API-Key"] = "sohoa_000000000000_forged"
    assert bad_key.get("/v1/documents/x").status_code == 401
    portal = client(settings, role="portal")
    assert (
        portal.post(
            "/v1/documents", files={"file": ("a.png", samples.png(), "image/png")}
        ).status_code
        == 403
    )
    # Health and the OpenAPI schema stay public.
    assert anonymous.get("/healthz").status_code == 200
    assert "/v1/documents" in anonymous.get("/openapi.json").json()["paths"]


def test_unknown_document_is_a_404_problem(settings: Settings) -> None:
    api = client(settings)
    response = api.get("/v1/documents/0123456789abcdef0123456789abcdef")
    assert response.status_code == 404
    assert response.json()["type"] == "/problems/not-found"


def test_object_store_down_refuses_uploads_with_503(settings: Settings) -> None:
    down = settings.model_copy(
        update={"s3": settings.s3.model_copy(update={"endpoint": f"127.0.0.1:{free_port()}"})}
    )
    api = client(down)
    response = api.post("/v1/documents", files={"file": ("a.png", samples.png(), "image/png")})
    assert response.status_code == 503
    assert response.json()["type"] == "/problems/service-unavailable"
    assert _count(settings, Document) == 0
    assert api.get("/readyz").status_code == 503


def test_invalid_personal_id_is_refused_before_storing(settings: Settings) -> None:
    api = client(settings)
    response = api.post(
        "/v1/documents",
        files={"file": ("a.png", samples.png(), "image/png")},
        data={"citizen_pid": "12345"},
    )
    assert response.status_code == 422
    assert response.json()["type"] == "/problems/invalid-personal-id"
    assert "12345" not in response.text
    assert _count(settings, Document) == 0
