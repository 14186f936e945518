"""The RQ queue: one place that knows queue names, job ids and retry policy."""

from __future__ import annotations

from functools import lru_cache

from redis import Redis
from rq import Callback, Queue, Retry
from rq.job import Job, JobStatus

from digitizer.config import Settings

#: Module path of the job function (workers import it, the API does not need to).
PROCESS_DOCUMENT = "workers.jobs.process_document"


@lru_cache(maxsize=8)
def get_redis(url: str) -> Redis:
    """A Redis connection for RQ (bytes responses: ``decode_responses`` breaks rq)."""
    return Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30
    )


def get_queue(settings: Settings) -> Queue:
    """The processing queue."""
    return Queue(
        settings.redis.queue,
        connection=get_redis(settings.redis.url),
        default_timeout=settings.worker.job_timeout,
    )


def process_job_id(document_id: str) -> str:
    """The job id of a document's processing (rq accepts ``[A-Za-z0-9_-]``)."""
    return f"process-{document_id}"


def document_of_job(job_id: str) -> str | None:
    """The document a processing job id names (inverse of :func:`process_job_id`)."""
    prefix = process_job_id("")
    return job_id[len(prefix) :] if job_id.startswith(prefix) else None


_ACTIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


def enqueue_process(settings: Settings, document_id: str, *, replace: bool = False) -> Job:
    """Enqueue a document's processing unless that job is already waiting or running.

    The fixed job id makes a second enqueue of the same document a no-op while the
    first is active; a finished or failed job is replaced (a retry or reprocess).
    ``replace`` also replaces an active job: the sweeper's way to take back work
    from a worker that died holding it.
    """
    queue = get_queue(settings)
    job_id = process_job_id(document_id)
    existing = queue.fetch_job(job_id)
    if existing is not None:
        if not replace and existing.get_status(refresh=True) in _ACTIVE:
            return existing
        existing.delete()
    return queue.enqueue(
        PROCESS_DOCUMENT,
        document_id,
        job_id=job_id,
        retry=Retry(max=settings.worker.max_retries, interval=settings.worker.retry_intervals),
        failure_ttl=7 * 24 * 3600,
        result_ttl=24 * 3600,
        on_failure=Callback("workers.jobs.on_process_failure"),
    )
