"""The supervised worker (``sohoa worker``, the default): a small parent, one working child.

Why not RQ's fork per job: a horse forked from a worker that loaded Tesseract writes
into the model's copy-on-write pages on every job and pays for the copies again in
each new horse (measured +11 % OCR time per page, bench/pipeline.py). Here the child
loads the model once and runs every job in its own process, so the model's pages are
its own; the supervisor keeps what the fork bought:

* the child reports over a pipe which job it runs and its time limit (``start``,
  ``end``) and beats every second from a thread (``beat``; Tesseract releases the GIL,
  so the beats go on during OCR);
* the supervisor SIGKILLs a child that runs a job past its time limit plus a grace (the
  child's own alarm stops a job between pages; this catches one stuck inside native
  code) or that stays silent for ``stale_after_seconds`` (hung, or stopped);
* when the child dies with a job in flight (killed, segfault, out of memory) the
  supervisor settles that job at once (:func:`workers.sweeper.recover_job`: attempt
  recorded with its reason, the document queued again up to ``max_attempts`` or failed;
  a time-limit kill fails it as the child's own time-limit path does), tells rq the
  child's worker is dead, and starts a new child;
* SIGTERM/SIGINT are passed to the child, which finishes its current job and exits
  (rq's warm shutdown; a second signal stops the job, which is then taken back); the
  supervisor exits with it.

The supervisor imports no OCR or pipeline code (the recovery path is imported the first
time a child is lost).
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from types import FrameType

from digitizer.config import Settings

log = logging.getLogger(__name__)

#: How often the child beats; silence for ``stale_after_seconds`` gets it killed.
BEAT_SECONDS = 1.0
#: Time a new child has to load its model and say ``ready``.
START_SECONDS = 180.0
#: A child that dies younger than this counts towards a crash loop...
YOUNG_SECONDS = 10.0
#: ... which pauses the next start by these, one after another.
RESTART_BACKOFF = (0.0, 1.0, 5.0, 30.0)


def hard_limit(timeout: float) -> float:
    """Seconds after which a job's child is killed: its time limit plus a grace that lets
    the child's own alarm fire first (it can only interrupt between native calls)."""
    return timeout + max(5.0, min(60.0, timeout * 0.1))


