"""Change notifications to subscribers: HMAC-signed webhooks carrying ids and statuses.

An event about an e-copy (issued, superseded, revoked, expired) becomes one delivery row
per active subscriber whose portal client holds an active, unexpired consent
grant from that e-copy's citizen covering its document type. The rows are
written in the caller's transaction (they land or vanish with the change) and
sent later by the worker's maintenance tick (``deliver_due``), retried with
exponential backoff and jitter, then marked ``failed`` with the last error.

Payloads carry ids and statuses only, never fields or personal data.

``expired`` has no change behind it (the status is derived from ``valid_until``): the
maintenance tick announces e-copies whose validity has ended (:func:`announce_expiries`),
once each.

Each request is a JSON ``POST`` with

- ``X-Sohoa-Delivery``: the delivery id (the same on every retry: receivers
  use it to drop duplicates);
- ``X-Sohoa-Timestamp``: Unix seconds when this attempt was signed;
- ``X-Sohoa-Signature``: ``sha256=`` + hex HMAC-SHA256 of ``timestamp + "." + body``
  with the subscriber's secret (see :func:`verify_signature`).

Subscribers are registered only at allow-listed hosts (``SOHOA_WEBHOOKS__ALLOWED_HOSTS``);
the list is checked again before every send, redirects are never followed and
timeouts are short.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from digitizer.config import Settings, WebhookSettings
from digitizer.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    WebhookUrlNotAllowedError,
)
from digitizer.services import audit
from digitizer.services.keys import Actor
from digitizer.services.secrets import master_secret
from storage.db import (
    ApiKey,
    ConsentGrant,
    ECopy,
    ECopyStatus,
    Subscriber,
    WebhookDelivery,
    new_id,
    session_scope,
    shown_status,
    utcnow,
)

log = logging.getLogger(__name__)

#: The events subscribers can receive.
EVENTS = ("issued", "superseded", "revoked", "expired")

#: Delivery statuses.
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"

SIGNATURE_HEADER = "X-Sohoa-Signature"
TIMESTAMP_HEADER = "X-Sohoa-Timestamp"
DELIVERY_HEADER = "X-Sohoa-Delivery"
EVENT_HEADER = "X-Sohoa-Event"

#: How long receivers should accept a signed timestamp (replay window).
DEFAULT_TOLERANCE_S = 300


# -- events ------------------------------------------------------------------------------
def grant_covers(grant: ConsentGrant, doc_type: str | None) -> bool:
    """Whether a grant's document types include ``doc_type``."""
    return doc_type is not None and doc_type in (grant.doc_types or [])


def enqueue_event(session: Session, ecopy: ECopy, event: str) -> int:
    """Queue ``event`` about ``ecopy`` for every subscriber entitled to it.

    Returns the number of delivery rows added (in the caller's transaction).
    """
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    if ecopy.citizen_id is None:
        return 0
    now = utcnow()
    grants = session.scalars(
        select(ConsentGrant).where(
            ConsentGrant.citizen_id == ecopy.citizen_id,
            ConsentGrant.revoked_at.is_(None),
            ConsentGrant.expires_at > now,
        )
    ).all()
    clients = {g.client_id for g in grants if grant_covers(g, ecopy.doc_type)}
    if not clients:
        return 0
    subscribers = session.scalars(
        select(Subscriber)
        .where(Subscriber.client_id.in_(clients), Subscriber.revoked_at.is_(None))
        .order_by(Subscriber.created_at, Subscriber.id)
    ).all()
    payload = {
        "event": event,
        "ecopy_id": ecopy.id,
        "document_type": ecopy.doc_type,
        "status": shown_status(ecopy.status, ecopy.valid_until, now),
        "citizen_ref": ecopy.citizen_id,
        "occurred_at": now.isoformat(timespec="seconds"),
    }
    for subscriber in subscribers:
        session.add(
            WebhookDelivery(
                subscriber_id=subscriber.id,
                event=event,
                payload=dict(payload),
                status=PENDING,
                next_attempt_at=now,
            )
        )
    return len(subscribers)


