"""Nothing accepted is lost, nothing is done twice: real processes, real faults.

Every test that stops or kills something starts its own instance on a free port
(Redis, SeaweedFS, worker processes); the machine's shared services are never
touched.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from digitizer.config import Settings, WorkerSettings
from digitizer.services.wiring import object_store
from digitizer.stack import settings_env
from fixtures import generator
from fixtures.stack import children
from storage.db import Document, session_scope, utcnow
from storage.embedded import RedisServer, SeaweedFS
from storage.errors import ObjectStoreUnavailableError
from storage.objects import original_key
from tests import samples
from tests.helpers import client, drain
from workers import jobs
from workers.queues import get_queue, process_job_id
from workers.sweeper import relay_outbox, sweep

FAST = WorkerSettings(
    retry_intervals=[0, 0, 0],
    heartbeat_seconds=0.5,
    stale_after_seconds=3.0,
    relay_seconds=0.5,
    sweep_seconds=1.0,
)


def _state(settings: Settings, doc_id: str) -> Document:
    with session_scope(settings.db.url) as session:
        doc = session.get(Document, doc_id)
        assert doc is not None
        session.expunge(doc)
        return doc


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _scan(pages: int, seed: int) -> bytes:
    """An image-only PDF of ``pages`` generated pages (about a second of OCR each)."""
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"scan-{seed}-{pages}-{os.getpid()}.pdf"
    generator.make_multipage_pdf(
        [generator.generate_page(seed + n, "van-ban") for n in range(pages)], path
    )
    data = path.read_bytes()
    path.unlink()
    return data


def _upload(settings: Settings, name: str, data: bytes, **form: str) -> str:
    response = client(settings).post(
        "/v1/documents", files={"file": (name, data, "application/octet-stream")}, data=form
    )
    assert response.status_code == 202, response.text
    return response.json()["documents"][0]["id"]


class Workers:
    """Worker processes (``sohoa worker``) started and killed by a test.

    ``mode``: "supervised" (the default: a supervisor and a child that runs the jobs)
    or "fork" (``--fork``: rq forks a horse per job). Either way the process doing the
    work is a child of the started one.
    """

    def __init__(self, settings: Settings, mode: str = "supervised") -> None:
        self.mode = mode
        self.env = {**os.environ, **settings_env(settings), "OMP_THREAD_LIMIT": "1"}
        self.procs: list[subprocess.Popen[bytes]] = []
        # SOHOA_TEST_WORKER_LOG=path keeps the workers' logs when debugging a test.
        self.log = open(os.environ.get("SOHOA_TEST_WORKER_LOG", os.devnull), "ab")

    def start(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "digitizer.cli", "worker"]
            + (["--fork"] if self.mode == "fork" else []),
            env=self.env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                for pid in [proc.pid, *children(proc.pid)]:
                    # a child (rq's work horse) may exit between listing and the kill
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                proc.wait()
        self.log.close()


@pytest.fixture
def own_redis(settings: Settings) -> Iterator[tuple[Settings, RedisServer]]:
    """Settings on a Redis of this test's own (so it may be stopped)."""
    server = RedisServer()
    server.start()
    yield (
        settings.model_copy(
            update={
                "redis": settings.redis.model_copy(update={"url": server.url}),
                "worker": FAST,
            }
        ),
        server,
    )
    server.stop()


@pytest.fixture(params=["supervised", "fork"])
def workers(
    own_redis: tuple[Settings, RedisServer], request: pytest.FixtureRequest
) -> Iterator[Workers]:
    """Worker processes in each mode: the crash and time-limit guarantees hold in both."""
    pool = Workers(own_redis[0], request.param)
    yield pool
    pool.stop()


@pytest.fixture
def supervised(own_redis: tuple[Settings, RedisServer]) -> Iterator[Workers]:
    pool = Workers(own_redis[0])
    yield pool
    pool.stop()


