"""The embedded servers: real processes on free loopback ports, nothing shared touched.

The machine's own Redis (6379) and PostgreSQL (5432) are never used here: every
server below runs on a port the kernel handed out, with data in a temp dir.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis
from minio import Minio
from minio.error import S3Error

from storage import embedded
from storage.embedded import (
    GRPC_OFFSET,
    PostgresServer,
    RedisServer,
    SeaweedFS,
    free_port,
    port_open,
    s3_config_json,
)

SHARED_PORTS = {6379, 5432}
ROOT = Path(__file__).resolve().parents[2]


def _listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket ``pid`` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found: set[tuple[str, int]] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state != "0A" or inode not in inodes:  # 0A = LISTEN
                continue
            hex_ip, hex_port = local.split(":")
            if len(hex_ip) == 8:
                ip = socket.inet_ntop(socket.AF_INET, bytes.fromhex(hex_ip)[::-1])
            else:
                ip = "v6:" + hex_ip
            found.add((ip, int(hex_port, 16)))
    return found


def _wait_closed(port: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while port_open("127.0.0.1", port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- ports -------------------------------------------------------------------------------
def test_free_port_and_port_open() -> None:
    port = free_port()
    assert 1024 < port < 65536
    assert not port_open("127.0.0.1", port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert port_open("127.0.0.1", port)


def test_s3_config_json_grants_admin_to_one_identity() -> None:
    config = json.loads(s3_config_json("ak", "sk-secret"))
    (identity,) = config["identities"]
    assert identity["credentials"] == [{"accessKey": "ak", "secretKey": "sk-secret"}]
    assert "Admin" in identity["actions"]


# -- SeaweedFS ---------------------------------------------------------------------------
def test_seaweedfs_s3_roundtrip_auth_and_restart(tmp_path: Path) -> None:
    data = tmp_path / "weed"
    server = SeaweedFS(data_dir=data, access_key="test-key", secret_key="test-secret-123")
    server.start()
    try:
        assert server.startup_seconds is not None
        print(f"\nSeaweedFS first start: {server.startup_seconds:.2f} s")
        host, port = server.endpoint.split(":")
        assert host == "127.0.0.1"
        assert int(port) not in SHARED_PORTS
        # Loopback only, and only the ports we chose (each HTTP port + its gRPC twin).
        assert server.pid is not None
        expected = {p for base in server.ports.values() for p in (base, base + GRPC_OFFSET)}
        # S3 answers before the admin component finishes binding: give it a moment.
        deadline = time.monotonic() + 10
        while {p for _, p in _listening(server.pid)} != expected and time.monotonic() < deadline:
            time.sleep(0.1)
        listening = _listening(server.pid)
        assert {addr for addr, _ in listening} == {"127.0.0.1"}
        assert {p for _, p in listening} == expected

        client = Minio(server.endpoint, "test-key", "test-secret-123", secure=False)
        client.make_bucket("embedded-test")
        client.put_object("embedded-test", "a/b.txt", io.BytesIO(b"xin chao"), 8)
        assert client.get_object("embedded-test", "a/b.txt").read() == b"xin chao"

        wrong_secret = Minio(server.endpoint, "test-key", "not-the-secret", secure=False)
        with pytest.raises(S3Error) as denied:
            wrong_secret.get_object("embedded-test", "a/b.txt").read()
        assert denied.value.code in {"AccessDenied", "SignatureDoesNotMatch"}
        wrong_key = Minio(server.endpoint, "someone", "test-secret-123", secure=False)
        with pytest.raises(S3Error) as unknown:
            wrong_key.list_buckets()
        assert unknown.value.code in {"AccessDenied", "InvalidAccessKeyId"}
    finally:
        server.stop()
    server.stop()  # idempotent
    assert server.pid is None
    assert all(_wait_closed(p) for p in expected)

    again = SeaweedFS(data_dir=data, access_key="test-key", secret_key="test-secret-123")
    with again:
        assert again.startup_seconds is not None
        print(f"SeaweedFS restart: {again.startup_seconds:.2f} s")
        # Ports are remembered in the data dir, so the endpoint stays the same.
        assert again.ports == server.ports
        client = Minio(again.endpoint, "test-key", "test-secret-123", secure=False)
        assert client.get_object("embedded-test", "a/b.txt").read() == b"xin chao"
    assert not port_open("127.0.0.1", again.ports["s3"])


def test_seaweedfs_refuses_a_taken_s3_port(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        with pytest.raises(RuntimeError, match="in use"):
            SeaweedFS(data_dir=tmp_path, s3_port=busy).start()


def test_seaweedfs_failure_shows_the_log_tail(tmp_path: Path) -> None:
    fake = tmp_path / "weed"
    fake.write_text("#!/bin/sh\necho 'F1123 boom: volume dir is on fire' >&2\nexit 3\n")
    fake.chmod(0o755)
    server = SeaweedFS(data_dir=tmp_path / "data", binary=fake)
    with pytest.raises(RuntimeError) as failed:
        server.start(timeout=10)
    message = str(failed.value)
    assert "code 3" in message
    assert "volume dir is on fire" in message
    assert server.pid is None
    server.stop()


def _processes_naming(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and text in embedded._cmdline(int(proc.name)):
            found.append(int(proc.name))
    return found


def test_seaweedfs_that_does_not_answer_in_time_is_stopped(tmp_path: Path) -> None:
    data = (tmp_path / "slow").resolve()
    server = SeaweedFS(data_dir=data)
    with pytest.raises(RuntimeError, match="did not answer"):
        server.start(timeout=0.05)
    assert server.pid is None
    assert _processes_naming(f"-dir={data}") == []


def test_seaweedfs_refuses_a_second_instance_on_one_data_dir(tmp_path: Path) -> None:
    data = (tmp_path / "data").resolve()
    data.mkdir()
    # Stands in for an orphaned weed: its command line names weed and the data dir.
    # ("; :" keeps sh from exec'ing sleep, which would replace that command line.)
    orphan = subprocess.Popen(["sh", "-c", "sleep 30; :", "weed", f"-dir={data}"])
    try:
        deadline = time.monotonic() + 5  # Popen returns before the child has exec'd
        while "weed" not in embedded._cmdline(orphan.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        (data / "sohoa-weed.pid").write_text(f"{orphan.pid}\n")
        with pytest.raises(RuntimeError, match="already running"):
            SeaweedFS(data_dir=data).start()
    finally:
        orphan.kill()
        orphan.wait()


# -- Redis -------------------------------------------------------------------------------
def test_redis_server_starts_answers_and_stops() -> None:
    server = RedisServer()
    server.start()
    try:
        assert server.port is not None
        assert server.port not in SHARED_PORTS
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        print(f"\nRedis start: {server.startup_seconds:.3f} s")
        conn = redis.Redis.from_url(server.url)
        assert conn.ping()
        conn.close()
    finally:
        server.stop()
    server.stop()  # idempotent
    assert _wait_closed(server.port)


def test_redis_server_persists_with_a_data_dir(tmp_path: Path) -> None:
    with RedisServer(data_dir=tmp_path / "redis") as server:
        conn = redis.Redis.from_url(server.url)
        conn.set("sohoa:test", "còn đây")
        conn.close()
    with RedisServer(data_dir=tmp_path / "redis") as server:
        conn = redis.Redis.from_url(server.url)
        assert conn.get("sohoa:test") == "còn đây".encode()
        conn.close()
    assert (tmp_path / "redis" / "appendonlydir").is_dir()


def test_redis_server_missing_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="redis-server not found"):
        RedisServer().start()


def test_a_server_left_running_is_stopped_at_exit() -> None:
    """A process that exits without stop() (a crashed test run) leaves nothing behind."""
    script = textwrap.dedent(
        """
        import sys
        from storage.embedded import RedisServer
        server = RedisServer()
        server.start()
        print(server.port, server._proc.pid, flush=True)
        raise SystemExit(1)  # no stop(): atexit must do it
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    port, pid = (int(x) for x in proc.stdout.split())
    assert not port_open("127.0.0.1", port)
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


# -- PostgreSQL --------------------------------------------------------------------------
def test_postgres_server_starts_connects_and_stops() -> None:
    psycopg = pytest.importorskip("psycopg")
    try:
        embedded.postgres_bin_dir()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    server = PostgresServer()
    server.start()
    try:
        assert server.port is not None
        assert server.port not in SHARED_PORTS
        print(f"\nPostgreSQL initdb + start: {server.startup_seconds:.2f} s")
        assert server.url == f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/postgres"
        with psycopg.connect(
            f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres"
        ) as conn:
            assert conn.execute("SELECT 1 + 1").fetchone() == (2,)
        base = server.pgdata.parent
    finally:
        server.stop()
    server.stop()  # idempotent
    assert _wait_closed(server.port)
    assert not base.exists()
