"""A subscriber's previous webhook secret, kept for a grace period after a rotation.

``POST /v1/subscribers/{id}/secret`` gives a subscriber a new secret. Until
``previous_secret_until`` every delivery carries two signatures (the new secret's and
the old one's, comma-separated in ``X-Sohoa-Signature``), so the receiver can switch to
the new secret when it is ready, without a window in which deliveries fail.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "subscribers", sa.Column("previous_secret_encrypted", sa.LargeBinary(), nullable=True)
    )
    op.add_column(
        "subscribers", sa.Column("previous_secret_until", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("subscribers", "previous_secret_until")
    op.drop_column("subscribers", "previous_secret_encrypted")