def announce_expiries(settings: Settings, *, limit: int = 500, now: datetime | None = None) -> int:
    """Queue ``expired`` for valid e-copies whose ``valid_until`` has passed and that were
    not announced yet; each is marked (``expiry_notified_at``) in the same transaction,
    with an audit event, so it is announced once. Revoked and superseded e-copies past
    their validity are marked without an event (their subscribers heard of the change
    that mattered). Returns the number of e-copies handled (at most ``limit`` a call)."""
    now = now or utcnow()
    with session_scope(settings.db.url) as session:
        query = (
            select(ECopy)
            .where(
                ECopy.expiry_notified_at.is_(None),
                ECopy.valid_until.is_not(None),
                ECopy.valid_until <= now,
            )
            .order_by(ECopy.valid_until, ECopy.id)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)  # two workers' ticks: no twice
        due = list(session.scalars(query))
        if not due:
            return 0
        # Claimed first, only where still unmarked: a concurrent tick that read the same
        # rows (SQLite has no SKIP LOCKED) marks fewer and gives way. ``updated_at`` is
        # kept: the listing's ETag changed when the validity ended.
        claimed = session.execute(
            update(ECopy)
            .where(ECopy.id.in_([ecopy.id for ecopy in due]), ECopy.expiry_notified_at.is_(None))
            .values(expiry_notified_at=now, updated_at=ECopy.updated_at)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != len(due):  # type: ignore[attr-defined]
            session.rollback()
            return 0
        announced = [ecopy for ecopy in due if ecopy.status == ECopyStatus.VALID]
        for ecopy in announced:
            enqueue_event(session, ecopy, "expired")
        for ecopy in announced:  # last: the audit chain stays locked until the commit
            audit.record(
                session,
                None,
                "ecopy.expire",
                citizen_id=ecopy.citizen_id,
                document_id=ecopy.document_id,
                detail={"ecopy_id": ecopy.id, "status": ECopyStatus.EXPIRED.value},
            )
        return len(due)


# -- signatures --------------------------------------------------------------------------
def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Sohoa-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """For receivers: whether ``header`` signs ``body`` at a fresh ``timestamp``.

    ``timestamp`` is the ``X-Sohoa-Timestamp`` header, ``body`` the raw request
    body (before any JSON parsing), ``header`` the ``X-Sohoa-Signature`` header: one
    ``sha256=...`` signature, or two separated by a comma while a rotated secret's grace
    period runs (any one made with ``secret`` will do). A timestamp more than
    ``tolerance_s`` away from ``now`` is refused (replays).
    """
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body)
    offered = [part.strip() for part in (header or "").split(",")][:4]
    return any([hmac.compare_digest(expected, part) for part in offered])


# -- secrets -----------------------------------------------------------------------------
def _secret_cipher(settings: Settings) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"sohoa/webhook-secret/v1"
    ).derive(master_secret(settings))
    return AESGCM(key)


def encrypt_secret(settings: Settings, secret: str, subscriber_id: str) -> bytes:
    """The subscriber's secret encrypted with the deployment key, bound to its row."""
    nonce = os.urandom(12)
    return nonce + _secret_cipher(settings).encrypt(nonce, secret.encode(), subscriber_id.encode())


def decrypt_secret(settings: Settings, subscriber: Subscriber) -> str:
    """The subscriber's secret, for signing."""
    return _decrypt(settings, subscriber.secret_encrypted, subscriber.id)


def signing_secrets(settings: Settings, subscriber: Subscriber, now: datetime) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the one before the last
    rotation while its grace period runs."""
    found = [decrypt_secret(settings, subscriber)]
    previous, until = subscriber.previous_secret_encrypted, subscriber.previous_secret_until
    if previous is not None and until is not None and until > now:
        found.append(_decrypt(settings, previous, subscriber.id))
    return found


def _decrypt(settings: Settings, blob: bytes, subscriber_id: str) -> str:
    return _secret_cipher(settings).decrypt(blob[:12], blob[12:], subscriber_id.encode()).decode()


# -- allow-list --------------------------------------------------------------------------
def host_allowed(config: WebhookSettings, host: str) -> bool:
    """Whether ``host`` matches the allow-list (exact, or ``*.suffix`` for subdomains)."""
    host = host.lower().rstrip(".")
    for entry in config.allowed_hosts:
        entry = entry.lower().strip().rstrip(".")
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and len(host) > len(entry) - 1:
                return True
        elif entry and host == entry:
            return True
    return False


def check_url(config: WebhookSettings, url: str) -> str:
    """``url`` if it may receive webhooks now.

    Raises:
        WebhookUrlNotAllowedError: malformed, credentials in it, wrong scheme, or a
            host that is not allow-listed.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlNotAllowedError("the webhook URL is malformed") from exc
    schemes = {"https", "http"} if config.allow_http else {"https"}
    if parts.scheme not in schemes:
        raise WebhookUrlNotAllowedError(f"the webhook URL must use {' or '.join(sorted(schemes))}")
    if not parts.hostname:
        raise WebhookUrlNotAllowedError("the webhook URL has no host")
    if parts.username or parts.password:
        raise WebhookUrlNotAllowedError("the webhook URL must not carry credentials")
    if parts.fragment:
        raise WebhookUrlNotAllowedError("the webhook URL must not have a fragment")
    if port is not None and not 0 < port < 65536:
        raise WebhookUrlNotAllowedError("the webhook URL has an invalid port")
    if not host_allowed(config, parts.hostname):
        raise WebhookUrlNotAllowedError(
            f"the host {parts.hostname} is not on the webhook allow-list "
            "(SOHOA_WEBHOOKS__ALLOWED_HOSTS)"
        )
    return url


