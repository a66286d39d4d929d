"""Async engines for SQLite (development: one file shared by worker, server and CLI) and PostgreSQL."""

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0

BEGIN_IMMEDIATE = "ordertrack_begin_immediate"
"""Execution option: on SQLite, take the write lock as the transaction begins (serializes migrations)."""


def create_engine(database_url: str) -> AsyncEngine:
    """An engine for `database_url`; SQLite gets WAL, a busy timeout and real transactions."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
    event.listen(engine.sync_engine, "connect", _configure_sqlite)
    event.listen(engine.sync_engine, "begin", _begin_sqlite)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (results are handed out as frozen models)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers work while one process writes; the driver's own BEGIN handling is turned off
    # (it skips BEGIN before SELECT and DDL) so that `_begin_sqlite` makes every transaction real.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
    cursor.close()


def _begin_sqlite(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(BEGIN_IMMEDIATE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
