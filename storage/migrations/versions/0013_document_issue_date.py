"""Documents' own issue date, for clerks' search by when a paper was issued.

Until now a search's date range meant the digitization date (``created_at``). Clerks
also look for papers by the date they were issued ("giấy khai sinh cấp năm 2019"):
``documents.issued_on`` holds the document's ``issue_date`` field as reviewed (else as
corrected, else as extracted), kept up to date by processing and review like
``doc_number``, indexed with the office (every search is within one office). Existing
documents are filled in from their stored results.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _issue_date(results: Any) -> date | None:
    """The effective ``issue_date`` of stored results (reviewed > corrected > extracted)."""
    if isinstance(results, str):
        results = json.loads(results)
    if not isinstance(results, dict):
        return None
    value: Any = None
    reviewed = (results.get("reviewed") or {}).get("fields") or {}
    corrected = (results.get("corrections") or {}).get("fields") or {}
    if "issue_date" in reviewed:
        value = reviewed["issue_date"]
    elif "issue_date" in corrected:
        value = corrected["issue_date"]
    else:
        value = ((results.get("fields") or {}).get("issue_date") or {}).get("value")
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def upgrade() -> None:
    # Plain ALTER TABLE (SQLite has ADD and DROP COLUMN): a batch copy of ``documents``
    # would trip over its expression index and the foreign keys pointing at it.
    op.add_column("documents", sa.Column("issued_on", sa.Date(), nullable=True))
    op.create_index("ix_documents_office_issued", "documents", ["office", "issued_on"])
    documents = sa.table(
        "documents",
        sa.column("id", sa.String()),
        sa.column("results", sa.JSON()),
        sa.column("issued_on", sa.Date()),
    )
    bind = op.get_bind()
    last = ""
    while True:  # in pages by id: a large archive's results are not all held at once
        rows = bind.execute(
            sa.select(documents.c.id, documents.c.results)
            .where(documents.c.id > last)
            .order_by(documents.c.id)
            .limit(1000)
        ).all()
        if not rows:
            break
        last = rows[-1][0]
        for doc_id, results in rows:
            issued = _issue_date(results)
            if issued is not None:
                bind.execute(
                    documents.update().where(documents.c.id == doc_id).values(issued_on=issued)
                )


def downgrade() -> None:
    op.drop_index("ix_documents_office_issued", table_name="documents")
    op.drop_column("documents", "issued_on")
