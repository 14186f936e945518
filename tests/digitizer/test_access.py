"""Office scope, stated purposes, failed-authentication limits and security headers."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from digitizer.api.app import create_app
from digitizer.api.ratelimit import FailedAuthLimiter
from digitizer.config import AuthSettings, Settings
from digitizer.services import access
from digitizer.services.keys import Actor
from storage.db import ApiKey, AuditEvent, Document, session_scope
from tests import samples
from tests.helpers import client, drain, make_key

MISSING = "0123456789abcdef0123456789abcdef"


def _upload(api: TestClient, data: bytes, name: str = "scan.png") -> dict:
    response = api.post("/v1/documents", files={"file": (name, data, "image/png")})
    assert response.status_code == 202, response.text
    return response.json()["documents"][0]


def _without_instance(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "instance"}


def _events(settings: Settings) -> list[AuditEvent]:
    with session_scope(settings.db.url) as session:
        rows = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
        session.expunge_all()
    return rows


@pytest.mark.smoke
def test_uploads_are_stamped_with_the_office_and_key(settings: Settings) -> None:
    api = client(settings, "clerk", office="ubnd-phuong-ba-dinh")
    doc = _upload(api, samples.png(["Giấy khai sinh"]))
    with session_scope(settings.db.url) as session:
        row = session.get(Document, doc["id"])
        assert row is not None and row.office == "ubnd-phuong-ba-dinh"
        key = session.get(ApiKey, row.uploaded_by)
        assert key is not None and key.role == "clerk" and key.office == row.office


@pytest.mark.smoke
def test_another_office_document_is_answered_like_a_missing_one(settings: Settings) -> None:
    own = client(settings, "clerk", office="office-a")
    other = client(settings, "clerk", office="office-b")
    doc = _upload(own, samples.png(["Quyết định số 7"]))
    assert own.get(f"/v1/documents/{doc['id']}").status_code == 200
    for suffix in ("", "/searchable.pdf", "/text"):
        hidden = other.get(f"/v1/documents/{doc['id']}{suffix}", follow_redirects=False)
        missing = other.get(f"/v1/documents/{MISSING}{suffix}", follow_redirects=False)
        assert hidden.status_code == missing.status_code == 404
        assert _without_instance(hidden.json()) == _without_instance(missing.json())
        assert hidden.headers["content-type"] == missing.headers["content-type"]
    # Writes too: reprocessing another office's document is a 404, whatever the purpose.
    assert other.post(f"/v1/documents/{doc['id']}/reprocess").status_code == 404
    approver = client(settings, "approver", office="office-b")
    response = approver.post(
        f"/v1/documents/{doc['id']}/reprocess", headers={"X-Purpose": "inter_office"}
    )
    assert response.status_code == 404
    assert own.post(f"/v1/documents/{doc['id']}/reprocess").status_code == 202


def test_batches_are_scoped_like_their_documents(settings: Settings) -> None:
    own = client(settings, "clerk", office="office-a")
    files = [
        ("files", ("1.png", samples.png(["Công văn số 1"]), "image/png")),
        ("files", ("2.png", samples.png(["Công văn số 2"]), "image/png")),
    ]
    batch = own.post("/v1/batches", files=files).json()["batch"]
    assert own.get(batch["status_url"]).status_code == 200
    other = client(settings, "clerk", office="office-b")
    hidden = other.get(batch["status_url"])
    missing = other.get(f"/v1/batches/{MISSING}")
    assert hidden.status_code == missing.status_code == 404
    assert _without_instance(hidden.json()) == _without_instance(missing.json())
    inspector = client(settings, "admin", office="so-noi-vu")
    seen = inspector.get(batch["status_url"], headers={"X-Purpose": "inspection"})
    assert seen.status_code == 200
    reads = [e for e in _events(settings) if e.detail.get("scope") == "other_office"]
    assert {e.purpose for e in reads} == {"inspection"}
    assert {e.document_id for e in reads} == {d["id"] for d in batch["documents"]}


def test_the_same_bytes_from_two_offices_are_two_documents(settings: Settings) -> None:
    a = client(settings, "clerk", office="office-a")
    b = client(settings, "clerk", office="office-b")
    data = samples.png(["Giấy chứng nhận kết hôn"])
    first = _upload(a, data)
    second = _upload(b, data)
    # Office B does not get office A's document, nor learn that A holds the same bytes.
    assert second["id"] != first["id"] and second["duplicate"] is False
    again = _upload(a, data)
    assert again["id"] == first["id"] and again["duplicate"] is True
    assert b.get(f"/v1/documents/{first['id']}").status_code == 404
    assert a.get(f"/v1/documents/{second['id']}").status_code == 404
    with session_scope(settings.db.url) as session:
        offices = session.scalars(select(Document.office).order_by(Document.office)).all()
        assert offices == ["office-a", "office-b"]
    # Keys and documents without an office deduplicate among themselves.
    plain = client(settings, "clerk")
    assert _upload(plain, data)["duplicate"] is False
    assert _upload(plain, data)["duplicate"] is True
    with session_scope(settings.db.url) as session:
        assert session.scalar(select(func.count()).select_from(Document)) == 3


def test_near_duplicates_are_looked_for_in_the_same_office_only(settings: Settings) -> None:
    a = client(settings, "clerk", office="office-a")
    b = client(settings, "clerk", office="office-b")
    lines = ["GIẤY KHAI SINH", "Họ và tên: Nguyễn Văn An", "Ngày sinh: 01/02/2003", "Số: 123/2003"]
    pid = "001203004567"
    first = a.post(
        "/v1/documents",
        data={"citizen_pid": pid},
        files={"file": ("a.png", samples.png(lines), "image/png")},
    ).json()["documents"][0]
    drain(settings)
    # Another scan of the same paper for the same citizen: in office A it is flagged as a
    # near-duplicate of A's document; in office B it must not point at A's document.
    rescan = samples.jpeg(lines)
    in_b = b.post(
        "/v1/documents", data={"citizen_pid": pid}, files={"file": ("b.jpg", rescan, "image/jpeg")}
    ).json()["documents"][0]
    in_a = a.post(
        "/v1/documents", data={"citizen_pid": pid}, files={"file": ("c.jpg", rescan, "image/jpeg")}
    ).json()["documents"][0]
    drain(settings)
    seen_b = b.get(f"/v1/documents/{in_b['id']}").json()
    seen_a = a.get(f"/v1/documents/{in_a['id']}").json()
    assert seen_a["duplicate_of"] == first["id"], seen_a
    assert seen_b["duplicate_of"] is None and first["id"] not in str(seen_b)


@pytest.mark.smoke
def test_a_stated_purpose_the_role_allows_opens_a_read_and_is_audited(
    settings: Settings,
) -> None:
    doc = _upload(client(settings, "clerk", office="office-a"), samples.png(["Trích lục"]))
    url = f"/v1/documents/{doc['id']}"
    approver = client(settings, "approver", office="office-b")
    assert approver.get(url).status_code == 404
    response = approver.get(url, headers={"X-Purpose": "inter_office"})
    assert response.status_code == 200 and response.json()["id"] == doc["id"]
    [event] = [e for e in _events(settings) if e.detail.get("scope") == "other_office"]
    assert (event.action, event.document_id, event.role, event.office) == (
        "document.read",
        doc["id"],
        "approver",
        "office-b",
    )
    # A purpose the role may not state is refused before any lookup: the same answer
    # for an existing and a missing document, so it reveals nothing.
    clerk = client(settings, "clerk", office="office-b")
    for target in (url, f"/v1/documents/{MISSING}"):
        refused = clerk.get(target, headers={"X-Purpose": "inter_office"})
        assert refused.status_code == 403, refused.text
        assert approver.get(target, headers={"X-Purpose": "support"}).status_code == 403
        unknown = approver.get(target, headers={"X-Purpose": "curiosity"})
        assert unknown.status_code == 422
    admin = client(settings, "admin", office="so-noi-vu")
    assert admin.get(url).status_code == 404
    assert admin.get(url, headers={"X-Purpose": "legal_request"}).status_code == 200
    # Reads of one's own office need no purpose and write no cross-office event.
    before = len(_events(settings))
    assert client(settings, "clerk", office="office-a").get(url).status_code == 200
    later = _events(settings)[before:]
    assert [e for e in later if e.detail.get("scope") == "other_office"] == []


def test_purpose_policy_is_one_table() -> None:
    assert access.PURPOSE_POLICY["clerk"] == frozenset()
    assert access.PURPOSE_POLICY["portal"] == frozenset()
    assert access.PURPOSE_POLICY["admin"] == frozenset(access.PURPOSES)
    for role, purposes in access.PURPOSE_POLICY.items():
        assert purposes <= set(access.PURPOSES), role
    actor = Actor("k", "n", "verifier", "office-a")
    assert access.check_purpose(actor, None) is None
    assert access.check_purpose(actor, " verification ") == "verification"
    portal = Actor("k", "n", "portal", None)
    assert not access.in_scope(portal, None)  # portals never reach staff documents


# -- failed authentication ---------------------------------------------------------------
def test_limiter_slides_and_counts_per_address_and_key_prefix() -> None:
    now = [1000.0]
    limiter = FailedAuthLimiter(max_failures=3, window_s=60, clock=lambda: now[0])
    key = "sohoa_abcdef012345_secret"
    assert limiter.buckets("10.0.0.1", key) == ["ip:10.0.0.1", "key:abcdef012345"]
    assert limiter.buckets("10.0.0.1", "junk") == ["ip:10.0.0.1"]
    # Three addresses guessing one key's secret: the prefix bucket fills.
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        now[0] += 10
        assert limiter.retry_after(limiter.buckets(address, key)) is None
        limiter.failed(limiter.buckets(address, key))
    assert limiter.retry_after(limiter.buckets("10.0.0.9", key)) == 40  # 1010 + 60 - 1030
    assert limiter.retry_after(limiter.buckets("10.0.0.9", None)) is None
    now[0] += 40  # the oldest failure leaves the window: one attempt frees up
    assert limiter.retry_after(limiter.buckets("10.0.0.9", key)) is None
    limiter.failed(limiter.buckets("10.0.0.9", key))
    assert limiter.retry_after(limiter.buckets("10.0.0.9", key)) == 10


@pytest.mark.smoke
def test_repeated_failed_keys_get_429_with_retry_after_then_recover(settings: Settings) -> None:
    settings = settings.model_copy(update={"auth": AuthSettings(max_failures=3, window_s=1.5)})
    api = TestClient(create_app(settings), raise_server_exceptions=False)
    good = make_key(settings, "clerk")
    for n in range(3):
        bad = api.get("/v1/documents/x", headers={"X-API-Key": f"sohoa_{n:012d}_forged"})
        assert bad.status_code == 401
    blocked = api.get("/v1/documents/x", headers={"X-API-Key": "sohoa_000000000009_forged"})
    assert blocked.status_code == 429
    assert blocked.headers["content-type"].startswith("application/problem+json")
    assert blocked.json()["type"] == "/problems/too-many-failed-authentications"
    assert 1 <= int(blocked.headers["Retry-After"]) <= 2
    # The address is refused even with a valid key until the window slides on ...
    assert api.get(f"/v1/documents/{MISSING}", headers={"X-API-Key": good}).status_code == 429
    # ... while another address is not affected, and public routes never are.
    elsewhere = TestClient(api.app, raise_server_exceptions=False, client=("10.1.2.3", 4000))
    assert elsewhere.get(f"/v1/documents/{MISSING}", headers={"X-API-Key": good}).status_code == 404
    assert api.get("/healthz").status_code == 200
    time.sleep(1.6)
    assert api.get(f"/v1/documents/{MISSING}", headers={"X-API-Key": good}).status_code == 404


def test_authentication_runs_before_body_validation(settings: Settings) -> None:
    anonymous = client(settings, None)
    clerk = client(settings, "clerk", office="office-a")
    url = f"/v1/documents/{MISSING}/issue"
    assert anonymous.post(url, json={"unexpected": 1}).status_code == 401
    assert clerk.post(url, json={"unexpected": 1}).status_code == 403
    # FastAPI parses a body before it resolves dependencies: a body that is not JSON at all
    # is refused first (422), before any key is looked at or any record is touched.
    broken = anonymous.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 422


# -- headers -----------------------------------------------------------------------------
def test_security_headers(settings: Settings) -> None:
    api = client(settings, None)
    response = api.get("/healthz")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "cdn.jsdelivr.net" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP here
    docs = api.get("/docs")
    assert docs.status_code == 200 and "cdn.jsdelivr.net" in docs.headers["Content-Security-Policy"]
    https = settings.model_copy(update={"public_base_url": "https://sohoa.example.gov.vn"})
    secure = TestClient(create_app(https)).get("/healthz")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")
