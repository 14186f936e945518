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


@pytest.mark.smoke
def test_expiry_notice_migration_marks_only_what_had_already_expired(db: str) -> None:
    """0011: e-copies already past ``valid_until`` count as announced (no backlog of
    ``expired`` webhooks); current ones and those without an end wait for the tick."""
    from datetime import timedelta

    from alembic import command
    from sqlalchemy import text

    from storage.db import session_scope, utcnow
    from tests.digitizer import rows

    ids = {}
    with session_scope(db) as session:
        for name, until in (
            ("ended", utcnow() - timedelta(days=1)),
            ("current", utcnow() + timedelta(days=1)),
            ("forever", None),
        ):
            ecopy = rows.ecopy(session, rows.document(session, citizen_id=None))
            ecopy.valid_until = until
            ids[ecopy.id] = name
    command.downgrade(migrate.alembic_config(db), "0010")  # the rows as 0010 knew them
    migrate.upgrade(db)
    with get_engine(db).connect() as conn:
        marked = conn.execute(text("SELECT id, expiry_notified_at FROM ecopies")).all()
    assert {ids[i]: at is not None for i, at in marked} == {
        "ended": True,
        "current": False,
        "forever": False,
    }


@pytest.mark.smoke
def test_issue_date_migration_fills_in_from_stored_results(db: str) -> None:
    """0013: ``issued_on`` of existing documents from their results (reviewed, else
    corrected, else extracted; a value that is not a date gives none)."""
    from alembic import command
    from sqlalchemy import text

    from storage.db import session_scope
    from tests.digitizer import rows

    results = {
        "extracted": {"fields": {"issue_date": {"value": "2019-05-02"}}},
        "corrected": {
            "fields": {"issue_date": {"value": "2019-05-02"}},
            "corrections": {"fields": {"issue_date": "2020-01-31"}},
        },
        "reviewed": {
            "fields": {"issue_date": {"value": "2019-05-02"}},
            "corrections": {"fields": {"issue_date": "2020-01-31"}},
            "reviewed": {"fields": {"issue_date": "2021-07-15"}},
        },
        "not a date": {"fields": {"issue_date": {"value": "ngày 5 tháng 3"}}},
        "none": {"fields": {}},
    }
    ids = {}
    with session_scope(db) as session:
        for name, stored in results.items():
            doc = rows.document(session, citizen_id=None)
            doc.results = stored
            ids[doc.id] = name
    command.downgrade(migrate.alembic_config(db), "0012")
    migrate.upgrade(db)
    with get_engine(db).connect() as conn:
        found = conn.execute(text("SELECT id, issued_on FROM documents")).all()
    assert {ids[i]: str(on)[:10] if on else None for i, on in found} == {
        "extracted": "2019-05-02",
        "corrected": "2020-01-31",
        "reviewed": "2021-07-15",
        "not a date": None,
        "none": None,
    }
