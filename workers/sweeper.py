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
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from redis.exceptions import RedisError
from rq.job import JobStatus
from rq.job_lifecycle import record_job_failure
from sqlalchemy import func, or_, select
from sqlalchemy.exc import OperationalError

from digitizer.config import Settings
from digitizer.services.failures import record_failure
from digitizer.services.webhooks import announce_expiries, deliver_due
from storage.db import Document, DocumentState, OutboxEntry, session_scope, utcnow
from workers.queues import document_of_job, enqueue_process, get_queue, process_job_id

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


def take_back(settings: Settings, doc: Document, reason: str, *, give_up: bool = False) -> bool:
    """Record a run that ended without a result and queue the document again.

    The failed run already counted as an attempt; past ``max_attempts`` (or with
    ``give_up``, for a run that hit its time limit) the document is ``failed`` instead.
    Returns True when it was queued again.
    """
    now = utcnow()
    record_failure(doc, reason)
    if give_up or doc.attempts >= settings.worker.max_attempts:
        doc.state = DocumentState.FAILED
        doc.error = reason if give_up else f"gave up after {doc.attempts} attempts: {reason}"
        doc.finished_at = now
        return False
    doc.state = DocumentState.QUEUED
    doc.heartbeat_at = now
    enqueue_process(settings, doc.id, replace=True)
    return True


def recover_job(settings: Settings, job_id: str, reason: str, *, give_up: bool = False) -> str:
    """Settle a job whose worker process died or was killed while running it.

    Used by the worker's supervisor right after it lost its child, so the document need
    not wait for the sweeper. A document still ``processing`` is taken back (see
    :func:`take_back`; ``give_up`` fails it at once, as a time-limit failure does); one
    the dead run had not claimed yet is queued again without counting an attempt; one
    already settled is left alone. A job not queued again is moved to rq's failed
    registry, so no registry still shows it as started.

    Returns:
        "requeued", "failed" or "left" (the document needed nothing).
    """
    queue = get_queue(settings)
    job = queue.fetch_job(job_id)
    document_id = str(job.args[0]) if job is not None and job.args else document_of_job(job_id)
    outcome = "left"
    if document_id is not None:
        with session_scope(settings.db.url) as session:
            doc = session.get(Document, document_id, with_for_update=True)
            if doc is not None and doc.state == DocumentState.PROCESSING:
                requeued = take_back(settings, doc, reason, give_up=give_up)
                outcome = "requeued" if requeued else "failed"
            elif doc is not None and doc.state == DocumentState.QUEUED:
                status = job.get_status(refresh=True) if job is not None else None
                if status not in _WAITING:  # the dead run had taken the job, not the document
                    enqueue_process(settings, doc.id, replace=True)
                    outcome = "requeued"
    started = job is not None and job.get_status(refresh=True) == JobStatus.STARTED
    if outcome != "requeued" and job is not None and started:
        with queue.connection.pipeline() as pipe:
            job.started_job_registry.remove_executions(job, pipe)
            record_job_failure(job, reason, pipe)
            pipe.execute()
    log.warning("job %s lost its worker (%s): %s", job_id, reason, outcome)
    return outcome


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
        taken: set[str] | None = None  # rq's list of jobs workers took and have not started
        for doc in session.scalars(query):
            job = queue.fetch_job(process_job_id(doc.id))
            status = job.get_status(refresh=True) if job is not None else None
            stranded = False
            if doc.state == DocumentState.QUEUED and status in _WAITING:
                if taken is None:
                    taken = set(queue.intermediate_queue.get_job_ids())
                if job is None or job.id not in taken:
                    continue  # waiting its turn in a long queue: nothing lost
                stranded = True
                # Taken off the queue by a worker that died before starting it: a stale
                # document's job has sat in rq's intermediate list far longer than the
                # moment a live worker needs, and rq cleans that list only every ten
                # minutes. Taken out of the list first, so it cannot also run from there.
                queue.intermediate_queue.remove(job.id)
            if (
                doc.state == DocumentState.QUEUED
                and status == JobStatus.STARTED
                and job is not None
                and job.started_at is not None
                and job.started_at.timestamp() > stale.timestamp()
            ):
                continue  # a worker took it just now and is about to claim the document
            if doc.state == DocumentState.PROCESSING:
                reason = "processing stopped without a result (the worker died or was killed)"
            elif stranded:
                reason = "the queued job was lost (its worker died as it took the job)"
            else:
                reason = "the queued job was lost (queue restarted or job removed)"
            if take_back(settings, doc, reason):
                report.requeued.append(doc.id)
            else:
                report.failed.append(doc.id)
    if report.requeued or report.failed:
        log.warning(
            "sweeper requeued %d and failed %d documents", len(report.requeued), len(report.failed)
        )
    return report


class Maintenance:
    """Relays the outbox every ``relay_seconds``, sweeps every ``sweep_seconds``,
    announces e-copies whose validity ended and sends due webhooks every
    ``webhooks.deliver_seconds`` and anchors the audit chain every
    ``audit.anchor_interval_s``.

    Driven by :meth:`tick` from the worker's own loop (its heartbeat), not from a
    thread, where RQ forks work horses: a thread that happens to hold a lock (an
    import, a connection pool) at the fork leaves that lock held forever in the
    horse. A process that never forks (the supervised worker's child) ticks from a
    thread instead (:meth:`start_thread`), so relaying goes on during long jobs.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._last_relay = 0.0
        self._last_sweep = time.monotonic()  # the first sweep after one interval
        self._last_webhooks = 0.0
        self._last_anchor = 0.0  # anchor() itself skips when a recent anchor exists
        self._busy = threading.Lock()

    def start_thread(self) -> None:
        """Tick from a daemon thread, twice per relay interval, until the process ends."""

        def loop() -> None:
            while True:
                time.sleep(self.settings.worker.relay_seconds / 2)
                self.tick()

        threading.Thread(target=loop, name="maintenance", daemon=True).start()

    def tick(self) -> None:
        """Do whatever is due; never raises. A tick while another runs does nothing."""
        if not self._busy.acquire(blocking=False):
            return
        try:
            self._tick()
        finally:
            self._busy.release()

    def _tick(self) -> None:
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
                announce_expiries(self.settings)
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
