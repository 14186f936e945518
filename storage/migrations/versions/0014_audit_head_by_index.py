"""The audit appends read the chain's head through its index, whatever the statistics.

``sohoa_audit_append`` and ``sohoa_audit_append_many`` read the head with
``ORDER BY seq DESC LIMIT 1``. PL/pgSQL plans that query once per connection and keeps
the plan until the table's statistics change. When autovacuum first analyzes a new
``audit_events`` (a few dozen rows, one page), a sequential scan plus a sort is the
cheapest plan, so every connection that plans then keeps scanning the whole table on
every append. The next analyze can be a minute or more away, while the chain grows by
hundreds of events a second. ``bench/vault.py`` on a fresh database showed it: half
of the appends were sequential scans (3,213 scans, 27 million rows read in a 10 s run),
and PostgreSQL spent about 1 ms of CPU per audited read instead of about 0.2 ms.

Turning sequential scans off inside the two functions leaves the planner only the
primary key's backward index scan: one index probe per append at any size. Nothing
else in the functions scans a table.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_SIGNATURES = (
    "sohoa_audit_append(timestamptz, text, text, text, text, text, text, text, text, "
    "text, json, text)",
    "sohoa_audit_append_many(timestamptz[], text[], text[], text[], text[], text[], "
    "text[], text[], text[], text[], text[], text[])",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for signature in _SIGNATURES:
            op.execute(f"ALTER FUNCTION {signature} SET enable_seqscan = off")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for signature in _SIGNATURES:
            op.execute(f"ALTER FUNCTION {signature} RESET enable_seqscan")
