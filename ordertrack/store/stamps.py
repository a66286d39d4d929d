"""The read path's one lookup per request: an order's stamp, by tracking token or by order id.

A customer opens the tracking page about 60 times per order while the order changes about a dozen
times, so what the page and the API serve is rendered once per change and kept (see
`ordertrack.web.readcache`); each request only asks the database whether the order changed. The
stamp is that question's answer: one indexed lookup returning what the served bytes depend on and
that a write can change (the version of the view, the version of the address, how many timeline
entries there are: an entry of an older change may land after a newer one, leaving the version
alone) and what the order is shown in (its locale and time zone).

Profiling `GET /t/{token}` showed most of its time going to the driver's hand-offs rather than to
the database: through SQLAlchemy's async engine on aiosqlite a read is a pool checkout, a `BEGIN`,
the query and a rollback, each a trip to the connection's thread and back to the event loop. So
the stamp is read on the raw driver, with the query SQLAlchemy compiles for the engine's dialect:

- SQLite: the standard library's `sqlite3`, called in the event loop's thread. An indexed read of
  a local file takes microseconds, less than one hand-off. The connection never waits for a lock
  (WAL readers do not, barring a rare checkpoint or recovery); if it ever meets one, the read goes
  to a thread on a connection that waits.
- PostgreSQL: a small asyncpg pool of its own, the statement prepared once per connection, and
  the stamps of concurrent requests read together: requests that arrive while every connection is
  busy wait for the next free one and share one `= ANY($1)` query. Each still reads what was
  committed before it asked (the query starts after it arrived); under load a round trip to the
  database, the costly part of a stamp there, serves many requests instead of one.
- Anything else (an in-memory SQLite database, which only the engine's connection sees): the engine.
"""

import asyncio
import contextlib
import sqlite3
from typing import Any, NamedTuple, Protocol

from sqlalchemy import ColumnElement, Select, String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from ordertrack.store.engine import SQLITE_BUSY_TIMEOUT_SECONDS
from ordertrack.store.tables import orders, timeline_events

# Connections of the stamp pool on PostgreSQL, per server process; a stamp takes well under a
# millisecond, so a few serve many concurrent requests.
POSTGRES_POOL_SIZE = 4
# What SQLAlchemy's asyncpg dialect takes from the URL for itself rather than for asyncpg.connect.
_SQLALCHEMY_OPTIONS = ("async_creator_fn", "prepared_statement_cache_size", "prepared_statement_name_func")


class Stamp(NamedTuple):
    """An order as of one read: what its page and its API answer depend on."""

    order_id: str
    version: int
    address_version: int
    entries: int  # timeline entries stored
    locale: str
    time_zone: str | None


class StampQuery(NamedTuple):
    """The stamp of the order with a given key (`one`), and of the orders with any of given keys,
    each row led by its key (`many`, PostgreSQL only)."""

    one: Select[Any]
    many: Select[Any]

    @classmethod
    def by(cls, key: ColumnElement[str]) -> "StampQuery":
        entries = (
            select(func.count()).where(timeline_events.c.order_id == orders.c.order_id).scalar_subquery()
        )
        columns = (
            orders.c.order_id,
            orders.c.version,
            orders.c.address_version,
            entries,
            orders.c.locale,
            orders.c.time_zone,
        )
        return cls(
            select(*columns).where(key == bindparam("key")),
            select(key, *columns).where(key == any_(bindparam("keys", type_=ARRAY(String)))),
        )


BY_TOKEN = StampQuery.by(orders.c.tracking_token)
BY_ORDER_ID = StampQuery.by(orders.c.order_id)


class StampReader(Protocol):
    async def read(self, query: StampQuery, key: str) -> Stamp | None: ...

    async def close(self) -> None: ...


def stamp_reader(engine: AsyncEngine) -> StampReader:
    """The cheapest way to read stamps from `engine`'s database (see the module's docstring)."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return _SqliteStamps(engine, url.database)
    if url.get_backend_name() == "postgresql" and url.get_driver_name() == "asyncpg":
        return _AsyncpgStamps(engine)
    return _EngineStamps(engine)


class _EngineStamps:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def read(self, query: StampQuery, key: str) -> Stamp | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(query.one, {"key": key})).first()
        return None if row is None else Stamp(*row)

    async def close(self) -> None:
        pass


class _CompiledQueries:
    """Each stamp query as the engine's dialect writes it, for the raw driver."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._dialect = engine.dialect
        self._sql: dict[Select[Any], str] = {}

    def sql(self, query: Select[Any]) -> str:
        found = self._sql.get(query)
        if found is None:
            found = self._sql[query] = str(query.compile(dialect=self._dialect))
        return found


