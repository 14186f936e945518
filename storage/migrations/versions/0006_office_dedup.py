"""Documents deduplicate per office: unique (sha256, office) instead of unique sha256.

The same bytes uploaded by two offices are two documents, each visible only to
its own office (an office never receives another office's document, nor learns
that it exists). ``coalesce`` makes office-less documents deduplicate too.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The unique constraint of 0001 has no name; this convention names it on both
# PostgreSQL (documents_sha256_key) and SQLite (batch mode rebuilds the table).
_NAMING = {"uq": "%(table_name)s_%(column_0_name)s_key"}


def upgrade() -> None:
    with op.batch_alter_table("documents", naming_convention=_NAMING) as batch_op:
        batch_op.drop_constraint("documents_sha256_key", type_="unique")
    op.create_index(
        "ux_documents_sha256_office",
        "documents",
        [sa.text("sha256"), sa.text("coalesce(office, '')")],
        unique=True,
    )


def downgrade() -> None:
    # Fails when two offices hold the same bytes (their documents must be merged first).
    op.drop_index("ux_documents_sha256_office", table_name="documents")
    with op.batch_alter_table("documents", naming_convention=_NAMING) as batch_op:
        batch_op.create_unique_constraint("documents_sha256_key", ["sha256"])
