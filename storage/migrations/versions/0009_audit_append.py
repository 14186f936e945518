"""Audit events appended by PostgreSQL in one statement (hash format 2).

Before, the API took the chain's advisory lock, read the head, inserted the event and
only then committed, several round trips later: the lock was held across Python
thread switches, and every audited read queued behind it (bench/vault.py: ~80 reads/s
on 2 cores whatever the number of workers). Now ``sohoa_audit_append(...)`` locks,
reads the head, links and inserts inside the server; an audited read runs it as a
transaction of its own (autocommit), so the lock is held for microseconds.

The server can only hash what it is given, so the link changes (``hash_version`` 2):
``hash = sha256(prev_hash "\\n" seq "\\n" content_digest)``, where ``content_digest`` is
the SHA-256 of the event's canonical JSON without ``seq`` (computed by the API, checked
by ``sohoa audit verify``, which recomputes it from the row). Events written before
this migration keep version 1 and are verified as before.

SQLite has no server-side functions here: the API computes format 2 itself under the
database's write lock.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: The advisory lock key of the chain (``digitizer.services.audit.CHAIN_LOCK``).
_FUNCTION = r"""
DO $$
DECLARE
    here text := current_schema();
BEGIN
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION %1$I.sohoa_audit_append(
    p_at timestamptz, p_request_id text, p_actor_id text, p_actor_name text, p_role text,
    p_office text, p_action text, p_citizen_id text, p_document_id text, p_purpose text,
    p_detail json, p_digest text, OUT new_seq bigint, OUT new_hash text)
LANGUAGE plpgsql VOLATILE
SET search_path = %1$I, pg_catalog
AS $body$
DECLARE
    head_seq bigint;
    head_hash text;
BEGIN
    -- Held until the transaction ends; every statement below reads a fresh snapshot
    -- (READ COMMITTED, VOLATILE), so the head seen is the last committed one.
    PERFORM pg_advisory_xact_lock(7310001);
    SELECT e.seq, e.hash INTO head_seq, head_hash
        FROM audit_events e ORDER BY e.seq DESC LIMIT 1;
    IF head_seq IS NULL THEN
        head_seq := 0;
        head_hash := repeat('0', 64);
    END IF;
    new_seq := head_seq + 1;
    new_hash := encode(
        sha256(convert_to(head_hash || E'\n' || new_seq::text || E'\n' || p_digest, 'UTF8')),
        'hex');
    INSERT INTO audit_events (seq, at, request_id, actor_id, actor_name, role, office,
                              action, citizen_id, document_id, purpose, detail,
                              prev_hash, hash, hash_version)
    VALUES (new_seq, p_at, p_request_id, p_actor_id, p_actor_name, p_role, p_office,
            p_action, p_citizen_id, p_document_id, p_purpose, p_detail,
            head_hash, new_hash, 2);
END
$body$
$f$, here);
END
$$;
"""


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        # Rows already there were hashed with format 1.
        batch_op.add_column(
            sa.Column("hash_version", sa.SmallInteger(), nullable=False, server_default="1")
        )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("hash_version", server_default="2")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS sohoa_audit_append(timestamptz, text, text, text, text, "
            "text, text, text, text, text, json, text)"
        )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("hash_version")
