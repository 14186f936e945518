"""Webhooks: allow-listed subscribers, HMAC-signed deliveries, retries, consent-bound events.

A real HTTP receiver runs on a free loopback port in a thread.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from digitizer.config import Settings
from digitizer.services import webhooks
from storage.db import AuditEvent, ECopy, WebhookDelivery, session_scope, utcnow
from tests.digitizer import rows
from tests.helpers import client

PID = "001203004567"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A loopback HTTP server answering with the scripted statuses (then 200)."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    location: str | None = None
    delay_s: float = 0.0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/sohoa"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.received.append(Received(dict(self.headers.items()), body))
            time.sleep(state.delay_s)
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            if 300 <= status < 400 and state.location:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def hooks(settings: Settings) -> Settings:
    settings.webhooks.allowed_hosts = ["127.0.0.1"]
    settings.webhooks.allow_http = True
    settings.webhooks.backoff_base_s = 0.0
    settings.webhooks.timeout_s = 2.0
    return settings


def _register(settings: Settings, url: str, client_id: str) -> dict[str, Any]:
    admin = client(settings, "admin")
    answer = admin.post(
        "/v1/subscribers", json={"name": "Cổng dịch vụ công", "url": url, "client_id": client_id}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def _vault_event(
    settings: Settings,
    *,
    granted: list[str] | None,
    event: str = "issued",
    expires_in: timedelta = timedelta(days=30),
    client_id: str | None = None,
) -> tuple[str, int]:
    """An e-copy (birth certificate) of PID, optionally a grant; returns (ecopy id, queued)."""
    with session_scope(settings.db.url) as session:
        person = rows.citizen(session, settings, PID)
        doc = rows.document(session, citizen_id=person.id)
        ecopy = rows.ecopy(session, doc)
        if granted is not None:
            assert client_id is not None
            rows.grant(session, person.id, client_id, granted, expires_in=expires_in)
        queued = webhooks.enqueue_event(session, ecopy, event)
        return ecopy.id, queued


def _portal(settings: Settings) -> str:
    with session_scope(settings.db.url) as session:
        client_id, _ = rows.portal_client(session)
    return client_id


@pytest.mark.smoke
def test_delivered_signed_with_ids_and_statuses_only(hooks: Settings, receiver: Receiver) -> None:
    client_id = _portal(hooks)
    created = _register(hooks, receiver.url, client_id)
    secret = created["secret"]
    assert secret.startswith("whsec_")
    ecopy_id, queued = _vault_event(hooks, granted=["birth_certificate"], client_id=client_id)
    assert queued == 1

    report = webhooks.deliver_due(hooks)
    assert len(report.delivered) == 1 and not report.retrying and not report.failed
    assert len(receiver.received) == 1
    got = receiver.received[0]
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert webhooks.verify_signature(
        secret, headers["x-sohoa-timestamp"], got.body, headers["x-sohoa-signature"]
    )
    assert not webhooks.verify_signature(
        secret, headers["x-sohoa-timestamp"], got.body + b" ", headers["x-sohoa-signature"]
    )
    assert not webhooks.verify_signature(
        "whsec_other", headers["x-sohoa-timestamp"], got.body, headers["x-sohoa-signature"]
    )
    assert headers["x-sohoa-delivery"] == str(report.delivered[0])
    assert headers["x-sohoa-event"] == "issued"
    payload = json.loads(got.body)
    assert set(payload) == {
        "event",
        "ecopy_id",
        "document_type",
        "status",
        "citizen_ref",
        "occurred_at",
    }
    assert payload["ecopy_id"] == ecopy_id and payload["status"] == "valid"
    assert payload["document_type"] == "birth_certificate"
    assert PID not in got.body.decode()

    # delivered once: a further pass sends nothing
    assert webhooks.deliver_due(hooks).delivered == []
    assert len(receiver.received) == 1
    with session_scope(hooks.db.url) as session:
        row = session.scalars(select(WebhookDelivery)).one()
        assert (row.status, row.attempts, row.last_error) == ("delivered", 1, None)
        secrets_in_db = [s.secret_encrypted for s in session.scalars(select(webhooks.Subscriber))]
        assert all(secret.encode() not in blob for blob in secrets_in_db)
        assert "subscriber.create" in session.scalars(select(AuditEvent.action)).all()


@pytest.mark.smoke
def test_server_error_is_retried_then_delivered_once(hooks: Settings, receiver: Receiver) -> None:
    receiver.statuses = [500, 200]
    client_id = _portal(hooks)
    _register(hooks, receiver.url, client_id)
    _vault_event(hooks, granted=["birth_certificate"], client_id=client_id, event="revoked")

    first = webhooks.deliver_due(hooks)
    assert first.retrying and not first.delivered
    with session_scope(hooks.db.url) as session:
        row = session.scalars(select(WebhookDelivery)).one()
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 500")
    second = webhooks.deliver_due(hooks)
    assert second.delivered == first.retrying
    assert webhooks.deliver_due(hooks).delivered == []
    assert len(receiver.received) == 2
    ids = {r.headers["X-Sohoa-Delivery"] for r in receiver.received}
    assert len(ids) == 1  # same delivery id on the retry: receivers drop duplicates
    assert json.loads(receiver.received[1].body)["event"] == "revoked"
    with session_scope(hooks.db.url) as session:
        row = session.scalars(select(WebhookDelivery)).one()
        assert (row.status, row.attempts) == ("delivered", 2)


def test_gives_up_after_max_attempts_with_backoff(hooks: Settings, receiver: Receiver) -> None:
    receiver.statuses = [503, 503, 503]
    hooks.webhooks.max_attempts = 2
    hooks.webhooks.backoff_base_s = 60.0
    client_id = _portal(hooks)
    _register(hooks, receiver.url, client_id)
    _vault_event(hooks, granted=["birth_certificate"], client_id=client_id)

    assert webhooks.deliver_due(hooks).retrying
    # backed off: not due yet
    assert webhooks.deliver_due(hooks).retrying == []
    with session_scope(hooks.db.url) as session:
        row = session.scalars(select(WebhookDelivery)).one()
        wait = (row.next_attempt_at - row.created_at).total_seconds()
        assert 30 <= wait <= 61
        row.next_attempt_at = row.created_at  # time passes
    final = webhooks.deliver_due(hooks)
    assert final.failed and len(receiver.received) == 2
    with session_scope(hooks.db.url) as session:
        row = session.scalars(select(WebhookDelivery)).one()
        assert (row.status, row.attempts, row.last_error) == ("failed", 2, "HTTP 503")


def test_backoff_doubles_with_jitter_and_cap(settings: Settings) -> None:
    config = settings.webhooks
    config.backoff_base_s, config.backoff_max_s = 10.0, 100.0
    for attempts, full in ((1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (9, 100)):
        delays = [webhooks.backoff(config, attempts) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays)
        assert len(set(delays)) > 1


def test_redirects_are_not_followed(hooks: Settings, receiver: Receiver) -> None:
    receiver.statuses = [302]
    receiver.location = "http://127.0.0.1:9/elsewhere"
    client_id = _portal(hooks)
    _register(hooks, receiver.url, client_id)
    _vault_event(hooks, granted=["birth_certificate"], client_id=client_id)
    report = webhooks.deliver_due(hooks)
    assert report.retrying and len(receiver.received) == 1
    with session_scope(hooks.db.url) as session:
        row = session.scalars(select(WebhookDelivery)).one()
        assert row.last_error is not None and "redirects are not followed" in row.last_error


@pytest.mark.smoke
def test_registration_refuses_hosts_not_allow_listed(hooks: Settings) -> None:
    client_id = _portal(hooks)
    admin = client(hooks, "admin")
    for url in (
        "http://evil.example.com/hook",
        "http://127.0.0.2:8080/hook",
        "http://user:pw@127.0.0.1/hook",
        "ftp://127.0.0.1/hook",
        "not a url",
    ):
        answer = admin.post(
            "/v1/subscribers", json={"name": "x", "url": url, "client_id": client_id}
        )
        assert answer.status_code == 422, (url, answer.text)
        assert answer.json()["type"] == "/problems/webhook-url-not-allowed"
    hooks.webhooks.allow_http = False
    answer = client(hooks, "admin").post(
        "/v1/subscribers", json={"name": "x", "url": "http://127.0.0.1/h", "client_id": client_id}
    )
    assert answer.status_code == 422 and "https" in answer.json()["detail"]
    # the client must be a portal key
    clerk_id = _clerk_id(hooks)
    hooks.webhooks.allow_http = True
    answer = admin.post(
        "/v1/subscribers", json={"name": "x", "url": "http://127.0.0.1/h", "client_id": clerk_id}
    )
    assert answer.status_code == 422
    # wildcard subdomains
    hooks.webhooks.allowed_hosts = ["*.dichvucong.gov.vn"]
    assert webhooks.host_allowed(hooks.webhooks, "api.dichvucong.gov.vn")
    assert not webhooks.host_allowed(hooks.webhooks, "dichvucong.gov.vn.evil.com")
    assert not webhooks.host_allowed(hooks.webhooks, "evildichvucong.gov.vn")


def _clerk_id(settings: Settings) -> str:
    from digitizer.services.keys import create_key

    with session_scope(settings.db.url) as session:
        row, _ = create_key(session, name="Lê Văn Cán Bộ", role="clerk")
        session.flush()
        return row.id


def test_host_removed_from_allow_list_is_not_sent(hooks: Settings, receiver: Receiver) -> None:
    client_id = _portal(hooks)
    _register(hooks, receiver.url, client_id)
    _vault_event(hooks, granted=["birth_certificate"], client_id=client_id)
    hooks.webhooks.allowed_hosts = ["portal.example.vn"]
    report = webhooks.deliver_due(hooks)
    assert report.failed and not receiver.received
    with session_scope(hooks.db.url) as session:
        row = session.scalars(select(WebhookDelivery)).one()
        assert row.last_error is not None and "allow-list" in row.last_error


@pytest.mark.smoke
def test_no_grant_no_delivery(hooks: Settings, receiver: Receiver) -> None:
    client_id = _portal(hooks)
    _register(hooks, receiver.url, client_id)
    assert _vault_event(hooks, granted=None)[1] == 0
    # a grant for other types, an expired grant: nothing either
    assert _vault_event(hooks, granted=["citizen_id"], client_id=client_id)[1] == 0
    assert (
        _vault_event(
            hooks,
            granted=["birth_certificate"],
            client_id=client_id,
            expires_in=timedelta(seconds=-1),
        )[1]
        == 0
    )
    # another portal's grant does not reach this subscriber
    other = _portal(hooks)
    assert _vault_event(hooks, granted=["birth_certificate"], client_id=other)[1] == 0
    assert webhooks.deliver_due(hooks).delivered == []
    assert receiver.received == []
    with session_scope(hooks.db.url) as session:
        assert session.scalars(select(WebhookDelivery)).all() == []


def test_list_and_revoke_subscribers(hooks: Settings, receiver: Receiver) -> None:
    client_id = _portal(hooks)
    created = _register(hooks, receiver.url, client_id)
    admin = client(hooks, "admin")
    listed = admin.get("/v1/subscribers").json()
    assert [s["id"] for s in listed] == [created["id"]]
    assert "secret" not in listed[0] and listed[0]["revoked_at"] is None
    for role in ("clerk", "approver", "portal", "verifier"):
        assert client(hooks, role).get("/v1/subscribers").status_code == 403

    # queued before the revocation, dropped at send time
    _vault_event(hooks, granted=["birth_certificate"], client_id=client_id)
    assert admin.delete(f"/v1/subscribers/{created['id']}").status_code == 204
    assert admin.delete("/v1/subscribers/nope").status_code == 404
    assert admin.get("/v1/subscribers").json()[0]["revoked_at"] is not None
    report = webhooks.deliver_due(hooks)
    assert report.failed and not receiver.received
    # and nothing new is queued for it
    assert _vault_event(hooks, granted=["birth_certificate"], client_id=client_id)[1] == 0
    counts = admin.get("/v1/subscribers").json()[0]["deliveries"]
    assert counts == {"pending": 0, "delivered": 0, "failed": 1}


def test_stale_or_malformed_timestamps_are_refused() -> None:
    body = b'{"event":"issued"}'
    now = int(time.time())
    header = webhooks.sign("s", str(now - 600), body)
    assert not webhooks.verify_signature("s", str(now - 600), body, header)
    assert webhooks.verify_signature("s", str(now - 600), body, header, tolerance_s=900)
    assert not webhooks.verify_signature("s", "yesterday", body, header)
    assert not webhooks.verify_signature("s", str(now), body, "")


def test_worker_maintenance_sends_due_deliveries(hooks: Settings, receiver: Receiver) -> None:
    from workers.sweeper import Maintenance

    client_id = _portal(hooks)
    _register(hooks, receiver.url, client_id)
    _vault_event(hooks, granted=["birth_certificate"], client_id=client_id)
    Maintenance(hooks).tick()
    assert len(receiver.received) == 1


def test_a_pass_stops_starting_requests_when_its_time_is_up(
    hooks: Settings, receiver: Receiver
) -> None:
    receiver.delay_s = 0.3
    client_id = _portal(hooks)
    _register(hooks, receiver.url, client_id)
    for _ in range(3):
        _vault_event(hooks, granted=["birth_certificate"], client_id=client_id)
    # a budget spent before the first request (as setting up can take on a loaded
    # machine): that one still starts, so every pass makes progress; no other does
    report = webhooks.deliver_due(hooks, budget_s=0.0)
    assert len(report.delivered) == 1 and len(receiver.received) == 1
    with session_scope(hooks.db.url) as session:
        waiting = session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.status == "pending")
        ).all()
        assert len(waiting) == 2 and all(d.attempts == 0 for d in waiting)
    # the rest are due at once, not after the claim's lease
    assert len(webhooks.deliver_due(hooks).delivered) == 2


def test_cli_delivers_once(hooks: Settings, receiver: Receiver) -> None:
    import os
    import subprocess
    import sys

    from digitizer.stack import settings_env

    client_id = _portal(hooks)
    _register(hooks, receiver.url, client_id)
    _vault_event(hooks, granted=["birth_certificate"], client_id=client_id)
    with session_scope(hooks.db.url) as session:  # and one whose validity has just ended
        ended = rows.ecopy(session, rows.document(session, citizen_id=None))
        ended.valid_until = utcnow() - timedelta(seconds=1)
    done = subprocess.run(
        [sys.executable, "-m", "digitizer.cli", "webhooks", "deliver"],
        capture_output=True,
        text=True,
        env={**os.environ, **settings_env(hooks)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "delivered 1, retrying 0, failed 0, expiries 1"
    assert len(receiver.received) == 1


@pytest.mark.smoke
def test_expiry_is_announced_once_to_granted_subscribers(
    hooks: Settings, receiver: Receiver
) -> None:
    """``expired`` changes no row: the maintenance tick finds e-copies past ``valid_until``
    and announces each once, with the shown status; revoked ones are not announced."""
    client_id = _portal(hooks)
    _register(hooks, receiver.url, client_id)
    now = utcnow()
    with session_scope(hooks.db.url) as session:
        person = rows.citizen(session, hooks, PID)
        rows.grant(session, person.id, client_id, ["birth_certificate"])
        made = {}
        for name, until, status in (
            ("ended", now - timedelta(minutes=1), "valid"),
            ("current", now + timedelta(days=1), "valid"),
            ("revoked", now - timedelta(minutes=1), "revoked"),
            ("forever", None, "valid"),
        ):
            ecopy = rows.ecopy(session, rows.document(session, citizen_id=person.id), status=status)
            ecopy.valid_until = until
            made[name] = ecopy.id

    assert webhooks.announce_expiries(hooks, now=now) == 2  # "ended" and "revoked"
    assert webhooks.announce_expiries(hooks, now=now) == 0  # once each
    with session_scope(hooks.db.url) as session:
        rows_ = session.scalars(select(WebhookDelivery)).all()
        assert [(r.event, r.payload["ecopy_id"], r.payload["status"]) for r in rows_] == [
            ("expired", made["ended"], "expired")
        ]
        marked = {e.id: e.expiry_notified_at is not None for e in session.scalars(select(ECopy))}
        assert marked == {made["ended"]: True, made["revoked"]: True} | {
            made["current"]: False,
            made["forever"]: False,
        }
        expire_events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "ecopy.expire")
        ).all()
        assert [e.detail["ecopy_id"] for e in expire_events] == [made["ended"]]

    # a day later the current one has ended too, and only it is announced
    assert webhooks.announce_expiries(hooks, now=now + timedelta(days=2)) == 1
    report = webhooks.deliver_due(hooks)
    assert len(report.delivered) == 2
    sent = sorted(json.loads(r.body)["ecopy_id"] for r in receiver.received)
    assert sent == sorted([made["ended"], made["current"]])
    assert {r.headers["X-Sohoa-Event"] for r in receiver.received} == {"expired"}


def test_expiry_is_not_announced_without_a_grant(hooks: Settings, receiver: Receiver) -> None:
    client_id = _portal(hooks)
    _register(hooks, receiver.url, client_id)
    with session_scope(hooks.db.url) as session:
        person = rows.citizen(session, hooks, PID)
        rows.grant(session, person.id, client_id, ["marriage_certificate"])  # another type
        ecopy = rows.ecopy(session, rows.document(session, citizen_id=person.id))
        ecopy.valid_until = utcnow() - timedelta(seconds=1)
    assert webhooks.announce_expiries(hooks) == 1
    with session_scope(hooks.db.url) as session:
        assert session.scalars(select(WebhookDelivery)).all() == []


@pytest.mark.smoke
def test_rotated_secret_signs_beside_the_old_one_until_the_grace_ends(
    hooks: Settings, receiver: Receiver
) -> None:
    client_id = _portal(hooks)
    created = _register(hooks, receiver.url, client_id)
    old = created["secret"]
    admin = client(hooks, "admin")
    answer = admin.post(f"/v1/subscribers/{created['id']}/secret")
    assert answer.status_code == 200, answer.text
    new = answer.json()["secret"]
    assert new.startswith("whsec_") and new != old
    assert answer.json()["previous_secret_until"]

    def delivered_with() -> Received:
        _vault_event(hooks, granted=["birth_certificate"], client_id=client_id)
        assert len(webhooks.deliver_due(hooks).delivered) == 1
        return receiver.received[-1]

    def verifies(secret: str, got: Received) -> bool:
        headers = {k.lower(): v for k, v in got.headers.items()}
        return webhooks.verify_signature(
            secret, headers["x-sohoa-timestamp"], got.body, headers["x-sohoa-signature"]
        )

    during = delivered_with()
    assert during.headers["X-Sohoa-Signature"].count("sha256=") == 2
    assert verifies(new, during) and verifies(old, during)
    assert not verifies("whsec_other", during)

    with session_scope(hooks.db.url) as session:  # the grace period is over
        row = session.get(webhooks.Subscriber, created["id"])
        assert row is not None and row.previous_secret_encrypted is not None
        assert old.encode() not in row.previous_secret_encrypted
        assert new.encode() not in row.secret_encrypted
        row.previous_secret_until = utcnow() - timedelta(seconds=1)
    after = delivered_with()
    assert after.headers["X-Sohoa-Signature"].count("sha256=") == 1
    assert verifies(new, after) and not verifies(old, after)

    with session_scope(hooks.db.url) as session:
        assert "subscriber.rotate" in session.scalars(select(AuditEvent.action)).all()
    assert admin.post("/v1/subscribers/" + "0" * 32 + "/secret").status_code == 404
    assert admin.delete(f"/v1/subscribers/{created['id']}").status_code == 204
    refused = admin.post(f"/v1/subscribers/{created['id']}/secret")
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
