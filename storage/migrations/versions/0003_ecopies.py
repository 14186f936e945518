"""Signed e-copies with their public verification codes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ecopies",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("document_id", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("office_code", sa.String(length=100), nullable=False),
        sa.Column("issuer", sa.String(length=300), nullable=False),
        sa.Column("doc_type", sa.String(length=50), nullable=True),
        sa.Column("object_key", sa.String(length=300), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("approved_by", sa.String(length=32), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["approved_by"], ["api_keys.id"]),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    with op.batch_alter_table("ecopies", schema=None) as batch_op:
        batch_op.create_index("ix_ecopies_sha256", ["sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ecopies", schema=None) as batch_op:
        batch_op.drop_index("ix_ecopies_sha256")
    op.drop_table("ecopies")
