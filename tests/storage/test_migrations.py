"""Alembic migrations: the schema they build is the schema the models describe."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from storage import migrate
from storage.db import Base, get_engine


@pytest.mark.smoke
def test_migrated_schema_matches_models(db: str) -> None:
    with get_engine(db).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


@pytest.mark.smoke
def test_upgrade_is_idempotent_and_downgrade_works(db: str) -> None:
    migrate.upgrade(db)  # already at head: a no-op
    from alembic import command

    command.downgrade(migrate.alembic_config(db), "base")
    tables = set(inspect(get_engine(db)).get_table_names())
    assert "documents" not in tables
    migrate.upgrade(db)
    assert {"documents", "batches", "batch_items", "outbox", "citizens", "api_keys"} <= set(
        inspect(get_engine(db)).get_table_names()
    )
