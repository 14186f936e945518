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

Nor a ``SO_REUSEPORT`` socket per worker (what this module did before): the kernel picks
the worker by a hash of the client's address and port, blind to load. 16 portal clients
landed 10 / 6 (or 9 / 7) in most runs, and the ten clients of the busier worker waited
45 ms per call on average against 32 ms for the other six; the list call's p99 came from
them.

Here the supervisor accepts and hands each connection (its file descriptor, over a Unix
socket) to the worker that holds the fewest open ones, preferring workers that have
finished starting (the first connections wait in the backlog until every worker has
started); connections are set ``TCP_NODELAY`` before they go. Each worker counts
the connections it has closed in memory shared with the supervisor, so the supervisor's
count of a worker's open connections is exact, without asking. uvicorn's supervisor still
pings the workers and replaces one that dies or hangs; a dead worker's hand-over socket
dies with it, so nothing is handed to it (the next worker takes the connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from multiprocessing import get_context
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

APP = "digitizer.api.app:create_app"

logger = logging.getLogger(__name__)


def bind_tcp(host: str, port: int) -> socket.socket:
    """A bound TCP socket on ``host:port`` (``IPPROTO_TCP``: asyncio sets TCP_NODELAY on
    the connections it accepts on such a socket)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


#: How long the supervisor holds the first connections for workers still starting.
STARTUP_WAIT_S = 60.0

#: The shared counters of a worker: connections it closed, and whether it has started.
_CLOSED, _READY = 0, 1


class _CountedConnections(set[Any]):
    """uvicorn's set of a worker's open connections, counting those that leave it into
    memory the supervisor reads."""

    def __init__(self, shared: Any) -> None:
        super().__init__()
        self.shared = shared

    def discard(self, element: Any) -> None:
        if element in self:
            super().discard(element)
            self.shared[_CLOSED] += 1  # one writer: this worker's event loop


class HandedServer(uvicorn.Server):
    """A worker serving the connections its supervisor hands it over ``hand``."""

    def __init__(self, config: uvicorn.Config, hand: socket.socket, shared: Any) -> None:
        super().__init__(config)
        self.hand = hand
        self.shared = shared
        self.server_state.connections = _CountedConnections(shared)
        self._adopting: set[asyncio.Task[None]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the app's lifespan; no listening socket
        loop = asyncio.get_running_loop()
        self.hand.setblocking(False)
        loop.add_reader(self.hand.fileno(), self._take)
        self.shared[_READY] = 1

    def _protocol(self) -> asyncio.Protocol:
        return self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )

    def _take(self) -> None:
        """Adopt the connections waiting on the hand-over socket."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                message, fds, _flags, _address = socket.recv_fds(self.hand, 64, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                message, fds = b"", []
            if not message:  # the supervisor is gone: finish what is open, then stop
                loop.remove_reader(self.hand.fileno())
                self.should_exit = True
                return
            for fd in fds:
                task = loop.create_task(self._adopt(socket.socket(fileno=fd)))
                self._adopting.add(task)
                task.add_done_callback(self._adopting.discard)

    async def _adopt(self, conn: socket.socket) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(self._protocol, conn)
        except OSError:  # the client left before it was adopted
            conn.close()
            self.shared[_CLOSED] += 1

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.shared[_READY] = 0
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(self.hand.fileno())
        self.hand.close()
        await super().shutdown(sockets)


class HandedProcess(Process):
    """A worker process with its end of a hand-over socket and its shared counters."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config, [])
        self.supervisor_end, self.worker_end = socket.socketpair(
            socket.AF_UNIX, socket.SOCK_SEQPACKET
        )
        self.shared = get_context("spawn").RawArray("q", 2)
        self.handed = 0  # connections handed to it (the supervisor's count)

    def __getstate__(self) -> dict[str, Any]:
        # What the child gets: not the supervisor's end (its close must mean "gone").
        state = self.__dict__.copy()
        state.pop("supervisor_end", None)
        return state

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = HandedServer(self.config, self.worker_end, self.shared)
        return self._server

    def start(self) -> None:
        super().start()
        self.worker_end.close()  # the child has its copy; ours would keep it "alive"

    @property
    def open_connections(self) -> int:
        return self.handed - self.shared[_CLOSED]

    @property
    def ready(self) -> bool:
        return bool(self.shared[_READY])

    def hand(self, conn: socket.socket) -> bool:
        """Pass ``conn`` to the worker; False when it cannot take it (dead, or its queue is
        full)."""
        try:
            socket.send_fds(self.supervisor_end, [b"c"], [conn.fileno()], socket.MSG_DONTWAIT)
        except OSError:
            return False
        self.handed += 1
        return True

    def close(self) -> None:
        self.supervisor_end.close()


def hand_over(conn: socket.socket, workers: list[HandedProcess]) -> bool:
    """Hand ``conn`` (with ``TCP_NODELAY``) to the started worker with the fewest open
    connections, or the next when that one cannot take it; workers still starting come
    last. False when none took it."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ranked = sorted(workers, key=lambda worker: (not worker.ready, worker.open_connections))
    return any(worker.hand(conn) for worker in ranked)


class BalancingSupervisor(Multiprocess):
    """uvicorn's process supervisor, accepting connections itself and handing each to
    the least loaded worker."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config, sockets=[])
        self.listener = bind_tcp(config.host, config.port)
        self.listener.listen(config.backlog)
        self.port = self.listener.getsockname()[1]
        self.processes: list[HandedProcess] = []  # type: ignore[assignment]
        self._dispatcher = threading.Thread(target=self._dispatch, name="dispatch", daemon=True)

    def spawn(self) -> HandedProcess:
        process = HandedProcess(self.config)
        process.start()
        return process

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            self.processes.append(self.spawn())
        self._dispatcher.start()

    def _dispatch(self) -> None:
        # The first connections (a portal opening its pool) wait in the backlog until
        # every worker has started, so that they are spread over all of them.
        deadline = time.monotonic() + STARTUP_WAIT_S
        while not all(worker.ready for worker in list(self.processes)):
            if self.should_exit.is_set() or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                if self.should_exit.is_set():
                    return
                continue  # the client reset before it was accepted; fds exhausted
            with conn:
                if not hand_over(conn, list(self.processes)):
                    logger.error("no API worker could take a connection")

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            process.close()
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
                new.close()
                return
            self.processes[idx] = new
            old.terminate()
            old.join()
            old.close()

    def handle_ttin(self) -> None:
        self.processes_num += 1
        self.processes.append(self.spawn())

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.should_exit.set()
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the dispatcher's accept
            self.listener.close()
            for process in self.processes:
                process.close()


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
    supervisor = BalancingSupervisor(config)
    logger.warning("API on %s:%d with %d worker processes", host, supervisor.port, workers)
    supervisor.run()
