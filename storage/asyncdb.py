"""PostgreSQL connections for the API's hot reads, without threads (psycopg async).

The API's routes are synchronous SQLAlchemy code run in a thread pool; that costs a thread
hop per dependency and Python-level ORM work per statement. The calls every portal makes
all the time (authenticating a key, listing a citizen's documents, fetching one, auditing
the read) run instead on the event loop over these connections: autocommit (one
statement, one transaction), UTC, at most ``size`` per API process, opened on demand.

A deliberately small pool rather than psycopg_pool's: its background tasks and locks
belong to the event loop that opened it, while Starlette's TestClient (and any caller
of ``asyncio.run``) may serve consecutive requests from different loops. psycopg's
connections are not tied to a loop when used by one task at a time, which is all this
pool does; the limit is a semaphore per loop. A connection that fails is dropped; a
reused one that fails (a database restart since) is replaced once before giving up.
SQLite (the embedded stack) has no such pool: callers use the synchronous path.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from sqlalchemy.engine import make_url

#: What an outage looks like from here (mapped to 503 by the API).
UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, TimeoutError)

T = TypeVar("T")
Connection = psycopg.AsyncConnection[dict[str, Any]]


def conninfo(url: str) -> str:
    """A libpq connection string from a SQLAlchemy URL (``postgresql+psycopg://...``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class AsyncDatabase:
    """A small async connection pool on one PostgreSQL database."""

    def __init__(self, url: str, size: int = 8, timeout_s: float = 10.0) -> None:
        self._conninfo = conninfo(url)
        self._size = size
        self._timeout = timeout_s
        self._idle: list[Connection] = []
        self._limits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    async def _connect(self) -> Connection:
        return await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            row_factory=dict_row,
            options="-c timezone=UTC",
            connect_timeout=5,
        )

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        limit = self._limits.get(loop)
        if limit is None:
            limit = self._limits[loop] = asyncio.Semaphore(self._size)
        await asyncio.wait_for(limit.acquire(), self._timeout)
        try:
            yield
        finally:
            limit.release()

    async def run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """``work(connection)`` on a pooled connection; once more on a fresh connection when
        a reused one turns out broken.

        Raises:
            psycopg.OperationalError: the database is unreachable (see ``UNAVAILABLE``).
        """
        async with self._slot():
            for attempt in (1, 2):
                reused = bool(self._idle)
                conn = self._idle.pop() if reused else await self._connect()
                try:
                    result = await work(conn)
                except UNAVAILABLE:
                    await _close(conn)
                    if reused and attempt == 1:
                        continue
                    raise
                except BaseException:
                    await _close(conn)
                    raise
                if conn.info.transaction_status == TransactionStatus.IDLE:
                    self._idle.append(conn)
                else:
                    await _close(conn)
                return result
        raise AssertionError("unreachable")

    async def fetch_one(self, query: Any, params: Any = None) -> dict[str, Any] | None:
        async def work(conn: Connection) -> dict[str, Any] | None:
            return await (await conn.execute(query, params)).fetchone()

        return await self.run(work)

    async def fetch_all(self, query: Any, params: Any = None) -> list[dict[str, Any]]:
        async def work(conn: Connection) -> list[dict[str, Any]]:
            return await (await conn.execute(query, params)).fetchall()

        return await self.run(work)

    async def execute(self, query: Any, params: Any = None) -> None:
        async def work(conn: Connection) -> None:
            await conn.execute(query, params)

        await self.run(work)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await _close(conn)


async def _close(conn: Connection) -> None:
    try:
        await conn.close()
    except Exception:  # closing a broken connection: nothing more to do
        pass


def async_database(url: str, size: int) -> AsyncDatabase | None:
    """The async pool (``size`` connections) for a database URL, or None where there is
    none (SQLite)."""
    return AsyncDatabase(url, size=size) if url.startswith("postgresql") else None