class _SqliteStamps:
    def __init__(self, engine: AsyncEngine, path: str) -> None:
        self._path = path
        self._queries = _CompiledQueries(engine)
        self._connection: sqlite3.Connection | None = None

    def _connect(self, timeout: float) -> sqlite3.Connection:
        # Autocommit: each statement reads the newest committed state; query_only: reads only.
        connection = sqlite3.connect(
            self._path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA query_only=ON")
        return connection

    async def read(self, query: StampQuery, key: str) -> Stamp | None:
        sql = self._queries.sql(query.one)
        try:
            if self._connection is None:
                self._connection = self._connect(timeout=0)
            row = self._connection.execute(sql, (key,)).fetchone()
        except sqlite3.OperationalError:  # locked (a checkpoint, a recovery): wait, off the loop
            row = await asyncio.to_thread(self._read_waiting, sql, key)
        return None if row is None else Stamp(*row)

    def _read_waiting(self, sql: str, key: str) -> Any:
        with contextlib.closing(self._connect(timeout=SQLITE_BUSY_TIMEOUT_SECONDS)) as connection:
            return connection.execute(sql, (key,)).fetchone()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


async def _nothing_to_reset(connection: Any) -> None:
    """A stamp leaves no session state behind (one SELECT, no transaction), so a connection goes
    back to the pool without asyncpg's reset query, a round trip per stamp."""


class _AsyncpgStamps:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._queries = _CompiledQueries(engine)
        self._pool: Any = None
        self._opening = asyncio.Lock()
        # Per query, the keys asked for and not yet read, each with its requests' futures; a batch
        # is waiting for a connection exactly while its query has an entry here.
        self._waiting: dict[StampQuery, dict[str, list[asyncio.Future[Stamp | None]]]] = {}
        self._batches: set[asyncio.Task[None]] = set()

    async def _open(self) -> Any:
        import asyncpg

        async with self._opening:
            if self._pool is None:
                # The arguments SQLAlchemy's asyncpg dialect would connect with, less its own options.
                _, params = self._engine.dialect.create_connect_args(make_url(self._engine.url))
                for option in _SQLALCHEMY_OPTIONS:
                    params.pop(option, None)
                self._pool = await asyncpg.create_pool(
                    min_size=1, max_size=POSTGRES_POOL_SIZE, reset=_nothing_to_reset, **params
                )
            return self._pool

    async def read(self, query: StampQuery, key: str) -> Stamp | None:
        answer: asyncio.Future[Stamp | None] = asyncio.get_running_loop().create_future()
        waiting = self._waiting.get(query)
        if waiting is None:
            waiting = self._waiting[query] = {}
            batch = asyncio.create_task(self._read_batch(query))
            self._batches.add(batch)
            batch.add_done_callback(self._batches.discard)
        waiting.setdefault(key, []).append(answer)
        return await answer

    async def _read_batch(self, query: StampQuery) -> None:
        """Once a connection is free: the stamps of every key asked for until then, in one query."""
        waiting: dict[str, list[asyncio.Future[Stamp | None]]] = {}
        try:
            pool = self._pool or await self._open()
            async with pool.acquire() as connection:
                waiting = self._waiting.pop(query)
                rows = await connection.fetch(self._queries.sql(query.many), list(waiting))
        except BaseException as error:  # the batch's requests fail as it did
            for answer in _answers(waiting or self._waiting.pop(query, {})):
                if isinstance(error, Exception):
                    answer.set_exception(error)
                else:
                    answer.cancel()
            if not isinstance(error, Exception):
                raise
            return
        stamps = {row[0]: Stamp(*row[1:]) for row in rows}
        for key, answers in waiting.items():
            for answer in answers:
                if not answer.done():  # its request may have been cancelled meanwhile
                    answer.set_result(stamps.get(key))

    async def close(self) -> None:
        for batch in list(self._batches):
            batch.cancel()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def _answers(waiting: dict[str, list[asyncio.Future[Stamp | None]]]) -> list[asyncio.Future[Stamp | None]]:
    """The futures of `waiting` still to be answered."""
    return [answer for answers in waiting.values() for answer in answers if not answer.done()]
