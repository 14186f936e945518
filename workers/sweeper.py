"""Keeping work moving: the outbox relay and the sweeper.

Relay: uploads write the document and an outbox row in one transaction; the
relay enqueues pending rows and marks them dispatched. When Redis is down the
rows wait, so an outage delays work and loses none.

Sweeper: finds work that fell between the cracks and queues it again:
- ``queued`` documents whose job is not in Redis (Redis restarted without
  persistence, a job deleted by hand) or whose job died before starting them;
- ``processing`` documents whose heartbeat went silent (the worker was killed,
  the machine rebooted, the horse segfaulted).
Each reclaimed run counts as an attempt; past ``max_attempts`` the document is
``failed`` with the reasons of every attempt.

Both run inside every worker process (between jobs and while it waits on a
running one), and ``sohoa sweep`` runs them once from cron or by hand. Several
sweepers at once are safe: PostgreSQL rows are taken with ``SKIP LOCKED``, and
enqueueing is idempotent per document.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from redis.exceptions import RedisError
from rq.job import JobStatus
from sqlalchemy import func, or_, select
from sqlalchemy.exc import OperationalError

from digitizer.config import Settings
from digitizer.services.processing import record_failure
from digitizer.services.webhooks import deliver_due
from storage.db import Document, DocumentState, OutboxEntry, session_scope, utcnow
from workers.queues import enqueue_process, get_queue, process_job_id

log = logging.getLogger(__name__)

_WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def relay_outbox(settings: Settings, limit: int = 200) -> int:
    """Enqueue pending outbox entries; returns how many were dispatched."""
    dispatched = 0
    with session_scope(settings.db.url) as session:
        query = (
            select(OutboxEntry)
            .where(OutboxEntry.dispatched_at.is_(None))
            .order_by(OutboxEntry.id)
            .limit(limit)
        )
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            # Several relays (API, workers) may run at once: each takes different rows.
            query = query.with_for_update(skip_locked=True)
        for entry in session.scalars(query):
            try:
                enqueue_process(settings, entry.document_id)
            except RedisError as exc:
                entry.attempts += 1
                entry.last_error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("queue unavailable; outbox entries wait")
                break
            entry.dispatched_at = utcnow()
            doc = session.get(Document, entry.document_id)
            if doc is not None and doc.state == DocumentState.UPLOADED:
                doc.state = DocumentState.QUEUED
            dispatched += 1
    return dispatched


@dataclass
class SweepReport:
    """What one sweep did."""

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def sweep(settings: Settings, limit: int = 500) -> SweepReport:
    """Queue again what was lost; fail what keeps failing."""
    report = SweepReport()
    now = utcnow()
    stale = now - timedelta(seconds=settings.worker.stale_after_seconds)
    queue = get_queue(settings)
    with session_scope(settings.db.url) as session:
        query = (
            select(Document)
            .where(
                or_(
                    Document.state == DocumentState.QUEUED,
                    Document.state == DocumentState.PROCESSING,
                ),
                func.coalesce(Document.heartbeat_at, Document.updated_at) < stale,
            )
            .order_by(Document.updated_at)
            .limit(limit)
        )
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        for doc in session.scalars(query):
            job = queue.fetch_job(process_job_id(doc.id))
            status = job.get_status(refresh=True) if job is not None else None
            if doc.state == DocumentState.QUEUED and status in _WAITING:
                continue  # waiting its turn in a long queue: nothing lost
            if doc.state == DocumentState.PROCESSING:
                reason = "processing stopped without a result (the worker died or was killed)"
            else:
                reason = "the queued job was lost (queue restarted or job removed)"
            record_failure(doc, reason)
            if doc.attempts >= settings.worker.max_attempts:
                doc.state = DocumentState.FAILED
                doc.error = f"gave up after {doc.attempts} attempts: {reason}"
                doc.finished_at = now
                report.failed.append(doc.id)
                continue
            doc.state = DocumentState.QUEUED
            doc.heartbeat_at = now
            enqueue_process(settings, doc.id, replace=True)
            report.requeued.append(doc.id)
    if report.requeued or report.failed:
        log.warning(
            "sweeper requeued %d and failed %d documents", len(report.requeued), len(report.failed)
        )
    return report


class Maintenance:
    """Relays the outbox every ``relay_seconds``, sweeps every ``sweep_seconds``,
    sends due webhooks every ``webhooks.deliver_seconds`` and anchors the audit
    chain every ``audit.anchor_interval_s``.

    Driven by :meth:`tick` from the worker's own loop (its heartbeat), not from a
    thread: a thread that happens to hold a lock (an import, a connection pool)
    when RQ forks a work horse leaves that lock held forever in the horse.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._last_relay = 0.0
        self._last_sweep = time.monotonic()  # the first sweep after one interval
        self._last_webhooks = 0.0
        self._last_anchor = 0.0  # anchor() itself skips when a recent anchor exists

    def tick(self) -> None:
        """Do whatever is due; never raises."""
        now = time.monotonic()
        try:
            if now - self._last_relay >= self.settings.worker.relay_seconds:
                self._last_relay = now
                relay_outbox(self.settings)
            if now - self._last_sweep >= self.settings.worker.sweep_seconds:
                self._last_sweep = now
                sweep(self.settings)
            if now - self._last_webhooks >= self.settings.webhooks.deliver_seconds:
                self._last_webhooks = now
                # bounded: slow receivers must not stall the worker's heartbeat
                deliver_due(self.settings, budget_s=max(10.0, self.settings.webhooks.timeout_s))
        except (OperationalError, RedisError) as exc:
            log.warning("maintenance: %s", type(exc).__name__)
        except Exception:
            log.exception("maintenance failed")
        interval = self.settings.audit.anchor_interval_s
        if interval > 0 and now - self._last_anchor >= interval:
            self._last_anchor = now
            self._anchor(interval)

    def _anchor(self, interval: float) -> None:
        """Anchor the audit chain's head (TSA token + object-store copy); never raises."""
        from digitizer.services import audit
        from signing.errors import SigningError
        from storage.errors import StorageError

        try:
            audit.anchor_now(self.settings, min_interval_s=interval * 0.9)
        except (OperationalError, SigningError, StorageError) as exc:
            log.warning("audit anchoring failed, retried next interval: %s", type(exc).__name__)
        except Exception:
            log.exception("audit anchoring failed")
