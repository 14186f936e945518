"""PostgreSQL connections for the API's hot reads, without threads (asyncpg).

The API's routes are synchronous SQLAlchemy code run in a thread pool; that costs a thread
hop per dependency and Python-level ORM work per statement. The calls every portal makes
all the time (authenticating a key, listing a citizen's documents, fetching one, auditing
the read) run instead on the event loop over these connections: no explicit transaction
(one statement, one transaction), UTC, at most ``size`` per API process and event loop,
opened on demand.

Why asyncpg rather than psycopg's async connections (which the rest of the service's
SQLAlchemy code uses, synchronously): measured on the vault benchmark's database, one
portal listing statement cost the API process 640 us of CPU through psycopg and 365 us
through asyncpg (its protocol is compiled), a batch of four audit events 1,020 us against
560 us. These statements are most of what the API does under portal load.

A deliberately small pool rather than asyncpg's: an asyncpg connection belongs to the
event loop that opened it, and Starlette's TestClient (and any caller of
``asyncio.run``) may serve consecutive requests from different loops, so idle
connections are kept per loop, and so is the limit. A connection that fails is dropped;
a reused one that fails (a database restart since) is replaced once before giving up.
SQLite (the embedded stack) has no such pool: callers use the synchronous path.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeAlias, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from storage.statements import Sql

#: What an outage looks like from here (mapped to 503 by the API): the server refusing or
#: dropping connections, shutting down or starting up, or not answering in time.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)

T = TypeVar("T")
Connection: TypeAlias = "asyncpg.Connection[Any]"


def dsn(url: str) -> str:
    """A libpq-style URL from a SQLAlchemy URL (``postgresql+psycopg://...``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _json_codec(conn: Connection) -> None:
    # json and jsonb values as Python objects (asyncpg's default is their text)
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class _LoopSlots:
    """One event loop's idle connections and its limit."""

    def __init__(self, size: int) -> None:
        self.idle: list[Connection] = []
        self.limit = asyncio.Semaphore(size)
        self.closer: AsyncIterator[None] | None = None

    async def close(self) -> None:
        idle, self.idle = self.idle, []
        for conn in idle:
            try:
                await asyncio.wait_for(conn.close(), 5)
            except Exception:  # closing a broken connection: nothing more to do
                conn.terminate()


class AsyncDatabase:
    """A small async connection pool on one PostgreSQL database."""

    def __init__(self, url: str, size: int = 8, timeout_s: float = 10.0) -> None:
        self._dsn = dsn(url)
        self._size = size
        self._timeout = timeout_s
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopSlots] = (
            weakref.WeakKeyDictionary()
        )

    async def _connect(self) -> Connection:
        conn = await asyncpg.connect(self._dsn, timeout=5, server_settings={"timezone": "UTC"})
        try:
            await _json_codec(conn)
        except BaseException:
            conn.terminate()
            raise
        return conn

    async def _close_at_loop_end(
        self, loop: asyncio.AbstractEventLoop, slots: _LoopSlots
    ) -> AsyncIterator[None]:
        """Suspended for the life of its event loop; asyncio's runner finalizes pending
        async generators (``loop.shutdown_asyncgens``) while the loop still runs, so the
        loop's connections are closed on it. One loop per uvicorn worker; one per request
        in Starlette's TestClient."""
        try:
            yield
        finally:
            self._loops.pop(loop, None)
            await slots.close()

    async def _slots(self) -> _LoopSlots:
        loop = asyncio.get_running_loop()
        slots = self._loops.get(loop)
        if slots is None:
            # Loops closed without finalizing their generators: their connections (which
            # hold them) are let go, for the garbage collector to close.
            for gone in [other for other in self._loops if other.is_closed()]:
                del self._loops[gone]
            slots = self._loops[loop] = _LoopSlots(self._size)
            slots.closer = self._close_at_loop_end(loop, slots)
            await anext(slots.closer)
        return slots

    @asynccontextmanager
    async def _slot(self, slots: _LoopSlots) -> AsyncIterator[None]:
        await asyncio.wait_for(slots.limit.acquire(), self._timeout)
        try:
            yield
        finally:
            slots.limit.release()

    async def run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """``work(connection)`` on a pooled connection; once more on a fresh connection when
        a reused one turns out broken.

        Raises:
            OSError, asyncpg.PostgresConnectionError, ...: the database is unreachable
                (see ``UNAVAILABLE``).
        """
        slots = await self._slots()
        async with self._slot(slots):
            for attempt in (1, 2):
                reused = bool(slots.idle)
                conn = slots.idle.pop() if reused else await self._connect()
                try:
                    result = await work(conn)
                except UNAVAILABLE:
                    conn.terminate()
                    if reused and attempt == 1:
                        continue
                    raise
                except BaseException:
                    conn.terminate()
                    raise
                if conn.is_closed() or conn.is_in_transaction():
                    conn.terminate()
                else:
                    slots.idle.append(conn)
                return result
        raise AssertionError("unreachable")

    async def fetch_one(self, sql: Sql, params: Mapping[str, Any]) -> dict[str, Any] | None:
        async def work(conn: Connection) -> dict[str, Any] | None:
            row = await conn.fetchrow(sql.text, *sql.args(params))
            return None if row is None else dict(row.items())

        return await self.run(work)

    async def fetch_all(self, sql: Sql, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        async def work(conn: Connection) -> list[dict[str, Any]]:
            return [dict(row.items()) for row in await conn.fetch(sql.text, *sql.args(params))]

        return await self.run(work)

    async def execute(self, sql: Sql, params: Mapping[str, Any]) -> None:
        async def work(conn: Connection) -> None:
            await conn.execute(sql.text, *sql.args(params))

        await self.run(work)

    async def close(self) -> None:
        """Close this loop's idle connections (those of other loops are closed as their
        loops end)."""
        slots = self._loops.pop(asyncio.get_running_loop(), None)
        if slots is not None:
            await slots.close()


def async_database(url: str, size: int) -> AsyncDatabase | None:
    """The async pool (``size`` connections per event loop) for a database URL, or None
    where there is none (SQLite)."""
    return AsyncDatabase(url, size=size) if url.startswith("postgresql") else None
