"""Durable processing: heartbeats, failure history, near-duplicate fingerprints.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("failures", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(sa.Column("fingerprint", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("duplicate_of", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(
            "fk_documents_duplicate_of", "documents", ["duplicate_of"], ["id"]
        )
        batch_op.create_index("ix_documents_citizen", ["citizen_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index("ix_documents_citizen")
        batch_op.drop_constraint("fk_documents_duplicate_of", type_="foreignkey")
        batch_op.drop_column("duplicate_of")
        batch_op.drop_column("fingerprint")
        batch_op.drop_column("failures")
        batch_op.drop_column("heartbeat_at")
