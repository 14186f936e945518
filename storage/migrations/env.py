"""Alembic environment: the URL comes from the caller (``storage.migrate``)."""

from __future__ import annotations

from alembic import context

from storage.db import Base, get_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "storage.migrate sets sqlalchemy.url"


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    with get_engine(url).connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
