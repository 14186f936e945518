"""Serving the API with uvicorn: one process, or several supervised ones on one port.

Why not ``uvicorn --workers N``, measured by ``bench/vault.py`` on 2 cores:

* uvicorn binds its shared socket as ``socket.socket(AF_INET)``, protocol number 0, and
  asyncio turns Nagle's algorithm off (``TCP_NODELAY``) only on connections of sockets
  that say ``IPPROTO_TCP``. An answer goes out in two sends (head, then body), so on a
  kept-alive connection the body waited for the client's delayed ACK: ~40 ms on every
  call (a 2 ms ``/healthz`` took 44 ms with two workers).
* With one socket shared by all workers, whichever worker wakes first accepts, and
  kept-alive connections stay where they landed: one worker ran at 94 % of a core and the
  other at 26 % while clients queued.

Here each worker gets its own ``SO_REUSEPORT`` socket bound with ``IPPROTO_TCP``, so the
kernel spreads connections over the workers by address hash and every connection has
``TCP_NODELAY``. uvicorn's supervisor still pings the workers and replaces one that dies
or hangs; a dead worker's socket dies with it (the parent keeps no copy), so no
connection is routed to a socket nobody accepts on.

The kernel's address hash is blind to load: 16 kept-alive bench clients often land 10 / 6,
and then the ten wait longer than the six. A supervisor that accepted every connection
itself and handed it (over a Unix socket) to the worker with the fewest open was tried
(commit bc75b7d): it split the clients 8 / 8, yet in three interleaved ``bench.vault``
rounds it served 460-608 reads/s against 581-634 here, with list p99 54-76 ms against
51-60 and 0.16-0.25 ms more API CPU per call. Uneven workers form larger audit batches
(one chain lock and commit for more reads) on the busier one, which may be part of why.
These figures predate migration 0014: every append then also scanned the audit chain,
which made a batch's fixed cost far larger than it is now.
"""

from __future__ import annotations

import logging
import socket

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

APP = "digitizer.api.app:create_app"

logger = logging.getLogger(__name__)


def bind_tcp(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound TCP socket on ``host:port`` on whose connections asyncio sets TCP_NODELAY."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


class ReusePortSupervisor(Multiprocess):
    """uvicorn's process supervisor, with a socket of its own for each worker."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config, sockets=[])
        self.host = config.host
        self.port = config.port
        # Holds the port between worker generations, so that a restarted worker binds
        # the same port even when it was given as 0; it never listens, so the kernel
        # routes no connection to it.
        self.reservation = bind_tcp(self.host, self.port, reuse_port=True)
        self.port = self.reservation.getsockname()[1]

    def spawn(self) -> Process:
        sock = bind_tcp(self.host, self.port, reuse_port=True)
        process = Process(self.config, [sock])
        process.start()
        # The child has its own copy now (multiprocessing's resource sharer keeps a
        # duplicate until the child takes it); the parent must not keep one.
        sock.close()
        return process

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            self.processes.append(self.spawn())

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                logger.error("API worker %s failed to start; stopping", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.warning("API worker %s died; starting another", process.pid)
            self.processes[idx] = self.spawn()

    def restart_all(self) -> None:
        for idx, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self.spawn()
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                return
            old.terminate()
            old.join()
            self.processes[idx] = new

    def handle_ttin(self) -> None:
        self.processes_num += 1
        self.processes.append(self.spawn())

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.reservation.close()


def serve(host: str, port: int, workers: int = 1, log_level: str = "warning") -> None:
    """Serve the API (settings from the environment) until interrupted.

    ``workers`` > 1 starts that many processes, supervised (a dead one is replaced).
    """
    config = uvicorn.Config(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
    )
    if workers <= 1:
        uvicorn.Server(config).run()
        return
    supervisor = ReusePortSupervisor(config)
    logger.warning("API on %s:%d with %d worker processes", host, supervisor.port, workers)
    supervisor.run()