# -- sweeper, in process ----------------------------------------------------------------
def test_lost_queued_job_is_requeued(settings: Settings) -> None:
    """GIVEN a queued document whose job vanished from Redis WHEN the sweeper runs
    THEN it is queued again and completes."""
    settings = settings.model_copy(update={"worker": FAST})
    doc_id = _upload(settings, "a.png", samples.png())
    relay_outbox(settings)
    get_queue(settings).fetch_job(process_job_id(doc_id)).delete()  # type: ignore[union-attr]
    with session_scope(settings.db.url) as session:
        session.execute(update(Document).values(updated_at=utcnow() - timedelta(minutes=5)))
    report = sweep(settings)
    assert report.requeued == [doc_id]
    drain(settings)
    doc = _state(settings, doc_id)
    assert doc.state == "ready"
    assert doc.attempts == 1
    assert "lost" in doc.failures[0]["reason"]


def test_job_stranded_by_a_worker_dying_as_it_took_it_is_requeued(settings: Settings) -> None:
    """GIVEN a worker killed between taking a job off the queue (rq moves it to its
    intermediate list) and starting it, so the job still says ``queued`` WHEN the sweeper
    runs THEN the job is taken out of that list and queued again, and the document
    completes once (seen in the fault matrix: rq cleans that list only every 10 minutes)."""
    settings = settings.model_copy(update={"worker": FAST})
    doc_id = _upload(settings, "a.png", samples.png())
    relay_outbox(settings)
    queue = get_queue(settings)
    job_id = process_job_id(doc_id)
    moved = queue.connection.lmove(queue.key, queue.intermediate_queue_key)  # what dies
    assert moved is not None and moved.decode() == job_id
    assert queue.fetch_job(job_id).get_status() == "queued"  # type: ignore[union-attr]
    assert queue.count == 0
    with session_scope(settings.db.url) as session:
        session.execute(update(Document).values(updated_at=utcnow() - timedelta(minutes=5)))
    report = sweep(settings)
    assert report.requeued == [doc_id]
    assert queue.intermediate_queue.get_job_ids() == []
    assert queue.get_job_ids() == [job_id]
    drain(settings)
    doc = _state(settings, doc_id)
    assert doc.state == "ready" and doc.attempts == 1
    assert "its worker died as it took the job" in doc.failures[0]["reason"]


def test_waiting_job_is_left_alone(settings: Settings) -> None:
    settings = settings.model_copy(update={"worker": FAST})
    doc_id = _upload(settings, "a.png", samples.png())
    relay_outbox(settings)
    with session_scope(settings.db.url) as session:
        session.execute(update(Document).values(updated_at=utcnow() - timedelta(minutes=5)))
    assert sweep(settings).requeued == []
    assert get_queue(settings).count == 1
    assert _state(settings, doc_id).failures == []


def test_abandoned_document_is_failed_after_max_attempts(settings: Settings) -> None:
    settings = settings.model_copy(update={"worker": FAST.model_copy(update={"max_attempts": 2})})
    doc_id = _upload(settings, "a.png", samples.png())
    with session_scope(settings.db.url) as session:
        session.execute(
            update(Document).values(
                state="processing", attempts=2, heartbeat_at=utcnow() - timedelta(minutes=5)
            )
        )
    report = sweep(settings)
    assert report.failed == [doc_id]
    doc = _state(settings, doc_id)
    assert doc.state == "failed"
    assert "gave up after 2 attempts" in (doc.error or "")
    assert object_store(settings).exists(original_key(doc.sha256))