# -- subscribers -------------------------------------------------------------------------
def register(
    session: Session,
    settings: Settings,
    actor: Actor | None,
    *,
    name: str,
    url: str,
    client_id: str,
) -> tuple[Subscriber, str]:
    """Register a subscriber for the portal client ``client_id``; returns it and its secret.

    The secret is returned once and stored only encrypted.

    Raises:
        WebhookUrlNotAllowedError: the URL may not receive webhooks.
        InvalidRequestError: ``client_id`` is not an active portal key.
    """
    check_url(settings.webhooks, url)
    client = session.get(ApiKey, client_id)
    if client is None or client.revoked_at is not None or client.role != "portal":
        raise InvalidRequestError("client_id must be the key id of an active portal client")
    secret = _new_secret()
    subscriber_id = new_id()
    subscriber = Subscriber(
        id=subscriber_id,
        name=name,
        url=url,
        client_id=client_id,
        secret_encrypted=encrypt_secret(settings, secret, subscriber_id),
        created_at=utcnow(),
    )
    session.add(subscriber)
    session.flush()
    audit.record(
        session,
        actor,
        "subscriber.create",
        detail={"subscriber_id": subscriber.id, "client_id": client_id},
    )
    return subscriber, secret


def _new_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def rotate_secret(
    session: Session, settings: Settings, actor: Actor | None, subscriber_id: str
) -> tuple[Subscriber, str]:
    """Give a subscriber a new secret; returns it and the secret (shown once).

    The old secret keeps signing deliveries beside the new one for
    ``webhooks.rotation_grace_s`` (a secret rotated twice within that time: the one in
    use before the second rotation is kept).

    Raises:
        NotFoundError: no such subscriber.
        ConflictError: the subscriber was revoked.
    """
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFoundError("no subscriber has this id")
    if subscriber.revoked_at is not None:
        raise ConflictError("the subscriber was revoked; register it again")
    secret = _new_secret()
    now = utcnow()
    subscriber.previous_secret_encrypted = subscriber.secret_encrypted
    subscriber.previous_secret_until = now + timedelta(seconds=settings.webhooks.rotation_grace_s)
    subscriber.secret_encrypted = encrypt_secret(settings, secret, subscriber.id)
    session.flush()
    audit.record(
        session,
        actor,
        "subscriber.rotate",
        detail={
            "subscriber_id": subscriber.id,
            "previous_until": subscriber.previous_secret_until.isoformat(timespec="seconds"),
        },
    )
    return subscriber, secret


def list_subscribers(session: Session) -> list[Subscriber]:
    """All subscribers, newest first (revoked ones included)."""
    return list(
        session.scalars(
            select(Subscriber).order_by(Subscriber.created_at.desc(), Subscriber.id.desc())
        )
    )


def revoke(session: Session, actor: Actor | None, subscriber_id: str) -> Subscriber:
    """Stop a subscriber: no new deliveries, pending ones fail at their next send.

    Raises:
        NotFoundError: no such subscriber.
    """
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFoundError("no subscriber has this id")
    if subscriber.revoked_at is None:
        subscriber.revoked_at = utcnow()
        audit.record(session, actor, "subscriber.revoke", detail={"subscriber_id": subscriber.id})
    return subscriber


# -- delivery ----------------------------------------------------------------------------
@dataclass
class DeliveryReport:
    """What one delivery pass did (delivery ids)."""

    delivered: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


@dataclass
class _Claimed:
    id: int
    url: str
    #: The secrets that sign it (empty when refused).
    secrets: list[str]
    body: bytes
    event: str
    attempts: int
    refusal: str | None


def backoff(config: WebhookSettings, attempts: int) -> float:
    """Seconds to wait after ``attempts`` failed attempts: doubling, capped, jittered."""
    delay = min(config.backoff_max_s, config.backoff_base_s * 2 ** max(0, attempts - 1))
    return delay / 2 + random.uniform(0, delay / 2)


