"""Shared fixtures: real Temporal servers (time-skipping and dev), free ports, the SMTP and SMS sinks."""

import asyncio
import ipaddress
import itertools
import os
import random
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from ordertrack.mail.sink import MailSink
from ordertrack.names import SearchAttributes as sa
from ordertrack.serving import serve_app
from ordertrack.sms.sink import SmsSink
from ordertrack.store import Store, migrate
from starter.client import register_search_attributes
from starter.devserver import temporal_cli, time_skipping_server

T = TypeVar("T")

# The caller's environment must not steer the tests: whoever runs them may have exported settings
# (a quiet-hours window, a carrier URL, a database) or a Temporal env-config profile. Each test
# builds the settings it needs; the e2e stack hands its processes an explicit environment.
HERMETIC_PREFIXES = ("ORDERTRACK_", "TEMPORAL_")


def pytest_configure(config: pytest.Config) -> None:
    for name in [name for name in os.environ if name.startswith(HERMETIC_PREFIXES)]:
        del os.environ[name]


async def eventually(check: Callable[[], Awaitable[T]], what: str, within: float = 30.0) -> T:
    """`check()`'s first truthy answer, asked every 50 ms; fails naming `what` after `within` seconds.

    For outcomes that cannot be skipped (a message sent, a status reached on the timeline), never for
    a transient state; the bound is generous because the machine may be loaded."""
    deadline = asyncio.get_running_loop().time() + within
    while not (answer := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {within:.0f} s")
        await asyncio.sleep(0.05)
    return answer


# Test servers listen below the kernel's ephemeral range (32768-60999 on Linux), where outgoing
# connections take their ports: one of those cannot grab a port between `free_port()` and the
# server's bind. Each pytest-xdist worker draws from its own block, so workers never collide.
PORT_BLOCK = 2000
FIRST_PORT = 12000


def _port_candidates() -> Iterator[int]:
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    block = FIRST_PORT + (worker % 10) * PORT_BLOCK
    start = random.randrange(PORT_BLOCK)  # another test run on this machine starts elsewhere
    return (block + (start + step) % PORT_BLOCK for step in itertools.count())


_CANDIDATES = _port_candidates()


def free_port() -> int:
    """A loopback port that nothing listens on now (see `FIRST_PORT`)."""
    for port in _CANDIDATES:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("unreachable: the candidates never end")


# Where every time-skipping test's clock starts: the same hour of the day whenever the suite runs,
# so no test depends on the hour it happens to run at (a test about another hour moves on from here).
TEST_CLOCK_STARTS_AT = time(9, 0)  # UTC


async def skip_to(env: WorkflowEnvironment, at: time, zone: str = "UTC") -> datetime:
    """Move a time-skipping server's clock on to the next `at` o'clock in `zone`; returns that moment."""
    now = await env.get_current_time()
    local = now.astimezone(ZoneInfo(zone))
    target = datetime.combine(local.date(), at, local.tzinfo)
    if target <= local:
        target = datetime.combine(local.date() + timedelta(days=1), at, local.tzinfo)
    await env.sleep(target - now)
    return await env.get_current_time()


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh time-skipping server per test (one test's leftovers cannot hold another's clock), its
    clock moved on to `TEST_CLOCK_STARTS_AT`."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=time_skipping_server(),
        port=free_port(),
    )
    await register_search_attributes(env.client)
    await skip_to(env, TEST_CLOCK_STARTS_AT)
    yield env
    await env.shutdown()


async def start_dev_server(port: int) -> WorkflowEnvironment:
    """A real Temporal dev server (in memory) on `port`, with the contract's search attributes."""
    return await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_cli(),
        search_attributes=sa.ALL,
        port=port,
    )


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (in memory) with the contract's search attributes registered."""
    env = await start_dev_server(free_port())
    yield env
    await env.shutdown()


def self_signed_certificate(host: str = "127.0.0.1") -> tuple[bytes, bytes]:
    """A self-signed certificate for the IP address `host` (its own CA), and its key, as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


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


async def until_listening(url: str, task: asyncio.Task[None], path: str = "/") -> None:
    """Wait until the server `task` runs answers at `url` (any status); raise its error if it failed."""
    async with httpx.AsyncClient(base_url=url) as client:

        async def answers() -> bool:
            if task.done():
                task.result()  # it failed to start: say why
            try:
                await client.get(path)
            except httpx.TransportError:
                return False
            return True

        await eventually(answers, f"{url} answering")


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app (a fake carrier, a receiver) on a free loopback port for the block;
    yields its base URL once it answers."""
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(serve_app(app, "127.0.0.1", port, stop=stop))
    url = f"http://127.0.0.1:{port}"
    await until_listening(url, task)
    try:
        yield url
    finally:
        stop.set()
        await task
