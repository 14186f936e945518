"""Shared fixtures: real services, fresh namespaces per test.

- S3: one SeaweedFS ``weed mini`` for the session on free loopback ports; each
  test gets its own bucket.
- Redis: the machine's Redis (``SOHOA_TEST_REDIS_URL``, default
  127.0.0.1:6379 db 9); each test gets its own queue name, so tests never see
  each other's jobs and nothing is flushed.
- Database: PostgreSQL (``SOHOA_TEST_DB=postgresql``, default
  ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres`` as the admin URL):
  a template database is migrated once per session and each test gets a copy;
  or SQLite (``SOHOA_TEST_DB=sqlite``): a migrated file copied per test.
"""

from __future__ import annotations

import os
import secrets
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from digitizer.config import (
    DatabaseSettings,
    EmbeddedSettings,
    RedisSettings,
    S3Settings,
    Settings,
    WorkerSettings,
)
from storage import migrate
from storage.db import get_engine
from storage.embedded import SeaweedFS

DB_KIND = os.environ.get("SOHOA_TEST_DB", "postgresql")
PG_ADMIN_URL = os.environ.get(
    "SOHOA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SOHOA_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On SQLite only the smoke subset runs (the full suite runs on PostgreSQL)."""
    if DB_KIND != "sqlite":
        return
    skip = pytest.mark.skip(reason="SOHOA_TEST_DB=sqlite runs the smoke subset only")
    for item in items:
        if "smoke" not in item.keywords and "db" in item.fixturenames:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A real S3 server for the whole session."""
    server = SeaweedFS(data_dir=tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _db_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database to copy for each test."""
    if DB_KIND == "sqlite":
        path = tmp_path_factory.mktemp("db") / "template.db"
        migrate.upgrade(f"sqlite:///{path}")
        # Closing the last connection checkpoints the WAL into the file we copy.
        get_engine(f"sqlite:///{path}").dispose()
        yield str(path)
        return
    name = f"sohoa_tmpl_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    get_engine(url).dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def db(_db_template: str, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, migrated database for this test."""
    if DB_KIND == "sqlite":
        path = tmp_path / "sohoa.db"
        shutil.copy(_db_template, path)
        yield f"sqlite:///{path}"
        return
    name = f"sohoa_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{_db_template}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    get_engine(url).dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def settings(db: str, s3_server: SeaweedFS, tmp_path: Path) -> Settings:
    """Settings pointing at real services, with a bucket and queue of this test's own."""
    unique = uuid.uuid4().hex[:12]
    return Settings(
        s3=S3Settings(
            endpoint=s3_server.endpoint,
            access_key=s3_server.access_key,
            secret_key=s3_server.secret_key,
            bucket=f"test-{unique}",
        ),
        redis=RedisSettings(url=REDIS_URL, queue=f"test-{unique}"),
        db=DatabaseSettings(url=db),
        worker=WorkerSettings(retry_intervals=[0, 0, 0]),
        embedded=EmbeddedSettings(home=tmp_path / "home"),
        secret_key=secrets.token_hex(32),
    )
