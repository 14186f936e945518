"""The worker entry point (``sohoa worker``).

One RQ worker per process. The OCR model is loaded before RQ starts forking
work horses (see ``workers.jobs``); the scheduler runs in the worker so that
retries with backoff fire; an outbox relay thread keeps the queue fed even when
uploads happened while Redis was away.
"""

from __future__ import annotations

import logging
import os

from rq import SimpleWorker, Worker

from digitizer.config import Settings
from storage.objects import ObjectStore
from workers.jobs import warm_up
from workers.queues import get_queue, get_redis
from workers.sweeper import RelayThread

log = logging.getLogger(__name__)


def run_worker(settings: Settings, *, burst: bool = False, fork: bool = True) -> bool:
    """Work the queue until stopped (or until empty with ``burst``)."""
    # Tesseract's OpenMP threads fight each other when several workers share the
    # cores; one thread per worker and one worker per core is faster overall.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    service = warm_up(settings)
    store: ObjectStore = service.store
    store.ensure_bucket()
    relay = RelayThread(settings)
    relay.start()
    worker_cls = Worker if fork else SimpleWorker
    worker = worker_cls([get_queue(settings)], connection=get_redis(settings.redis.url))
    log.info("worker %s ready (engine %s)", worker.name, service.pipeline.ocr_version)
    try:
        return bool(worker.work(burst=burst, with_scheduler=True, logging_level="WARNING"))
    finally:
        relay.stop()
