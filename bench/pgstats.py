"""What PostgreSQL's statistics say about a benchmark's run."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

#: The tables whose rows were most read by sequential scans (since the database was made).
_MOST_SCANNED = text(
    "SELECT relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0) AS idx_scan "
    "FROM pg_stat_user_tables ORDER BY seq_tup_read DESC, relname LIMIT :n"
)


def most_scanned_tables(conn: Connection, n: int = 3) -> dict[str, dict[str, int]]:
    """The ``n`` tables most read by sequential scans, with their scan counts.

    A hot table scanned sequentially is a plan gone wrong: a plan kept from when the
    table was nearly empty made ``audit_events`` cost ~1 ms a read (migration 0014).
    """
    rows: Any = conn.execute(_MOST_SCANNED, {"n": n}).all()
    return {
        row.relname: {
            "seq_scans": row.seq_scan,
            "seq_rows_read": row.seq_tup_read,
            "index_scans": row.idx_scan,
        }
        for row in rows
    }
