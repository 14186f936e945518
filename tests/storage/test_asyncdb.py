"""The API's async PostgreSQL pool (``storage.asyncdb``, asyncpg) on the real server:
statements with named placeholders, connections reused on their event loop and closed
when it ends, an outage raised as one of ``UNAVAILABLE``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from storage.asyncdb import UNAVAILABLE, AsyncDatabase
from storage.embedded import free_port
from storage.statements import Sql
from tests.conftest import DB_KIND

ON_POSTGRES = pytest.mark.skipif(
    DB_KIND != "postgresql", reason="the async pool serves PostgreSQL (SQLite: the sync path)"
)


def test_named_placeholders_become_positional_in_order_of_first_use() -> None:
    sql = Sql("SELECT %(b)s, %(a)s WHERE x = %(b)s AND y > %(c)s")
    assert sql.text == "SELECT $1, $2 WHERE x = $1 AND y > $3"
    assert sql.args({"a": 1, "b": 2, "c": 3, "unused": 4}) == [2, 1, 3]


def _backends(url: str) -> int:
    """Connections to this test's database other than the counting one."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


@ON_POSTGRES
def test_values_round_trip_and_connections_close_with_their_loop(db: str) -> None:
    pool = AsyncDatabase(db, size=2)
    moment = datetime(2026, 11, 24, 1, 2, 3, tzinfo=UTC)
    query = Sql(
        "SELECT %(moment)s::timestamptz AS moment, %(doc)s::json AS doc, "
        "%(names)s::text[] AS names, %(nothing)s::text AS nothing"
    )
    params = {"moment": moment, "doc": {"số": "một"}, "names": ["a", None], "nothing": None}

    async def reads() -> list[dict[str, object] | None]:
        # concurrent reads share the loop's two connections
        return list(await asyncio.gather(*(pool.fetch_one(query, params) for _ in range(6))))

    # Each asyncio.run is a loop of its own (as each request of Starlette's TestClient):
    # its connections must be closed as it ends, not left to pile up on the server.
    for _ in range(5):
        rows = asyncio.run(reads())
        assert (
            rows
            == [{"moment": moment, "doc": {"số": "một"}, "names": ["a", None], "nothing": None}] * 6
        )
        assert rows[0] is not None and rows[0]["moment"].utcoffset().total_seconds() == 0
        assert _backends(db) == 0

    # within one loop they are kept and reused: at most the pool's size
    async def many() -> int:
        for _ in range(3):
            await asyncio.gather(*(pool.fetch_all(query, params) for _ in range(8)))
        return await asyncio.to_thread(_backends, db)

    assert asyncio.run(many()) == 2
    assert _backends(db) == 0


def test_an_unreachable_database_raises_one_of_unavailable() -> None:
    pool = AsyncDatabase(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none", size=1)
    with pytest.raises(UNAVAILABLE):
        asyncio.run(pool.fetch_one(Sql("SELECT 1"), {}))
