"""Review labels, audit trail, consent grants, vault fields of e-copies, webhooks.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_anchors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("token", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("actor_id", sa.String(length=32), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=True),
        sa.Column("office", sa.String(length=100), nullable=True),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("citizen_id", sa.String(length=32), nullable=True),
        sa.Column("document_id", sa.String(length=32), nullable=True),
        sa.Column("purpose", sa.String(length=300), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("hash"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_events_citizen_id"), ["citizen_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_audit_events_document_id"), ["document_id"], unique=False
        )

    op.create_table(
        "consent_grants",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("citizen_id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("doc_types", sa.JSON(), nullable=False),
        sa.Column("purpose", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["citizens.id"],
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["api_keys.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("consent_grants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_grants_citizen_id"), ["citizen_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_consent_grants_client_id"), ["client_id"], unique=False
        )

    op.create_table(
        "subscribers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["api_keys.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "review_labels",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("document_id", sa.String(length=32), nullable=False),
        sa.Column("doc_type", sa.String(length=50), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("proposed", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("corrected", sa.Boolean(), nullable=False),
        sa.Column("labelled_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
        ),
        sa.ForeignKeyConstraint(
            ["labelled_by"],
            ["api_keys.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("review_labels", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_review_labels_document_id"), ["document_id"], unique=False
        )

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscriber_id", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=30), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_deliveries_due", ["status", "next_attempt_at"], unique=False
        )

    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("office", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("uploaded_by", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("doc_type", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("doc_number", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("model_version", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("reviewed_by", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("search_text", sa.Text(), nullable=True))
        batch_op.create_index("ix_documents_office_state", ["office", "state"], unique=False)
        batch_op.create_index("ix_documents_type_number", ["doc_type", "doc_number"], unique=False)
        batch_op.create_foreign_key("fk_documents_uploaded_by", "api_keys", ["uploaded_by"], ["id"])
        batch_op.create_foreign_key("fk_documents_reviewed_by", "api_keys", ["reviewed_by"], ["id"])

    with op.batch_alter_table("ecopies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("citizen_id", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("fields", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.add_column(sa.Column("doc_number", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("superseded_by", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("revocation_reason", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "updated_at",
                sa.DateTime(timezone=True),
                nullable=False,
                server_default=sa.func.now(),
            )
        )
        batch_op.create_index("ix_ecopies_citizen_status", ["citizen_id", "status"], unique=False)
        batch_op.create_foreign_key("fk_ecopies_citizen_id", "citizens", ["citizen_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("ecopies", schema=None) as batch_op:
        batch_op.drop_constraint("fk_ecopies_citizen_id", type_="foreignkey")
        batch_op.drop_index("ix_ecopies_citizen_status")
        batch_op.drop_column("updated_at")
        batch_op.drop_column("revocation_reason")
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("superseded_by")
        batch_op.drop_column("valid_until")
        batch_op.drop_column("doc_number")
        batch_op.drop_column("fields")
        batch_op.drop_column("citizen_id")

    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_constraint("fk_documents_reviewed_by", type_="foreignkey")
        batch_op.drop_constraint("fk_documents_uploaded_by", type_="foreignkey")
        batch_op.drop_index("ix_documents_type_number")
        batch_op.drop_index("ix_documents_office_state")
        batch_op.drop_column("search_text")
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("reviewed_by")
        batch_op.drop_column("model_version")
        batch_op.drop_column("doc_number")
        batch_op.drop_column("doc_type")
        batch_op.drop_column("uploaded_by")
        batch_op.drop_column("office")

    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_due")

    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("review_labels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_labels_document_id"))

    op.drop_table("review_labels")
    op.drop_table("subscribers")
    with op.batch_alter_table("consent_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_grants_client_id"))
        batch_op.drop_index(batch_op.f("ix_consent_grants_citizen_id"))

    op.drop_table("consent_grants")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_document_id"))
        batch_op.drop_index(batch_op.f("ix_audit_events_citizen_id"))

    op.drop_table("audit_events")
    op.drop_table("audit_anchors")
