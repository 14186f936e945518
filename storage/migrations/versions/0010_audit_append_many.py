"""Audit events appended in batches by one server statement.

The API group-commits concurrent reads' events (``audit.ReadAuditBatcher``): one
transaction per batch. Until now each event of a batch was still a statement of its own
(``sohoa_audit_append`` per event: a round trip, a plan, a head lookup each).
``sohoa_audit_append_many(...)`` takes the batch as arrays (one element per event, in
order), takes the chain's lock once, reads the head once, links the events in a loop
and inserts them with one INSERT. The links are the same as ``sohoa_audit_append``'s
(hash format 2), so ``sohoa audit verify`` needs no change.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: The advisory lock key of the chain (``digitizer.services.audit.CHAIN_LOCK``).
_FUNCTION = r"""
DO $$
DECLARE
    here text := current_schema();
BEGIN
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION %1$I.sohoa_audit_append_many(
    p_at timestamptz[], p_request_id text[], p_actor_id text[], p_actor_name text[],
    p_role text[], p_office text[], p_action text[], p_citizen_id text[],
    p_document_id text[], p_purpose text[], p_detail text[], p_digest text[])
RETURNS TABLE (new_seq bigint, new_hash text)
LANGUAGE plpgsql VOLATILE
SET search_path = %1$I, pg_catalog
AS $body$
DECLARE
    n integer := coalesce(array_length(p_digest, 1), 0);
    head_seq bigint;
    head_hash text;
    seqs bigint[] := '{}';
    prevs text[] := '{}';
    hashes text[] := '{}';
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(7310001);
    SELECT e.seq, e.hash INTO head_seq, head_hash
        FROM audit_events e ORDER BY e.seq DESC LIMIT 1;
    IF head_seq IS NULL THEN
        head_seq := 0;
        head_hash := repeat('0', 64);
    END IF;
    FOR i IN 1..n LOOP
        prevs[i] := head_hash;
        head_seq := head_seq + 1;
        head_hash := encode(
            sha256(convert_to(head_hash || E'\n' || head_seq::text || E'\n' || p_digest[i],
                              'UTF8')),
            'hex');
        seqs[i] := head_seq;
        hashes[i] := head_hash;
    END LOOP;
    INSERT INTO audit_events (seq, at, request_id, actor_id, actor_name, role, office,
                              action, citizen_id, document_id, purpose, detail,
                              prev_hash, hash, hash_version)
    SELECT t.s, t.a, t.r, t.ai, t.an, t.ro, t.o, t.ac, t.c, t.d, t.pu, t.de::json,
           t.pr, t.h, 2
    FROM unnest(seqs, p_at, p_request_id, p_actor_id, p_actor_name, p_role, p_office,
                p_action, p_citizen_id, p_document_id, p_purpose, p_detail, prevs, hashes)
         AS t(s, a, r, ai, an, ro, o, ac, c, d, pu, de, pr, h);
    RETURN QUERY SELECT u.s, u.h FROM unnest(seqs, hashes) AS u(s, h);
END
$body$
$f$, here);
END
$$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS sohoa_audit_append_many(timestamptz[], text[], text[], "
            "text[], text[], text[], text[], text[], text[], text[], text[], text[])"
        )