# -- real worker processes ----------------------------------------------------------------
def test_worker_killed_mid_ocr_is_recovered_exactly_once(
    own_redis: tuple[Settings, RedisServer], workers: Workers
) -> None:
    """GIVEN a worker OCR-ing a 4-page scan WHEN it is killed with SIGKILL (parent and
    the child running the job) THEN the sweeper of another worker takes the document back and it
    completes once: state ready, two attempts, one failure recorded, one result."""
    settings, _ = own_redis
    doc_id = _upload(settings, "scan.pdf", _scan(4, 700))
    first = workers.start()
    _wait(lambda: _state(settings, doc_id).state == "processing", 60, "processing to start")
    time.sleep(1.0)  # inside the OCR of the first pages
    horses = children(first.pid)  # the job's process runs in a session of its own
    assert horses
    for pid in [first.pid, *horses]:
        os.kill(pid, signal.SIGKILL)
    first.wait()
    assert _state(settings, doc_id).state == "processing"  # the dead worker left it so

    workers.start()
    _wait(lambda: _state(settings, doc_id).state == "ready", 120, "recovery")
    doc = _state(settings, doc_id)
    assert doc.attempts == 2, (doc.failures, doc.error, doc.results)
    assert len(doc.failures) == 1 and "died" in doc.failures[0]["reason"]
    assert doc.page_count == 4
    time.sleep(2 * FAST.sweep_seconds)  # nothing runs it a third time
    assert _state(settings, doc_id).attempts == 2
    assert get_queue(settings).count == 0


def test_crashing_horse_does_not_stop_the_worker(
    own_redis: tuple[Settings, RedisServer], workers: Workers
) -> None:
    """GIVEN a job whose process segfaults WHEN the worker goes on THEN the next
    document completes with the model still loaded, and the crashed one is
    recovered by the sweeper."""
    settings, _ = own_redis
    crashing = _upload(settings, "crash.pdf", _scan(3, 800))
    worker = workers.start()
    _wait(lambda: _state(settings, crashing).state == "processing", 60, "processing to start")
    horses = children(worker.pid)
    assert horses, "the job runs in a child process"
    for pid in horses:
        os.kill(pid, signal.SIGSEGV)
    following = _upload(settings, "next.png", samples.png(["Văn bản tiếp theo"]))
    try:
        _wait(lambda: _state(settings, following).state == "ready", 120, "the next document")
    except AssertionError:
        if os.environ.get("SOHOA_TEST_DEBUG_HANG"):
            for pid in [worker.pid, *children(worker.pid)]:
                subprocess.run(["py-spy", "dump", "--pid", str(pid)], check=False)
        raise
    assert worker.poll() is None, "the worker survived its child"
    _wait(lambda: _state(settings, crashing).state == "ready", 180, "the crashed document")
    crashed = _state(settings, crashing)
    assert crashed.attempts == 2
    if workers.mode == "supervised":  # settled by the supervisor at once, not by a sweep
        assert ["SIGSEGV" in f["reason"] for f in crashed.failures] == [True]
    assert get_queue(settings).started_job_registry.count == 0


def test_job_over_its_time_limit_fails_with_reason(
    own_redis: tuple[Settings, RedisServer], workers: Workers
) -> None:
    settings, _ = own_redis
    settings = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"job_timeout": 2})}
    )
    workers.env.update(settings_env(settings))
    slow = _upload(settings, "slow.pdf", _scan(6, 900))
    workers.start()
    _wait(lambda: _state(settings, slow).state == "failed", 90, "the time limit")
    assert "2-second limit" in (_state(settings, slow).error or "")
    quick = _upload(settings, "quick.png", samples.png(["Nhanh"]))
    _wait(lambda: _state(settings, quick).state in {"ready", "needs_review"}, 60, "next job")


def test_job_stuck_in_native_code_is_killed_at_its_hard_limit(
    own_redis: tuple[Settings, RedisServer], supervised: Workers
) -> None:
    """GIVEN a job that rq's alarm cannot interrupt (as one stuck inside native code)
    WHEN it outlives its time limit and the grace THEN the supervisor kills its child,
    fails the document with the time-limit reason (one attempt, rq's job failed, not
    left started) and a new child takes the next document."""
    settings, _ = own_redis
    stuck = _upload(settings, "stuck.png", samples.png(["Treo"]))
    relay_outbox(settings)
    queue = get_queue(settings)
    queue.fetch_job(process_job_id(stuck)).delete()  # type: ignore[union-attr]
    queue.enqueue("tests.workers.stubs.hang", stuck, job_id=process_job_id(stuck), job_timeout=2)
    proc = supervised.start()
    _wait(lambda: _state(settings, stuck).state == "processing", 60, "the job to start")
    first_child = children(proc.pid)
    _wait(lambda: _state(settings, stuck).state == "failed", 60, "the hard limit")
    doc = _state(settings, stuck)
    assert "2-second limit" in (doc.error or "")
    assert doc.attempts == 1
    job = queue.fetch_job(process_job_id(stuck))
    assert job is not None and job.get_status() == "failed"
    assert queue.started_job_registry.count == 0
    quick = _upload(settings, "quick.png", samples.png(["Nhanh"]))
    _wait(lambda: _state(settings, quick).state in {"ready", "needs_review"}, 90, "next job")
    assert proc.poll() is None
    assert children(proc.pid) != first_child


