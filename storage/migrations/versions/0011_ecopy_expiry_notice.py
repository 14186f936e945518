"""When subscribers were told that an e-copy's validity ended.

An e-copy's ``expired`` status is derived from ``valid_until`` and never stored, so no
change of the row marks the moment. The workers' maintenance tick finds valid e-copies
past ``valid_until`` that have not been announced (``expiry_notified_at`` empty, a
partial index over exactly those), queues the ``expired`` webhook for their subscribers
and records the time. E-copies already past their validity when this migration runs are
marked as announced: the feature announces expiries from now on, not a backlog.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_DUE = sa.text("expiry_notified_at IS NULL AND valid_until IS NOT NULL")


def upgrade() -> None:
    op.add_column(
        "ecopies", sa.Column("expiry_notified_at", sa.DateTime(timezone=True), nullable=True)
    )
    ecopies = sa.table(
        "ecopies",
        sa.column("valid_until", sa.DateTime(timezone=True)),
        sa.column("expiry_notified_at", sa.DateTime(timezone=True)),
    )
    now = sa.func.now() if op.get_bind().dialect.name == "postgresql" else sa.func.datetime("now")
    op.execute(
        ecopies.update()
        .where(ecopies.c.valid_until.is_not(None), ecopies.c.valid_until <= now)
        .values(expiry_notified_at=ecopies.c.valid_until)
    )
    op.create_index(
        "ix_ecopies_expiry_due",
        "ecopies",
        ["valid_until"],
        postgresql_where=_DUE,
        sqlite_where=_DUE,
    )


def downgrade() -> None:
    op.drop_index("ix_ecopies_expiry_due", table_name="ecopies")
    op.drop_column("ecopies", "expiry_notified_at")
