"""Clerks' full-text search over the recognised text (PostgreSQL).

Accent-insensitive: ``sohoa_search_vector(text)`` folds diacritics with the
``unaccent`` extension (Vietnamese "Nguyễn Văn Đức" matches "nguyen van duc")
and indexes words with the ``simple`` configuration (no stemming: Vietnamese has
none); ``sohoa_search_query(text)`` turns what a clerk typed into a query the
same way (web-search syntax: words, "quoted phrases", -excluded). A GIN index
over the vector serves the search. ``unaccent`` is a trusted extension
(PostgreSQL 13+): a database owner may create it.

SQLite has no full-text index here: the search falls back to ``LIKE`` over
``documents.search_text`` (see ``digitizer.services.search``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# unaccent() is only STABLE (it reads a dictionary named at run time); wrapped with the
# dictionary named explicitly it is safe to declare IMMUTABLE, which an index needs.
# Every name inside is schema-qualified when the functions are created, so they work
# whatever the search_path of later sessions (pg_restore runs with an empty one).
_FUNCTIONS = r"""
DO $$
DECLARE
    ext text := (
        SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname = 'unaccent'
    );
    here text := current_schema();
BEGIN
    EXECUTE format(
        'CREATE OR REPLACE FUNCTION %I.sohoa_unaccent(text) RETURNS text '
        'LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT '
        'AS $f$ SELECT %I.unaccent(%L::regdictionary, $1) $f$',
        here, ext, ext || '.unaccent'
    );
    EXECUTE format(
        'CREATE OR REPLACE FUNCTION %I.sohoa_search_vector(text) RETURNS tsvector '
        'LANGUAGE sql IMMUTABLE PARALLEL SAFE '
        'AS $f$ SELECT pg_catalog.to_tsvector(''simple''::regconfig, '
        '%I.sohoa_unaccent(coalesce($1, ''''))) $f$',
        here, here
    );
    EXECUTE format(
        'CREATE OR REPLACE FUNCTION %I.sohoa_search_query(text) RETURNS tsquery '
        'LANGUAGE sql IMMUTABLE PARALLEL SAFE '
        'AS $f$ SELECT pg_catalog.websearch_to_tsquery(''simple''::regconfig, '
        '%I.sohoa_unaccent(coalesce($1, ''''))) $f$',
        here, here
    );
END
$$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute(_FUNCTIONS)
    op.execute(
        "CREATE INDEX ix_documents_search ON documents USING gin (sohoa_search_vector(search_text))"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_documents_search")
    op.execute("DROP FUNCTION IF EXISTS sohoa_search_query(text)")
    op.execute("DROP FUNCTION IF EXISTS sohoa_search_vector(text)")
    op.execute("DROP FUNCTION IF EXISTS sohoa_unaccent(text)")