class ChildLink:
    """The child's side of the pipe: ``ready``, ``start``/``end`` of each job, beats.

    Every message is one short line written with a single ``os.write`` (atomic for a
    pipe under PIPE_BUF bytes), so the beat thread and the job never interleave.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._stop = threading.Event()
        self._lost = False

    def _send(self, line: str) -> None:
        if self._lost:
            return
        try:
            os.write(self.fd, (line + "\n").encode())
        except OSError:
            # The supervisor is gone: finish the job in hand and exit (rq's warm
            # shutdown), rather than work on unsupervised.
            self._lost = True
            log.warning("supervisor gone; stopping after the current job")
            os.kill(os.getpid(), signal.SIGTERM)

    def ready(self, worker_name: str) -> None:
        self._send(f"ready {worker_name}")

    def started(self, job_id: str, timeout: float) -> None:
        self._send(f"start {job_id} {timeout:g}")

    def finished(self, job_id: str) -> None:
        self._send(f"end {job_id}")

    def start_beating(self) -> None:
        """Beat every :data:`BEAT_SECONDS` from a daemon thread until the process ends."""

        def beat() -> None:
            while not self._stop.wait(BEAT_SECONDS):
                self._send("beat")

        threading.Thread(target=beat, name="supervisor-beat", daemon=True).start()


@dataclass
class _Child:
    """What the supervisor knows of its current child."""

    proc: subprocess.Popen[bytes]
    fd: int
    spawned: float
    last_seen: float
    worker_name: str | None = None
    #: (job id, time limit in seconds (<= 0: none), monotonic start) of the job in flight.
    job: tuple[str, float, float] | None = None
    #: Why the supervisor killed it (None: it ended by itself).
    killed_for: str | None = None
    buffer: bytes = field(default=b"")


class Supervisor:
    """Starts the working child, watches it, settles what it leaves and replaces it."""

    def __init__(self, settings: Settings, *, burst: bool = False) -> None:
        self.settings = settings
        self.burst = burst
        self.stale_s = max(2 * BEAT_SECONDS, settings.worker.stale_after_seconds)
        self._signals = 0
        self._child: _Child | None = None

    # -- signals -----------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        child = self._child
        if child is not None and child.proc.poll() is None:
            # First signal: rq's warm shutdown (finish the job); second: stop the job.
            child.proc.send_signal(signal.SIGTERM if self._signals == 1 else signal.SIGINT)

    # -- main loop ---------------------------------------------------------------------
    def run(self) -> bool:
        """Supervise children until stopped (or until the queue is empty with ``burst``)."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        young_deaths = 0
        try:
            while True:
                child = self._spawn()
                self._watch(child)
                returncode = child.proc.returncode
                lost_job = child.job
                if lost_job is not None or returncode != 0:
                    self._settle(child)
                if self._signals or (self.burst and returncode == 0 and lost_job is None):
                    return returncode == 0 and lost_job is None
                lived = time.monotonic() - child.spawned
                young_deaths = young_deaths + 1 if lived < YOUNG_SECONDS else 0
                pause = RESTART_BACKOFF[min(young_deaths, len(RESTART_BACKOFF) - 1)]
                if pause:
                    log.warning("worker child keeps dying; next start in %.0f s", pause)
                    self._sleep(pause)
                    if self._signals:
                        return False
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._signals and time.monotonic() < deadline:
            time.sleep(0.2)

    def _spawn(self) -> _Child:
        read_fd, write_fd = os.pipe()
        os.set_inheritable(write_fd, True)
        command = [sys.executable, "-m", "workers.child", str(write_fd)]
        if self.burst:
            command.append("--burst")
        if logging.getLogger().getEffectiveLevel() <= logging.INFO:
            command.append("--verbose")
        proc = subprocess.Popen(command, pass_fds=(write_fd,), start_new_session=True)
        os.close(write_fd)
        now = time.monotonic()
        child = _Child(proc=proc, fd=read_fd, spawned=now, last_seen=now)
        self._child = child
        log.info("worker child %d started", proc.pid)
        return child

    def _watch(self, child: _Child) -> None:
        """Read the child's messages until it exits; kill it when over time or silent."""
        try:
            open_pipe = True
            while True:
                if open_pipe:
                    readable, _, _ = select.select([child.fd], [], [], 0.5)
                    if readable:
                        open_pipe = self._read(child)
                else:
                    time.sleep(0.2)
                if child.proc.poll() is not None:
                    while open_pipe and select.select([child.fd], [], [], 0)[0]:
                        open_pipe = self._read(child)  # what it said before dying
                    return
                self._check(child, time.monotonic())
        finally:
            os.close(child.fd)

    def _read(self, child: _Child) -> bool:
        """Take in the child's messages; False at end of file."""
        data = os.read(child.fd, 65536)
        if not data:
            return False
        child.last_seen = time.monotonic()
        child.buffer += data
        *lines, child.buffer = child.buffer.split(b"\n")
        for raw in lines:
            word, _, rest = raw.decode(errors="replace").partition(" ")
            if word == "ready":
                child.worker_name = rest
            elif word == "start":
                job_id, _, timeout = rest.partition(" ")
                limit = float(timeout) if timeout else float(self.settings.worker.job_timeout)
                child.job = (job_id, limit, child.last_seen)
            elif word == "end":
                child.job = None
        return True

    def _check(self, child: _Child, now: float) -> None:
        if child.killed_for is not None:
            return
        reason = None
        limit = child.job[1] if child.job is not None else 0.0
        if child.job is not None and limit > 0 and now - child.job[2] > hard_limit(limit):
            reason = "time"
        elif child.last_seen == child.spawned:  # not heard from yet: loading
            if now - child.spawned > START_SECONDS:
                reason = "start"
        elif now - child.last_seen > self.stale_s:
            reason = "silent"
        if reason is not None:
            child.killed_for = reason
            log.warning("killing worker child %d (%s)", child.proc.pid, reason)
            child.proc.kill()

    # -- after a child ended -----------------------------------------------------------
    def _settle(self, child: _Child) -> None:
        """Record the job the child left and its death (never raises: the next child
        must start even when Redis or the database are away; the sweeper then
        recovers the document from its silent heartbeat)."""
        returncode = child.proc.returncode
        if child.job is not None:
            from workers.sweeper import recover_job

            job_id, timeout, _ = child.job
            give_up = child.killed_for == "time"
            if give_up:
                reason = f"processing took longer than the {timeout:g}-second limit"
            elif child.killed_for == "silent":
                reason = (
                    "the worker stopped responding while processing "
                    f"(killed after {self.stale_s:g} s of silence)"
                )
            elif returncode is not None and returncode < 0:
                name = signal.Signals(-returncode).name
                reason = f"the worker process died of {name} while processing"
            else:
                reason = f"the worker process exited with status {returncode} while processing"
            try:
                recover_job(self.settings, job_id, reason, give_up=give_up)
            except Exception:
                log.exception("could not settle job %s; the sweeper will", job_id)
        else:
            log.warning("worker child %d ended with status %s", child.proc.pid, returncode)
        if child.worker_name:
            self._bury(child.worker_name)

    def _bury(self, worker_name: str) -> None:
        """Tell rq the child's worker is dead (it could not say so itself)."""
        from redis.exceptions import RedisError
        from rq import Worker

        from workers.queues import get_redis

        try:
            connection = get_redis(self.settings.redis.url)
            key = Worker.redis_worker_namespace_prefix + worker_name
            worker = Worker.find_by_key(key, connection)
            if worker is not None:
                worker.register_death()
        except (RedisError, ValueError) as exc:
            log.warning("could not unregister dead worker %s: %s", worker_name, exc)
