"""The outbox relay: hands committed work to the queue.

Uploads write the document and an outbox row in one transaction; this relay
enqueues the pending rows and marks them dispatched. When Redis is down the
rows simply wait, so an outage delays work and loses none. It runs right after
an upload (best effort), and every few seconds inside each worker process.
"""

from __future__ import annotations

import logging
import threading

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from digitizer.config import Settings
from storage.db import Document, DocumentState, OutboxEntry, session_scope, utcnow
from workers.queues import enqueue_process

log = logging.getLogger(__name__)


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
                log.warning("queue unavailable, %s outbox entries wait", "pending")
                break
            entry.dispatched_at = utcnow()
            doc = session.get(Document, entry.document_id)
            if doc is not None and doc.state == DocumentState.UPLOADED:
                doc.state = DocumentState.QUEUED
            dispatched += 1
    return dispatched


class RelayThread(threading.Thread):
    """Runs :func:`relay_outbox` every ``interval`` seconds until stopped."""

    def __init__(self, settings: Settings, interval: float = 2.0) -> None:
        super().__init__(name="sohoa-outbox-relay", daemon=True)
        self.settings = settings
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                relay_outbox(self.settings)
            except (OperationalError, RedisError) as exc:
                log.warning("outbox relay: %s", type(exc).__name__)
            except Exception:
                log.exception("outbox relay failed")

    def stop(self) -> None:
        self.stopped.set()