def test_silent_child_is_replaced_and_its_document_completes(
    own_redis: tuple[Settings, RedisServer], supervised: Workers
) -> None:
    """GIVEN a child OCR-ing a scan WHEN it stops (SIGSTOP: no beats, no progress) THEN
    the supervisor kills it after ``stale_after_seconds``, records why, and a new child
    completes the document on its second attempt."""
    settings, _ = own_redis
    doc_id = _upload(settings, "scan.pdf", _scan(3, 950))
    proc = supervised.start()
    _wait(lambda: _state(settings, doc_id).state == "processing", 60, "processing to start")
    [child] = children(proc.pid)
    os.kill(child, signal.SIGSTOP)
    _wait(lambda: _state(settings, doc_id).state == "ready", 120, "recovery")
    doc = _state(settings, doc_id)
    assert doc.attempts == 2
    assert ["stopped responding" in f["reason"] for f in doc.failures] == [True]
    assert proc.poll() is None


def test_sigterm_mid_job_finishes_the_job_then_stops(
    own_redis: tuple[Settings, RedisServer], supervised: Workers
) -> None:
    settings, _ = own_redis
    doc_id = _upload(settings, "scan.pdf", _scan(2, 960))
    proc = supervised.start()
    _wait(lambda: _state(settings, doc_id).state == "processing", 60, "processing to start")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    doc = _state(settings, doc_id)
    assert (doc.state, doc.attempts, doc.failures) == ("ready", 1, [])


def test_redis_outage_delays_uploads_and_loses_none(
    own_redis: tuple[Settings, RedisServer], supervised: Workers
) -> None:
    """GIVEN a running worker WHEN Redis stops during uploads THEN every upload still
    gets 202, and all complete after Redis returns (on the same port, empty)."""
    settings, redis_server = own_redis
    supervised.start()
    warm = _upload(settings, "warm.png", samples.png(["Trước sự cố"]))
    _wait(lambda: _state(settings, warm).state == "ready", 60, "the worker to run")
    port = redis_server.port
    redis_server.stop()
    ids = [
        _upload(settings, f"{n}.png", samples.png([f"Hồ sơ số {n} trong lúc mất Redis"]))
        for n in range(4)
    ]
    assert all(_state(settings, i).state == "uploaded" for i in ids)
    revived = RedisServer(port=port)
    revived.start()
    try:
        _wait(
            lambda: all(_state(settings, i).state in {"ready", "needs_review"} for i in ids),
            120,
            "uploads made during the outage",
        )
        assert all(_state(settings, i).attempts == 1 for i in ids)
    finally:
        revived.stop()


