"""The worker entry point (``sohoa worker``), in three modes.

* ``supervised`` (default): a small supervisor process starts a child that loads the
  OCR model once and runs jobs in its own process, with no fork per job; the supervisor
  kills a child over its job's time limit or silent, settles the job it held and starts
  a new one (see ``workers.supervisor``).
* ``fork``: rq forks a work horse per job from a worker that loaded the model first (see
  ``workers.jobs``); a crashing or timed-out job kills only its horse. Costs a fork and
  the model's copy-on-write pages per job.
* ``inline``: jobs run in the worker process itself, unsupervised (no crash isolation).

The scheduler runs in the worker so that retries with backoff fire; the outbox relay
and the sweeper run from the worker's heartbeat (see ``_Maintained``), or from a thread
in the supervised child, which never forks. If Redis goes away the worker waits for it
instead of exiting.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any, Literal

from redis.exceptions import RedisError
from rq import SimpleWorker, Worker
from rq.job import Job
from rq.queue import Queue

from digitizer.config import Settings
from workers.queues import get_queue, get_redis
from workers.supervisor import ChildLink, Supervisor

if TYPE_CHECKING:
    from workers.sweeper import Maintenance

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 2.0

WorkerMode = Literal["supervised", "fork", "inline"]


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
    """Runs jobs in the worker process; under a supervisor, tells it which job runs."""

    link: ChildLink | None = None

    def execute_job(self, job: Job, queue: Queue) -> None:
        link = self.link
        if link is not None:
            link.started(job.id, job.timeout or queue.DEFAULT_TIMEOUT)
        try:
            super().execute_job(job, queue)
        finally:
            if link is not None:
                link.finished(job.id)


def run_worker(
    settings: Settings,
    *,
    burst: bool = False,
    mode: WorkerMode = "supervised",
    link: ChildLink | None = None,
) -> bool:
    """Work the queue until stopped (or until empty with ``burst``).

    ``link`` is given in a supervised child (mode ``inline``): the pipe to its supervisor.
    """
    # Tesseract's OpenMP threads (and onnxruntime's, for the words re-read by the line
    # recogniser) fight each other when several workers share the cores; one thread per
    # worker and one worker per core is faster overall.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    os.environ.setdefault("SOHOA_OCR_THREADS", "1")
    if mode == "supervised":
        return Supervisor(settings, burst=burst).run()
    # Imported here: the supervisor process needs none of the pipeline.
    from workers.jobs import warm_up
    from workers.sweeper import Maintenance

    if link is not None:
        link.start_beating()
    service = warm_up(settings)
    try:
        service.store.ensure_bucket()
    except Exception:
        log.warning("object store unavailable at start-up; jobs will retry")
    maintenance = Maintenance(settings)
    if link is not None:
        maintenance.start_thread()  # no fork in this process: a thread is safe here
    worker_cls = SohoaWorker if mode == "fork" else SohoaSimpleWorker
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
        if link is None:
            worker.maintenance = maintenance
        else:
            assert isinstance(worker, SohoaSimpleWorker)
            worker.link = link
            link.ready(worker.name)
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
