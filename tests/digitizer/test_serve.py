"""``sohoa api --workers N``: the supervisor hands each connection (TCP_NODELAY set) to
the worker with the fewest open, and a worker that dies is replaced
(``digitizer.api.serve``)."""

from __future__ import annotations

import contextlib
import http.client
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from digitizer.api.serve import _CLOSED, _READY, APP, HandedProcess, bind_tcp, hand_over
from digitizer.config import Settings
from digitizer.stack import settings_env
from fixtures.stack import children
from storage.embedded import free_port


def _pair() -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair on loopback: (the client's end, the accepted end)."""
    listener = bind_tcp("127.0.0.1", 0)
    listener.listen(1)
    with listener:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
    return client, accepted


@pytest.mark.smoke
def test_connections_go_to_the_started_worker_with_fewest_open_and_get_nodelay() -> None:
    config = uvicorn.Config(APP, factory=True)
    workers = [HandedProcess(config) for _ in range(3)]  # never started: no processes
    ends: list[socket.socket] = []
    try:
        for worker in workers[:2]:
            worker.shared[_READY] = 1

        def hand() -> tuple[int, socket.socket]:
            client, accepted = _pair()
            ends.append(client)
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
                assert hand_over(accepted, workers)
            open_ends = {
                w.worker_end: i for i, w in enumerate(workers) if w.worker_end.fileno() >= 0
            }
            took = [open_ends[end] for end in select.select(list(open_ends), [], [], 0)[0]]
            assert len(took) == 1
            _, fds, _, _ = socket.recv_fds(workers[took[0]].worker_end, 16, 4)
            received = socket.socket(fileno=fds[0])
            ends.append(received)
            return took[0], received

        # the two started workers alternate; the one still starting gets none
        first = [hand()[0] for _ in range(6)]
        assert sorted(first) == [0, 0, 0, 1, 1, 1]
        # what a worker gets is the connection itself, Nagle off
        index, received = hand()
        assert received.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        ends[0].sendall(b"ping")  # the first client's connection
        # worker 1 closes two of its connections: the next two go to it
        workers[1].shared[_CLOSED] += 2
        assert workers[0].open_connections == (4 if index == 0 else 3)
        assert [hand()[0] for _ in range(2)] == [1, 1]
        # a worker that cannot take it (dead: its end closed) is passed over
        workers[1].worker_end.close()
        workers[1].shared[_CLOSED] += 10
        assert hand()[0] == 0
        # when no started worker can take it, one still starting does
        workers[0].worker_end.close()
        assert hand()[0] == 2
        workers[2].worker_end.close()
        client, accepted = _pair()
        ends.append(client)
        with accepted:
            assert not hand_over(accepted, workers)
    finally:
        for end in ends:
            end.close()
        for worker in workers:
            worker.close()
            worker.worker_end.close()


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


def _peers(pid: int, port: int) -> set[int]:
    """The client ports of the connections to ``port`` that process ``pid`` holds open
    (from /proc: its socket inodes, matched in its network namespace's TCP table)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(int(link[8:-1]))
    peers = set()
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
        if state == "01" and inode in inodes and int(local.split(":")[1], 16) == port:
            peers.add(int(remote.split(":")[1], 16))
    return peers


def _kept_alive(port: int, count: int) -> dict[int, http.client.HTTPConnection]:
    """``count`` kept-alive connections, each answered once, by their client ports."""
    clients = {}
    for _ in range(count):
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        client.request("GET", "/healthz")
        answer = client.getresponse()
        answer.read()
        assert answer.status == 200
        clients[client.sock.getsockname()[1]] = client
    return clients


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
        # 16 kept-alive clients: 8 per worker (a port hash split them 10 / 6 or worse)
        clients = _kept_alive(port, 16)
        held = [_peers(worker, port) for worker in first]
        assert [len(peers) for peers in held] == [8, 8]
        assert held[0] | held[1] == set(clients)
        # the first worker's clients leave; the next 8 go to it, as it now has none open
        for client_port in held[0]:
            clients.pop(client_port).close()
        deadline = time.monotonic() + 30
        while _peers(first[0], port):
            assert time.monotonic() < deadline, "the worker did not see its clients leave"
            time.sleep(0.1)
        time.sleep(0.2)  # its count is updated as its connections close
        clients |= _kept_alive(port, 8)
        assert [len(_peers(worker, port)) for worker in first] == [8, 8]
        for client in clients.values():
            client.close()
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