def test_s3_outage_refuses_uploads_and_loses_nothing(settings: Settings, tmp_path: Path) -> None:
    server = SeaweedFS(data_dir=tmp_path / "s3")
    server.start()
    try:
        local = settings.model_copy(
            update={
                "s3": settings.s3.model_copy(
                    update={
                        "endpoint": server.endpoint,
                        "access_key": server.access_key,
                        "secret_key": server.secret_key,
                    }
                )
            }
        )
        kept = samples.png(["Đã lưu trước khi mất S3"])
        doc_id = _upload(local, "kept.png", kept)
        drain(local)
        pdf_key = _state(local, doc_id).results["searchable_pdf"]
        pdf = object_store(local).get_bytes(pdf_key)
        server.stop()

        api = client(local)
        response = api.post(
            "/v1/documents", files={"file": ("new.png", samples.png(["Mới"]), "image/png")}
        )
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/problem+json")
        assert api.get(f"/v1/documents/{doc_id}").json()["state"] == "ready"

        server.start()  # same data directory
        store = object_store(local)
        # A restarted SeaweedFS may answer InternalError for a moment while it loads its
        # volumes (seen once in CI): what was stored must come back, not at once.
        deadline = time.monotonic() + 30
        while True:
            try:
                original = store.get_bytes(original_key(_state(local, doc_id).sha256))
                break
            except ObjectStoreUnavailableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        assert original == kept
        assert store.get_bytes(pdf_key) == pdf
        assert (
            api.post(
                "/v1/documents", files={"file": ("new.png", samples.png(["Mới"]), "image/png")}
            ).status_code
            == 202
        )
    finally:
        server.stop()


# -- near-duplicates and reprocessing ------------------------------------------------------
def _png(image: object, fmt: str = "PNG", **kw: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, dpi=(300, 300), **kw)  # type: ignore[attr-defined]
    return out.getvalue()


def test_second_scan_of_the_same_paper_is_flagged(settings: Settings) -> None:
    page = generator.generate_page(4242, "trich-luc-khai-sinh")
    other = generator.generate_page(4243, "trich-luc-khai-sinh")
    rescan = generator.degrade(page.image, 1, generator.LIGHT_DEGRADE)
    pid = "001099012345"
    first = _upload(settings, "scan-1.png", _png(page.image), citizen_pid=pid)
    drain(settings)
    second = _upload(settings, "scan-2.jpg", _png(rescan, "JPEG", quality=85), citizen_pid=pid)
    unrelated = _upload(settings, "other.png", _png(other.image), citizen_pid=pid)
    drain(settings)
    flagged = _state(settings, second)
    assert flagged.state == "needs_review"
    assert flagged.duplicate_of == first
    assert first in (flagged.error or "")
    assert _state(settings, unrelated).duplicate_of is None
    assert _state(settings, first).duplicate_of is None


def test_reprocess_reuses_unchanged_steps_and_recomputes_new_engine(settings: Settings) -> None:
    api = client(settings)
    doc_id = _upload(settings, "a.png", samples.png(["Quyết định số 15/QĐ-UBND"]))
    drain(settings)
    before = _state(settings, doc_id)

    calls: list[int] = []
    service = jobs.warm_up(settings)
    engine = service.pipeline.engine
    real = engine.recognize
    engine.recognize = lambda *a, **k: calls.append(1) or real(*a, **k)  # type: ignore[method-assign]
    try:
        response = api.post(f"/v1/documents/{doc_id}/reprocess")
        assert response.status_code == 202, response.text
        drain(settings)
        assert calls == []  # same engine and version: OCR output reused
        assert _state(settings, doc_id).results["ocr"] == before.results["ocr"]

        version = engine.version
        engine.version = version + "-new-model"  # type: ignore[misc]
        try:
            assert api.post(f"/v1/documents/{doc_id}/reprocess").status_code == 202
            drain(settings)
        finally:
            engine.version = version  # type: ignore[misc]
        after = _state(settings, doc_id)
        assert calls == [1]
        assert after.results["ocr"] != before.results["ocr"]
        assert after.state == before.state
    finally:
        engine.recognize = real  # type: ignore[method-assign]

    with session_scope(settings.db.url) as session:
        session.execute(update(Document).values(state="approved"))
    conflict = api.post(f"/v1/documents/{doc_id}/reprocess")
    assert conflict.status_code == 409
    assert conflict.json()["type"] == "/problems/conflict"


def test_idle_worker_stops_on_sigterm(
    own_redis: tuple[Settings, RedisServer], workers: Workers
) -> None:
    settings, _ = own_redis
    proc = workers.start()
    doc_id = _upload(settings, "a.png", samples.png())
    _wait(lambda: _state(settings, doc_id).state == "ready", 60, "the worker to be up")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
