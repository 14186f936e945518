"""``sohoa api --workers N``: TCP_NODELAY on every connection, a socket per worker, and a
worker that dies is replaced (``digitizer.api.serve``)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from digitizer.api.serve import bind_tcp
from digitizer.config import Settings
from digitizer.stack import settings_env
from fixtures.stack import children
from storage.embedded import free_port


async def _nodelay_of_accepted(sock: socket.socket) -> int:
    """The TCP_NODELAY asyncio leaves on a connection accepted on ``sock``."""
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            conn = transport.get_extra_info("socket")
            accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
    port = sock.getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await asyncio.wait_for(accepted, 5)
    finally:
        writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.smoke
def test_connections_on_our_socket_get_nodelay_and_uvicorns_did_not() -> None:
    ours = bind_tcp("127.0.0.1", 0, reuse_port=True)
    assert asyncio.run(_nodelay_of_accepted(ours)) == 1
    # What uvicorn's --workers binds: protocol 0, so asyncio leaves Nagle on (the ~40 ms
    # stall per kept-alive answer that bench/vault.py measured).
    plain = socket.socket(socket.AF_INET)
    plain.bind(("127.0.0.1", 0))
    assert plain.proto == 0
    assert asyncio.run(_nodelay_of_accepted(plain)) == 0


def _api_workers(pid: int) -> list[int]:
    """The supervisor's children, less multiprocessing's resource tracker."""
    found = []
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        if b"resource_tracker" not in cmdline:
            found.append(child)
    return found


def _healthy(url: str) -> bool:
    try:
        # A fresh connection each time: the kernel may route it to either worker.
        return httpx.get(url, timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def test_supervised_workers_serve_one_port_and_a_dead_one_is_replaced(
    settings: Settings,
) -> None:
    port = free_port()
    env = {**os.environ, **settings_env(settings)}
    sohoa = str(Path(sys.executable).with_name("sohoa"))
    api = subprocess.Popen(
        [sohoa, "api", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"], env=env
    )
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        deadline = time.monotonic() + 120
        while len(_api_workers(api.pid)) < 2 or not _healthy(url):
            assert api.poll() is None, "the API exited"
            assert time.monotonic() < deadline, "the API did not come up"
            time.sleep(0.3)
        first = _api_workers(api.pid)
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 120
        while True:
            now = _api_workers(api.pid)
            if first[0] not in now and len(now) == 2:
                break
            assert time.monotonic() < deadline, f"no replacement worker: {now}"
            time.sleep(0.3)
        assert first[1] in now
        # Every connection is answered, by the survivor or the replacement: the dead
        # worker's socket closed with it, none was left for the kernel to route to.
        deadline = time.monotonic() + 120
        while not _healthy(url):
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert all(_healthy(url) for _ in range(20))
    finally:
        api.send_signal(signal.SIGTERM)
        try:
            api.wait(timeout=30)
        except subprocess.TimeoutExpired:
            api.kill()
            api.wait()
    assert api.returncode == 0