def _claim(settings: Settings, limit: int, now: datetime) -> list[_Claimed]:
    """Take due deliveries for this pass; their lease hides them from other workers."""
    config = settings.webhooks
    lease = now + timedelta(seconds=config.timeout_s * 3 + 30)
    claimed: list[_Claimed] = []
    with session_scope(settings.db.url) as session:
        query = (
            select(WebhookDelivery)
            .where(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
        )
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        for delivery in session.scalars(query):
            subscriber = session.get(Subscriber, delivery.subscriber_id)
            refusal = None
            signing: list[str] = []
            if subscriber is None or subscriber.revoked_at is not None:
                refusal = "the subscriber was revoked"
            else:
                try:
                    check_url(config, subscriber.url)
                    signing = signing_secrets(settings, subscriber, now)
                except WebhookUrlNotAllowedError as exc:
                    refusal = exc.detail
            delivery.next_attempt_at = lease
            claimed.append(
                _Claimed(
                    id=delivery.id,
                    url=subscriber.url if subscriber else "",
                    secrets=signing,
                    body=json.dumps(
                        delivery.payload, ensure_ascii=False, separators=(",", ":")
                    ).encode(),
                    event=delivery.event,
                    attempts=delivery.attempts,
                    refusal=refusal,
                )
            )
    return claimed


def _send(client: httpx.Client, item: _Claimed) -> str | None:
    """POST one delivery; ``None`` on a 2xx answer, else the reason."""
    assert item.secrets
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "sohoa-webhooks/1",
        DELIVERY_HEADER: str(item.id),
        TIMESTAMP_HEADER: timestamp,
        EVENT_HEADER: item.event,
        SIGNATURE_HEADER: ", ".join(sign(secret, timestamp, item.body) for secret in item.secrets),
    }
    try:
        response = client.post(item.url, content=item.body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return None
    if response.is_redirect:
        return f"HTTP {response.status_code}: redirects are not followed"
    return f"HTTP {response.status_code}"


def deliver_due(
    settings: Settings,
    *,
    limit: int | None = None,
    budget_s: float | None = None,
    transport: httpx.BaseTransport | None = None,
) -> DeliveryReport:
    """Send the deliveries that are due; returns what happened to each.

    With ``budget_s``, no new request starts after that many seconds, the first excepted
    (the worker's heartbeat calls this: slow receivers must not stall it); the rest stay
    due.
    """
    config = settings.webhooks
    report = DeliveryReport()
    claimed = _claim(settings, limit or config.batch, utcnow())
    if not claimed:
        return report
    outcomes: dict[int, str | None] = {}
    deadline = time.monotonic() + budget_s if budget_s is not None else None
    timeout = httpx.Timeout(config.timeout_s, connect=min(config.timeout_s, 3.0))
    with httpx.Client(
        timeout=timeout, follow_redirects=False, trust_env=False, transport=transport
    ) as client:
        for item in claimed:
            # The first request always starts: a pass whose budget went on setting up
            # (the client's TLS context took over 0.1 s on a loaded machine) must still
            # make progress, or a small budget would never deliver anything.
            if outcomes and deadline is not None and time.monotonic() >= deadline:
                break
            outcomes[item.id] = item.refusal or _send(client, item)
    with session_scope(settings.db.url) as session:
        for item in claimed:
            delivery = session.get(WebhookDelivery, item.id)
            if delivery is None or delivery.status != PENDING:
                continue
            if item.id not in outcomes:  # out of time: due again at the next pass
                delivery.next_attempt_at = utcnow()
                continue
            error = outcomes[item.id]
            delivery.attempts = item.attempts + (0 if item.refusal else 1)
            now = utcnow()
            if error is None:
                delivery.status, delivery.delivered_at, delivery.last_error = DELIVERED, now, None
                report.delivered.append(item.id)
            elif item.refusal or delivery.attempts >= config.max_attempts:
                delivery.status, delivery.last_error = FAILED, error
                report.failed.append(item.id)
            else:
                delivery.last_error = error
                delivery.next_attempt_at = now + timedelta(
                    seconds=backoff(config, delivery.attempts)
                )
                report.retrying.append(item.id)
    if report.failed:
        log.warning("webhooks: %d deliveries failed for good", len(report.failed))
    return report


def delivery_status(session: Session, subscriber_id: str) -> dict[str, Any]:
    """Counts of a subscriber's deliveries by status."""
    counts: dict[str, Any] = {PENDING: 0, DELIVERED: 0, FAILED: 0}
    rows = session.execute(
        select(WebhookDelivery.status, func.count())
        .where(WebhookDelivery.subscriber_id == subscriber_id)
        .group_by(WebhookDelivery.status)
    )
    for status, count in rows:
        counts[status] = count
    return counts
