"""The worker entry point (``sohoa worker``).

One RQ worker per process. The OCR model is loaded before RQ starts forking
work horses (see ``workers.jobs``), so a crashing or timed-out job kills only
its horse and the worker takes the next job with the model still loaded. The
scheduler runs in the worker so that retries with backoff fire; a maintenance
relay and sweep run from the worker's heartbeat (see ``_Maintained``). If Redis goes away the
worker waits for it instead of exiting.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from redis.exceptions import RedisError
from rq import SimpleWorker, Worker

from digitizer.config import Settings
from workers.jobs import warm_up
from workers.queues import get_queue, get_redis
from workers.sweeper import Maintenance

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 2.0


class _Maintained:
    """Runs the outbox relay and the sweeper from the worker's heartbeat (main thread).

    The dequeue timeout is shortened so that an idle worker beats (and so relays)
    every ``relay_seconds``; a busy one beats while it monitors its horse.
    """

    maintenance: Maintenance | None = None
    beat_seconds: int = 2

    @property
    def dequeue_timeout(self) -> int:
        return self.beat_seconds

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        super().heartbeat(timeout, pipeline)  # type: ignore[misc]
        if pipeline is None and self.maintenance is not None:
            self.maintenance.tick()


class SohoaWorker(_Maintained, Worker):
    """Forks a horse per job: a crash or time-out kills the horse, not the worker."""


class SohoaSimpleWorker(_Maintained, SimpleWorker):
    """Runs jobs in the worker process (faster, no crash isolation)."""


def run_worker(settings: Settings, *, burst: bool = False, fork: bool = True) -> bool:
    """Work the queue until stopped (or until empty with ``burst``)."""
    # Tesseract's OpenMP threads fight each other when several workers share the
    # cores; one thread per worker and one worker per core is faster overall.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    service = warm_up(settings)
    try:
        service.store.ensure_bucket()
    except Exception:
        log.warning("object store unavailable at start-up; jobs will retry")
    maintenance = Maintenance(settings)
    worker_cls = SohoaWorker if fork else SohoaSimpleWorker
    # A short worker TTL lets rq itself notice dead workers within a minute.
    ttl = max(30, int(settings.worker.stale_after_seconds))
    worked = False
    while True:
        try:
            # rq talks to Redis as soon as a worker is built (CLIENT SETNAME): an outage
            # that outlasts the pause below must not end the process here either.
            worker = worker_cls(
                [get_queue(settings)],
                connection=get_redis(settings.redis.url),
                worker_ttl=ttl,
                job_monitoring_interval=max(1, int(settings.worker.heartbeat_seconds)),
            )
        except RedisError as exc:
            log.warning("Redis unavailable (%s); retrying", type(exc).__name__)
            maintenance.tick()  # the relay keeps outbox rows waiting; the sweeper runs on
            time.sleep(RECONNECT_SECONDS)
            continue
        worker.maintenance = maintenance
        worker.beat_seconds = max(1, int(settings.worker.relay_seconds))
        log.info("worker %s ready (engine %s)", worker.name, service.pipeline.ocr_version)
        try:
            worked = (
                worker.work(burst=burst, with_scheduler=True, logging_level="WARNING") or worked
            )
        except RedisError as exc:
            log.warning("lost Redis (%s); reconnecting", type(exc).__name__)
        # rq records a SIGTERM/SIGINT as a shutdown date (an idle worker) or as
        # _stop_requested (a busy one): either way the process must end.
        stopped = worker._stop_requested or worker._shutdown_requested_date is not None
        if burst or stopped:
            return worked
        # rq leaves its loop on errors it does not handle (Redis gone mid-heartbeat):
        # wait and start a fresh worker instead of ending the process.
        time.sleep(RECONNECT_SECONDS)
