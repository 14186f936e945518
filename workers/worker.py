"""The worker entry point (``sohoa worker``).

One RQ worker per process. The OCR model is loaded before RQ starts forking
work horses (see ``workers.jobs``), so a crashing or timed-out job kills only
its horse and the worker takes the next job with the model still loaded. The
scheduler runs in the worker so that retries with backoff fire; a maintenance
thread relays the outbox and sweeps for lost work. If Redis goes away the
worker waits for it instead of exiting.
"""

from __future__ import annotations

import logging
import os
import time

from redis.exceptions import RedisError
from rq import SimpleWorker, Worker

from digitizer.config import Settings
from workers.jobs import warm_up
from workers.queues import get_queue, get_redis
from workers.sweeper import MaintenanceThread

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 2.0


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
    maintenance = MaintenanceThread(settings)
    maintenance.start()
    worker_cls = Worker if fork else SimpleWorker
    # A short worker TTL lets rq itself notice dead workers within a minute.
    ttl = max(30, int(settings.worker.stale_after_seconds))
    worked = False
    try:
        while True:
            worker = worker_cls(
                [get_queue(settings)],
                connection=get_redis(settings.redis.url),
                worker_ttl=ttl,
                job_monitoring_interval=max(1, int(settings.worker.heartbeat_seconds)),
            )
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
    finally:
        maintenance.stop()
