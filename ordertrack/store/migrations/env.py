"""Alembic environment: migrations run on the app's async engine, on SQLite or PostgreSQL.

The database URL comes from `migrate()` or else from the settings (`ORDERTRACK_DATABASE_URL`).
All pending revisions run in one transaction that first takes a lock, so processes starting
together migrate one after the other and the later ones find nothing to do.
"""

import asyncio
import logging
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, text

from ordertrack.settings import get_settings
from ordertrack.store.engine import BEGIN_IMMEDIATE, create_engine
from ordertrack.store.tables import metadata

MIGRATION_LOCK_ID = 0x6F72_6465_7274_726B  # "ordertrk": the pg_advisory_xact_lock key

config = context.config

# The `alembic` CLI takes its logging from alembic.ini; an application calling migrate() keeps its own.
if config.config_file_name is not None and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    return config.attributes.get("database_url") or get_settings().database_url


def _run_offline() -> None:
    """`alembic upgrade head --sql`: print the SQL for a DBA instead of running it."""
    context.configure(url=_database_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    )
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    context.run_migrations()


async def _run_online() -> None:
    engine = create_engine(_database_url())
    try:
        async with engine.connect() as connection:
            # On SQLite, BEGIN IMMEDIATE takes the write lock up front: the same serialization.
            await connection.execution_options(**{BEGIN_IMMEDIATE: True})
            async with connection.begin():
                await connection.run_sync(_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    _run_offline()
else:
    asyncio.run(_run_online())
