"""Shared fixtures: real Temporal servers (time-skipping and dev), free ports, the SMTP and SMS sinks."""

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from ordertrack.mail.sink import MailSink
from ordertrack.names import SearchAttributes as sa
from ordertrack.serving import serve_app
from ordertrack.sms.sink import SmsSink
from ordertrack.store import Store, migrate
from starter.client import register_search_attributes
from starter.devserver import temporal_cli, time_skipping_server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh time-skipping server per test: one test's leftovers cannot hold another's clock."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=time_skipping_server(),
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (in memory) with the contract's search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_cli(),
        search_attributes=sa.ALL,
        port=free_port(),
    )
    yield env
    await env.shutdown()


@pytest.fixture
def mail_sink(tmp_path: Path) -> Iterator[MailSink]:
    sink = MailSink(tmp_path / "mail", port=free_port())
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def sms_sink(tmp_path: Path) -> Iterator[SmsSink]:
    """The local Twilio-compatible sink, with its development credentials (`DEV_ACCOUNT_SID`, ...)."""
    with SmsSink(tmp_path / "sms", port=free_port()) as sink:
        yield sink


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated read model in a fresh SQLite file."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'store' / 'ordertrack.db'}"
    await migrate(database_url)
    store = Store.from_url(database_url)
    yield store
    await store.close()


PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_UNREACHABLE = f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}"


class PostgresDatabases:
    """Throwaway databases on the local server, created on demand and dropped when the session ends."""

    def __init__(self) -> None:
        self._admin: asyncpg.Connection | None = None
        self._unreachable = False
        self._names: list[str] = []

    async def create(self) -> str:
        if self._unreachable:
            pytest.skip(PG_UNREACHABLE)
        if self._admin is None:
            try:
                self._admin = await asyncpg.connect(
                    host=PG_HOST, port=PG_PORT, user="postgres", database="test", timeout=3
                )
            except (OSError, TimeoutError, asyncpg.PostgresError):
                self._unreachable = True
                pytest.skip(PG_UNREACHABLE)
        name = f"ordertrack_test_{secrets.token_hex(6)}"
        await self._admin.execute(f'CREATE DATABASE "{name}"')
        self._names.append(name)
        return f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"

    async def drop_all(self) -> None:
        if self._admin is not None:
            for name in self._names:
                await self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await self._admin.close()


@pytest.fixture(scope="session")
async def postgres() -> AsyncIterator[PostgresDatabases]:
    databases = PostgresDatabases()
    yield databases
    await databases.drop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path, postgres: PostgresDatabases) -> str:
    """A fresh, not yet migrated database; the SQLite file's directory does not exist yet."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'var' / 'ordertrack.db'}"
    return await postgres.create()


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app (a fake carrier, a receiver) on a free loopback port for the block;
    yields its base URL once it answers."""
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(serve_app(app, "127.0.0.1", port, stop=stop))
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(200):
            if task.done():
                task.result()  # it failed to start: say why
            try:
                await client.get("/")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.025)
        else:
            raise RuntimeError(f"{url} did not start")
    try:
        yield url
    finally:
        stop.set()
        await task
