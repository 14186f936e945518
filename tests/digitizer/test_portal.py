"""Consent grants and the portal API: no grant, no data; expiry and revocation enforced."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from digitizer.config import AuthSettings, Settings
from fixtures.idp import TestIdentityProvider
from storage.db import (
    ApiKey,
    AuditEvent,
    ConsentGrant,
    ECopy,
    WebhookDelivery,
    session_scope,
    utcnow,
)
from tests.digitizer import vault_env
from tests.digitizer.vault_env import (
    OTHER_PID,
    PID,
    api,
    code_of,
    issue,
    portal,
    processed_document,
)

env, idp, vault_settings = vault_env.env, vault_env.idp, vault_env.vault_settings  # fixtures

GRANT = {"doc_types": ["birth_certificate"], "purpose": "Đăng ký nhập học", "valid_days": 30}


def _grant(
    client: httpx.Client | object, token: str, body: dict[str, object] | None = None
) -> dict[str, object]:
    response = client.post(  # type: ignore[attr-defined]
        "/v1/portal/consents", json=body or GRANT, headers={"X-Citizen-Token": token}
    )
    assert response.status_code == 201, response.text
    grant: dict[str, object] = response.json()
    return grant


def _audit(settings: Settings) -> list[AuditEvent]:
    with session_scope(settings.db.url) as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
        session.expunge_all()
        return events


@pytest.mark.smoke
def test_consent_needs_the_citizen_token(
    settings: Settings, idp: TestIdentityProvider, tmp_path: Path
) -> None:
    """A portal key alone cannot create, list or revoke grants; a token signed by another
    provider, an expired one or a staff key are refused; bad grants are 422 problems."""
    _, portal_a = portal(settings)
    assert portal_a.post("/v1/portal/consents", json=GRANT).status_code == 401
    assert portal_a.get("/v1/portal/consents").status_code == 401
    forged = TestIdentityProvider(tmp_path / "other-idp").token(PID)
    refused = portal_a.post("/v1/portal/consents", json=GRANT, headers={"X-Citizen-Token": forged})
    assert refused.status_code == 401
    assert refused.json()["type"] == "/problems/invalid-citizen-token"
    expired = idp.token(PID, issued_at=utcnow().timestamp() - 7200, lifetime_s=600)
    headers = {"X-Citizen-Token": expired}
    assert portal_a.post("/v1/portal/consents", json=GRANT, headers=headers).status_code == 401
    token = {"X-Citizen-Token": idp.token(PID)}
    clerk = api(settings, "clerk")
    assert clerk.post("/v1/portal/consents", json=GRANT, headers=token).status_code == 403

    for bad in (
        {**GRANT, "doc_types": ["passport"]},
        {**GRANT, "valid_days": 366},
        {**GRANT, "expires_at": (utcnow() + timedelta(days=10)).isoformat()},
        {k: v for k, v in GRANT.items() if k != "valid_days"},
        {**GRANT, "purpose": "   "},
        {**GRANT, "client_id": clerk.headers["X-API-Key"][6:18]},
    ):
        answer = portal_a.post("/v1/portal/consents", json=bad, headers=token)
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert _audit(settings) == []  # nothing was granted


@pytest.mark.smoke
def test_citizen_grants_lists_and_revokes(settings: Settings, idp: TestIdentityProvider) -> None:
    """GIVEN a citizen's token WHEN the portal creates a grant THEN it gets the citizen's
    opaque reference; the citizen lists their grants and revokes one; another citizen's
    token cannot revoke it; each step is audited without the personal id."""
    client_id, portal_a = portal(settings)
    token = idp.token(PID)
    grant = _grant(portal_a, token)
    assert grant["client_id"] == client_id and grant["status"] == "active"
    assert grant["doc_types"] == ["birth_certificate"]
    ref = grant["citizen_ref"]
    assert isinstance(ref, str) and PID not in ref
    until = (utcnow() + timedelta(days=200)).isoformat()
    second = _grant(portal_a, token, {**GRANT, "valid_days": None, "expires_at": until})
    assert second["citizen_ref"] == ref

    listed = portal_a.get("/v1/portal/consents", headers={"X-Citizen-Token": token}).json()
    assert listed["citizen_ref"] == ref
    assert [g["id"] for g in listed["grants"]] == [second["id"], grant["id"]]
    stranger = {"X-Citizen-Token": idp.token(OTHER_PID)}
    assert portal_a.get("/v1/portal/consents", headers=stranger).json() == {
        "citizen_ref": None,
        "grants": [],
    }
    url = f"/v1/portal/consents/{grant['id']}"
    assert portal_a.delete(url, headers=stranger).status_code == 404
    assert portal_a.delete(url).status_code == 401
    revoked = portal_a.delete(url, headers={"X-Citizen-Token": token})
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    again = portal_a.get("/v1/portal/consents", headers={"X-Citizen-Token": token}).json()
    assert {g["id"]: g["status"] for g in again["grants"]} == {
        grant["id"]: "revoked",
        second["id"]: "active",
    }
    events = _audit(settings)
    assert [e.action for e in events] == [
        "consent.create",
        "consent.create",
        "consent.list",
        "consent.revoke",
        "consent.list",
    ]
    assert all(e.citizen_id == ref and PID not in str(e.detail) for e in events)
    assert events[0].purpose == "Đăng ký nhập học"


def test_no_grant_no_data(vault_settings: Settings, idp: TestIdentityProvider) -> None:
    """A portal sees a citizen's documents only under its own active grant and only of the
    granted types: no grant, another client's grant, an expired or revoked grant -> 404,
    the same answer as for an unknown citizen."""
    approver = api(vault_settings, "approver")
    birth = issue(approver, processed_document(vault_settings))
    residence = issue(
        approver, processed_document(vault_settings, doc_type="residence_confirmation")
    )
    client_a, portal_a = portal(vault_settings, "Cổng A")
    _, portal_b = portal(vault_settings, "Cổng B")
    token = idp.token(PID)
    # Portal B's grant does not open anything for portal A.
    ref = _grant(portal_b, token)["citizen_ref"]
    docs = f"/v1/portal/citizens/{ref}/documents"
    unknown = portal_a.get("/v1/portal/citizens/" + "f" * 32 + "/documents")
    no_grant = portal_a.get(docs)
    assert no_grant.status_code == unknown.status_code == 404
    assert no_grant.json()["detail"] == unknown.json()["detail"]
    assert portal_a.get(f"{docs}/{birth['id']}").status_code == 404
    assert api(vault_settings, "clerk").get(docs).status_code == 403

    grant = _grant(portal_a, token)
    listed = portal_a.get(docs)
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["documents"]
    assert item["id"] == birth["id"] and item["doc_type"] == "birth_certificate"
    assert item["issuer"] == "Ủy ban nhân dân tỉnh Ninh Bình" and item["status"] == "valid"
    assert item["fields"] == {"full_name": "Nguyễn Thị Lan"}
    assert item["verify_url"].endswith(code_of(birth))
    # A type not granted is neither listed nor fetchable.
    assert portal_a.get(f"{docs}/{residence['id']}").status_code == 404

    fetched = portal_a.get(f"{docs}/{birth['id']}")
    assert fetched.status_code == 200, fetched.text
    link = fetched.json()["download_url"]
    assert httpx.get(link).content.startswith(b"%PDF")
    read = [e for e in _audit(vault_settings) if e.action == "portal.ecopy.link"]
    assert [(e.purpose, e.actor_id, e.detail["ecopy_id"]) for e in read] == [
        ("Đăng ký nhập học", client_a, birth["id"])
    ]

    with session_scope(vault_settings.db.url) as session:
        session.execute(
            update(ConsentGrant)
            .where(ConsentGrant.id == grant["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert portal_a.get(docs).status_code == 404  # expired
    assert portal_a.get(f"{docs}/{birth['id']}").status_code == 404

    fresh = _grant(portal_a, token)
    assert portal_a.get(docs).status_code == 200
    revoke = portal_a.delete(
        f"/v1/portal/consents/{fresh['id']}", headers={"X-Citizen-Token": token}
    )
    assert revoke.status_code == 200
    assert portal_a.get(docs).status_code == 404  # revoked


def test_etag_polling_and_status_changes(
    vault_settings: Settings, idp: TestIdentityProvider
) -> None:
    """GIVEN a portal polling with If-None-Match THEN it gets 304 while nothing changed;
    a revocation changes the ETag and shows the e-copy as revoked without a link; a newer
    e-copy replaces it in the list; a superseded one fetched by id has no link either."""
    approver = api(vault_settings, "approver")
    first = issue(approver, processed_document(vault_settings))
    client_id, portal_a = portal(vault_settings)
    hook = {"name": "Cổng A", "url": "http://127.0.0.1:9/hooks", "client_id": client_id}
    assert api(vault_settings, "admin", None).post("/v1/subscribers", json=hook).status_code == 201
    ref = _grant(portal_a, idp.token(PID))["citizen_ref"]
    docs = f"/v1/portal/citizens/{ref}/documents"
    listed = portal_a.get(docs)
    etag = listed.headers["etag"]
    assert etag.startswith('"')
    cached = portal_a.get(docs, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.headers["etag"] == etag and not cached.content
    assert portal_a.get(docs, headers={"If-None-Match": '"other", ' + etag}).status_code == 304
    assert portal_a.get(docs, headers={"If-None-Match": '"other"'}).status_code == 200

    reason = {"reason": "Thu hồi theo quyết định"}
    assert approver.post(f"/v1/ecopies/{first['id']}/revoke", json=reason).status_code == 200
    changed = portal_a.get(docs, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert [(d["id"], d["status"]) for d in changed.json()["documents"]] == [
        (first["id"], "revoked")
    ]
    revoked = portal_a.get(f"{docs}/{first['id']}").json()
    assert revoked["status"] == "revoked" and revoked["download_url"] is None
    assert revoked["revoked_at"]

    second = issue(approver, processed_document(vault_settings))
    third = issue(approver, processed_document(vault_settings))
    current = portal_a.get(docs).json()["documents"]
    assert [d["id"] for d in current] == [third["id"]]
    old = portal_a.get(f"{docs}/{second['id']}").json()
    assert (old["status"], old["superseded_by"], old["download_url"]) == (
        "superseded",
        third["id"],
        None,
    )
    actions = [e.action for e in _audit(vault_settings)]
    assert actions.count("portal.documents.list") == 4  # the 304s are not reads of data
    # Subscribers of the granted client hear of each change (issued before the grant: no).
    with session_scope(vault_settings.db.url) as session:
        events = [
            (d.event, d.payload["ecopy_id"], d.payload["status"])
            for d in session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))
        ]
    assert events == [
        ("revoked", first["id"], "revoked"),
        ("issued", second["id"], "valid"),
        ("superseded", second["id"], "superseded"),
        ("issued", third["id"], "valid"),
    ]


@pytest.mark.smoke
def test_etag_changes_when_an_ecopy_expires(
    vault_settings: Settings, idp: TestIdentityProvider
) -> None:
    """Expiry changes no row (the status is derived from ``valid_until``), yet a portal
    polling with If-None-Match must not keep a cached ``valid``: the ETag covers the shown
    status."""
    approver = api(vault_settings, "approver")
    ecopy = issue(approver, processed_document(vault_settings))
    _, portal_a = portal(vault_settings)
    ref = _grant(portal_a, idp.token(PID))["citizen_ref"]
    docs = f"/v1/portal/citizens/{ref}/documents"
    with session_scope(vault_settings.db.url) as session:
        session.execute(
            update(ECopy)
            .where(ECopy.id == ecopy["id"])
            .values(valid_until=utcnow() + timedelta(hours=1), updated_at=ECopy.updated_at)
        )
    etag = portal_a.get(docs).headers["etag"]
    assert portal_a.get(docs, headers={"If-None-Match": etag}).status_code == 304
    with session_scope(vault_settings.db.url) as session:  # an hour later, as it were
        session.execute(
            update(ECopy)
            .where(ECopy.id == ecopy["id"])
            .values(valid_until=utcnow() - timedelta(seconds=1), updated_at=ECopy.updated_at)
        )
    polled = portal_a.get(docs, headers={"If-None-Match": etag})
    assert polled.status_code == 200 and polled.headers["etag"] != etag
    assert [d["status"] for d in polled.json()["documents"]] == ["expired"]


@pytest.mark.smoke
def test_polling_reads_check_the_key_they_are_read_with(
    vault_settings: Settings, idp: TestIdentityProvider
) -> None:
    """The list and fetch calls check the key in the read itself: a forged secret, a
    revoked or an expired portal key gets 401 and no data (and forged secrets count
    towards the 429 limit); a staff key gets 403 before any 404; a good key's use is
    noted."""
    settings = vault_settings.model_copy(update={"auth": AuthSettings(max_failures=3)})
    approver = api(settings, "approver")
    birth = issue(approver, processed_document(settings))
    client_id, portal_a = portal(settings)
    ref = _grant(portal_a, idp.token(PID))["citizen_ref"]
    docs = f"/v1/portal/citizens/{ref}/documents"
    one = f"{docs}/{birth['id']}"
    assert portal_a.get(docs).status_code == portal_a.get(one).status_code == 200
    with session_scope(settings.db.url) as session:
        used = session.get(ApiKey, client_id)
        assert used is not None and used.last_used_at is not None

    staff = api(settings, "clerk")
    assert staff.get(docs).status_code == staff.get(one).status_code == 403
    too_long = "/v1/portal/citizens/" + "f" * 40 + "/documents"
    assert staff.get(too_long).status_code == 403  # the role, before the citizen
    assert portal_a.get(too_long).status_code == 404

    good = str(portal_a.headers["X-API-Key"])
    forged = good[: good.rindex("_") + 1] + "x" * 43  # the real prefix, another secret
    refused = [portal_a.get(path, headers={"X-API-Key": forged}) for path in (docs, one)]
    assert [r.status_code for r in refused] == [401, 401]
    assert all("documents" not in r.json() and "fields" not in r.json() for r in refused)
    assert portal_a.get(docs, headers={"X-API-Key": forged}).status_code == 401
    # Three failures for this key's prefix: the next attempt waits, even with the secret.
    assert portal_a.get(docs).status_code == 429

    _, portal_b = portal(vault_settings, "Cổng B")  # the default limit
    ref_b = _grant(portal_b, idp.token(PID))["citizen_ref"]
    docs_b = f"/v1/portal/citizens/{ref_b}/documents"
    assert portal_b.get(docs_b).status_code == 200
    key_b = str(portal_b.headers["X-API-Key"]).split("_")[1]
    for change in ({"expires_at": utcnow() - timedelta(seconds=1)}, {"revoked_at": utcnow()}):
        with session_scope(vault_settings.db.url) as session:
            session.execute(update(ApiKey).where(ApiKey.prefix == key_b).values(**change))
        assert portal_b.get(docs_b).status_code == 401
        assert portal_b.get(f"{docs_b}/{birth['id']}").status_code == 401
        with session_scope(vault_settings.db.url) as session:
            session.execute(
                update(ApiKey)
                .where(ApiKey.prefix == key_b)
                .values(expires_at=None, revoked_at=None)
            )
        assert portal_b.get(docs_b).status_code == 200


@pytest.mark.smoke
def test_polling_reads_refuse_a_malformed_key(
    vault_settings: Settings, idp: TestIdentityProvider
) -> None:
    """A key that is not shaped like one (no ``sohoa_`` prefix, no secret part) is refused
    with 401 and a problem document before any read, on both polling reads."""
    client_id, portal_a = portal(vault_settings)
    ref = _grant(portal_a, idp.token(PID))["citizen_ref"]
    docs = f"/v1/portal/citizens/{ref}/documents"
    for bad in ("not-a-key", "sohoa_onlyprefix", f"Bearer {client_id}"):
        for path in (docs, f"{docs}/{'0' * 32}"):
            refused = portal_a.get(path, headers={"X-API-Key": bad})
            assert refused.status_code == 401, (bad, path)
            assert refused.headers["content-type"].startswith("application/problem+json")
