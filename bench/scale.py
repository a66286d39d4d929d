"""Scale: 20,000 open orders on one Temporal dev server and one worker, measured in one run.

Everything real, each in its own process on loopback: a headless Temporal dev server (its state in
a file), `ordertrack worker` with a bounded workflow cache, `ordertrack carrier-sim` at real speed
(a parcel stays in transit for days), an SMTP sink and `ordertrack serve`. The read model is a
SQLite file, or with --postgres a throwaway database on 127.0.0.1:5432.

The orders go in through the Python client (`ordertrack.orders.start_order`), `--concurrency` at a
time and at most `--backlog` ahead of the worker. Each is paid, so the worker saves it to the read
model and sends its confirmation email; then it waits for the warehouse (the 48 h ship-by
deadline). One in four is shipped later, once its workflow has long left the cache (the update
replays it), and then polls the carrier every 30 minutes (the default policy). Nothing finishes:
every order stays open.

Prints, as it goes and in one table at the end: the start rate per 1,000 orders (client starts,
and orders set up = confirmation email sent), the worker's RSS over time (when its cache first
filled, and at the end: flat or not), open workflows (visibility), history per order, the read
model's rows and size, and `GET /t/{token}` req/s and p99 under `wrk` at 1,000 orders and at the
end, side by side. Takes minutes (about 15 at 20,000 on 2 cores); it stops by itself after
--max-minutes, and stops every process it started on the way out, also on Ctrl-C or failure.

    .venv/bin/python bench/scale.py [--orders 20000] [--cache 1000] [--concurrency 16] [--postgres]
"""

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import text
from temporalio.client import Client

from ordertrack import orders
from ordertrack.connection import connect
from ordertrack.domain.messages import FulfillmentUpdate
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.statuses import FulfillmentEvent
from ordertrack.settings import Settings
from ordertrack.store.engine import create_engine
from ordertrack.store.migrate import migrate
from starter.demo import sample_order
from starter.devserver import search_attribute_flags, temporal_cli

# Customers who asked for email only (the demo's texted ones would need an SMS provider).
CUSTOMERS = [
    ("João Silva", "pt-BR", "Lisboa", "PT"),
    ("Min-jun Kim", "ko", "Seoul", "KR"),
    ("Emily Clarke", "en", "Leeds", "GB"),
    ("Jordi Puig", "ca", "Girona", "ES"),
    ("Sam Taylor", "en", "Austin", "US"),
]
SHIP_EVERY = 4  # one order in four is shipped ...
FLAT_WITHIN = 0.05  # RSS after the cache filled may move this much and still count as flat
SAMPLE_EVERY = 1.0  # seconds between RSS samples
HISTORY_SAMPLE = 30  # workflows whose history is fetched, of each kind
WRK_CONNECTIONS = 16  # as bench/read_path.py's concurrent clients
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
FINAL_NUMBERS_PATIENCE = 600.0  # seconds for the counts and sizes at the end
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

WRK_SCRIPT = """\
-- GET /t/<token> with a random token from the file given after `--`.
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end
function init(args)
  tokens = {}
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  math.randomseed(os.time() * 100 + id)
end
function request()
  return wrk.format("GET", "/t/" .. tokens[math.random(#tokens)])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "non_2xx": %d, "errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def megabytes(size: float) -> str:
    return f"{size / 2**20:,.1f} MB"


# -- processes ---------------------------------------------------------------------------------


class Children:
    """The processes this bench started; `stop_all` ends them newest first (the dev server last)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self._running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Each in a session of its own, so a Ctrl-C reaches only the bench, which then stops them
        in order: the worker gets to finish while the Temporal server is still up."""
        with (self.logs / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._running.append((name, process))
        return process

    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self._running}

    def check(self) -> None:
        """Fail as soon as one of them died, naming its log."""
        for name, process in self._running:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}); see {self.logs / name}.log")

    def stop_all(self) -> None:
        while self._running:
            name, process = self._running.pop()
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    print(f"{name} did not stop in 30 s: killed", file=sys.stderr)
                    process.kill()
                    process.wait()


def run_sink(port: int, directory: Path) -> None:
    """`--sink`: the SMTP sink in a process of its own, so its work does not slow the bench's client.

    It keeps every mail as a file (counted at the end) but not in memory."""
    from ordertrack.mail.sink import MailSink

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sink = MailSink(directory, port=port)
    sink.start()
    try:
        while not stop.wait(1.0):
            sink.messages.clear()
    finally:
        sink.stop()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def sdk_metrics(text_format: str) -> dict[str, float]:
    """Prometheus text from the worker's SDK metrics, summed over labels: name -> value."""
    totals: dict[str, float] = {}
    for line in text_format.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        with contextlib.suppress(ValueError):
            totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def sqlite_table_bytes(path: Path) -> dict[str, int]:
    """Bytes of each table with its indexes (SQLite's dbstat), after moving the WAL into the file."""
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        query = (
            "SELECT coalesce(m.tbl_name, s.name), sum(s.pgsize) FROM dbstat AS s "
            "LEFT JOIN sqlite_master AS m ON m.name = s.name GROUP BY 1"
        )
        return {table: int(used) for table, used in db.execute(query)}


async def wait_until(what: str, check: Callable[[], Awaitable[bool]], patience: float) -> None:
    deadline = time.monotonic() + patience
    while True:
        with contextlib.suppress(Exception):
            if await check():
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not reached in {patience:g} s")
        await asyncio.sleep(0.2)


async def answers(url: str) -> bool:
    async with httpx.AsyncClient(timeout=2) as http:
        return (await http.get(url)).status_code == 200


async def throwaway_postgres() -> tuple[str, Callable[[], Awaitable[None]]]:
    """A fresh database on the local server, and how to drop it."""
    import asyncpg

    name = f"ordertrack_scale_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')

    async def drop() -> None:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", drop


# -- what is measured ----------------------------------------------------------------------------


@dataclass
class Sample:
    at: float  # seconds since the first order
    rss: int
    cache: float | None  # workflows in the worker's sticky cache
    started: int
    set_up: int
    cpu: dict[str, float]  # CPU seconds so far: the worker, the dev server, the bench's client ...


@dataclass
class Window:
    mark: int
    started_rate: float  # start_order calls returned per second
    set_up_rate: float  # confirmation emails sent per second
    cpu: dict[str, float]  # cores used, by process
    rss: int
    cache: float | None

    HEADER = (
        f"{'orders':>8} {'started/s':>10} {'set up/s':>9} {'worker CPU':>11} {'server CPU':>11} "
        f"{'worker RSS':>11} {'cache':>6}"
    )

    def line(self) -> str:
        cache = "?" if self.cache is None else f"{self.cache:.0f}"
        worker, server = self.cpu.get("worker", 0.0), self.cpu.get("temporal", 0.0)
        return (
            f"{self.mark:>8,} {self.started_rate:>10.1f} {self.set_up_rate:>9.1f} {worker:>11.0%} "
            f"{server:>11.0%} {megabytes(self.rss):>11} {cache:>6}"
        )


READ_MODEL_TABLES = ("orders", "timeline_events", "notifications", "mail_recipients")


@dataclass
class ReadModelSize:
    rows: dict[str, int] = field(default_factory=dict)
    table_bytes: dict[str, int] = field(default_factory=dict)  # with the table's indexes
    total: int = 0  # the database (SQLite: its files)


@dataclass
class Page:
    orders: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    cpu_ms: float  # the HTTP server's CPU per request
    load: float  # the machine's 1-minute load average at the end


@dataclass
class Run:
    began: float = field(default_factory=time.monotonic)
    started: int = 0  # start_order calls returned
    set_up: int = 0  # confirmation emails sent (the read model's notification log)
    shipped_sent: int = 0  # shipped emails sent
    started_at: dict[int, float] = field(default_factory=dict)  # count -> time, every --window orders
    set_up_at: dict[int, float] = field(default_factory=dict)
    window_base: dict[int, tuple[float, float]] = field(default_factory=dict)  # mark -> restart times
    samples: list[Sample] = field(default_factory=list)
    idle_rss: int = 0
    tokens: list[str] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)

    def now(self) -> float:
        """Seconds since the first order."""
        return time.monotonic() - self.began


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path, children: Children) -> None:
        self.args = args
        self.workdir = workdir
        self.children = children
        self.run = Run()
        self.policy = TimingPolicy()
        self.prefix = uuid.uuid4().hex[:6]
        self.ports = {name: free_port() for name in ("temporal", "smtp", "carrier", "metrics", "http")}
        self.database_url = f"sqlite+aiosqlite:///{workdir / 'orders.db'}"
        self.worker_pid = 0
        self.empty_db_bytes = 0
        self.began = time.monotonic()
        self.gave_up = False
        self.shipped: list[int] = []  # numbers of the orders shipped
        self.progressed = asyncio.Event()  # set whenever watch_progress has read new counts
        self.to_ship: deque[int] = deque()  # numbers of orders to ship, oldest first
        self.ship_asked = 0
        self.shipping = asyncio.Semaphore(args.concurrency)
        self.shipping_tasks: set[asyncio.Task[None]] = set()

    # -- stack -----------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """Every setting explicit: the caller's ORDERTRACK_* are left out."""
        base = {key: value for key, value in os.environ.items() if not key.startswith("ORDERTRACK_")}
        return base | {
            "ORDERTRACK_TEMPORAL_ADDRESS": f"127.0.0.1:{self.ports['temporal']}",
            "ORDERTRACK_DATABASE_URL": self.database_url,
            "ORDERTRACK_SMTP_HOST": "127.0.0.1",
            "ORDERTRACK_SMTP_PORT": str(self.ports["smtp"]),
            "ORDERTRACK_SIMULATED_CARRIER_URL": f"http://127.0.0.1:{self.ports['carrier']}",
            "ORDERTRACK_PUBLIC_URL": f"http://127.0.0.1:{self.ports['http']}",
            "ORDERTRACK_WORKER_MAX_CACHED_WORKFLOWS": str(self.args.cache),
            "ORDERTRACK_METRICS_BIND": f"127.0.0.1:{self.ports['metrics']}",
        }

    async def start_stack(self) -> Client:
        bin_dir = Path(sys.executable).parent
        ordertrack = str(bin_dir / "ordertrack") if (bin_dir / "ordertrack").exists() else "ordertrack"
        env = self.env()
        temporal = [temporal_cli(), "server", "start-dev", "--headless", "--ip", "127.0.0.1"]
        temporal += ["--port", str(self.ports["temporal"]), "--log-level", "warn"]
        temporal += ["--db-filename", str(self.workdir / "temporal.db"), *search_attribute_flags()]
        self.children.start("temporal", temporal, env)
        sink = [sys.executable, __file__, "--sink", str(self.ports["smtp"]), str(self.workdir / "mail")]
        self.children.start("smtp-sink", sink, env)
        carrier = [ordertrack, "carrier-sim", "--port", str(self.ports["carrier"]), "--speed", "1"]
        self.children.start("carrier-sim", carrier, env)
        await migrate(self.database_url)
        self.run.idle_rss = 0
        settings = Settings(temporal_address=env["ORDERTRACK_TEMPORAL_ADDRESS"])
        client: Client | None = None

        async def temporal_up() -> bool:
            nonlocal client
            client = await connect(settings)
            return True

        await wait_until("Temporal dev server", temporal_up, 60)
        assert client is not None
        self.worker_pid = self.children.start("worker", [ordertrack, "worker"], env).pid
        self.children.start("serve", [ordertrack, "serve", "--port", str(self.ports["http"])], env)
        metrics = f"http://127.0.0.1:{self.ports['metrics']}/metrics"
        for what, url in (
            ("worker's metrics", metrics),
            ("carrier-sim", f"http://127.0.0.1:{self.ports['carrier']}/healthz"),
            ("ordertrack serve", f"http://127.0.0.1:{self.ports['http']}/healthz"),
        ):
            await wait_until(what, lambda url=url: answers(url), 60)  # type: ignore[misc]
        self.children.check()
        await asyncio.sleep(3)  # the worker settles (polls open, modules imported)
        self.run.idle_rss = rss_bytes(self.worker_pid)
        return client

    # -- watching --------------------------------------------------------------------------------

    async def watch_progress(self) -> None:
        """The read model's notification log: confirmation and shipped emails sent."""
        engine = create_engine(self.database_url)
        query = text(
            "SELECT kind, count(*) FROM notifications WHERE status = 'sent' "
            "AND kind IN ('confirmation', 'shipped') GROUP BY kind"
        )
        try:
            while True:
                async with engine.connect() as db:
                    counts = {kind: count for kind, count in (await db.execute(query)).all()}
                self.run.set_up = counts.get("confirmation", 0)
                self.run.shipped_sent = counts.get("shipped", 0)
                self.progressed.set()
                mark = self.run.set_up // self.args.window * self.args.window
                if mark and mark not in self.run.set_up_at:
                    self.run.set_up_at[mark] = self.run.now()
                self.children.check()
                await asyncio.sleep(0.5)
        finally:
            await engine.dispose()

    async def watch_worker(self) -> None:
        """The worker's RSS and sticky cache size, every SAMPLE_EVERY seconds."""
        url = f"http://127.0.0.1:{self.ports['metrics']}/metrics"
        async with httpx.AsyncClient(timeout=5) as http:
            while True:
                cache = None
                with contextlib.suppress(httpx.HTTPError):
                    cache = sdk_metrics((await http.get(url)).text).get("temporal_sticky_cache_size")
                run = self.run
                cpu = {name: cpu_seconds(pid) for name, pid in self.children.pids().items()}
                cpu["bench"] = sum(os.times()[:2])
                rss = rss_bytes(self.worker_pid)
                run.samples.append(Sample(run.now(), rss, cache, run.started, run.set_up, cpu))
                await asyncio.sleep(SAMPLE_EVERY)

    # -- orders ----------------------------------------------------------------------------------

    async def start_orders(self, client: Client, first: int, last: int) -> None:
        """Orders `first` to `last - 1`, `--concurrency` calls at a time, at most `--backlog` ahead of
        the worker; every SHIP_EVERY-th is queued for shipping once 2 x cache orders came after it."""
        semaphore = asyncio.Semaphore(self.args.concurrency)
        run = self.run

        async def one(number: int) -> None:
            name, locale, city, country = CUSTOMERS[number % len(CUSTOMERS)]
            order = sample_order(f"scale-{self.prefix}-{number:06d}", name, locale, city, country, paid=True)
            try:
                started = await orders.start_order(client, order, self.policy, "orders")
            finally:
                semaphore.release()
            run.tokens.append(started.tracking_token)
            run.started += 1
            if run.started % self.args.window == 0:
                run.started_at[run.started] = run.now()
            if number % SHIP_EVERY == 0:
                self.to_ship.append(number)

        async with asyncio.TaskGroup() as group:
            for number in range(first, last):
                while number - run.set_up >= self.args.backlog:
                    self.progressed.clear()
                    await self.progressed.wait()
                await semaphore.acquire()
                group.create_task(one(number))
                self.ship_due(client, number)

    def ship_due(self, client: Client, number: int, *, all_now: bool = False) -> None:
        """Ship the queued orders at least 2 x cache orders older than `number` (all, at the end)."""
        while self.to_ship and (all_now or self.to_ship[0] + 2 * self.args.cache <= number):
            number = self.to_ship.popleft()
            task = asyncio.create_task(self.ship(client, f"scale-{self.prefix}-{number:06d}"))
            self.shipped.append(number)
            self.shipping_tasks.add(task)
            task.add_done_callback(self.shipping_tasks.discard)
            self.ship_asked += 1

    async def ship(self, client: Client, order_id: str) -> None:
        update = FulfillmentUpdate(
            event=FulfillmentEvent.SHIPPED, carrier="simulated", tracking_number=f"SIM-ONTIME-{order_id}"
        )
        async with self.shipping:
            await orders.record_fulfillment(client, order_id, update)

    async def drain(self, patience: float) -> float:
        """Wait until every started order is set up and every shipped one told; seconds waited."""
        began = time.monotonic()
        if self.shipping_tasks:
            await asyncio.gather(*self.shipping_tasks)
        shipped = self.ship_asked

        async def done() -> bool:
            return self.run.set_up >= self.run.started and self.run.shipped_sent >= shipped

        await wait_until(f"{self.run.started} orders set up, {shipped} shipped", done, patience)
        return time.monotonic() - began

    # -- the tracking page -------------------------------------------------------------------------

    async def measure_page(self, orders_now: int) -> Page:
        """`wrk` on `GET /t/{token}` over the tokens of the orders so far."""
        tokens_file = self.workdir / f"tokens-{orders_now}.txt"
        tokens_file.write_text("\n".join(self.run.tokens[:orders_now]) + "\n")
        script = self.workdir / "random_token.lua"
        script.write_text(WRK_SCRIPT)
        base = f"http://127.0.0.1:{self.ports['http']}"
        if not await answers(f"{base}/t/{self.run.tokens[0]}"):
            raise RuntimeError("the tracking page does not answer 200 for a started order")
        await self.wrk(base, script, tokens_file, 3)  # warm-up, not reported
        serve_pid = self.children.pids()["serve"]
        cpu_before = cpu_seconds(serve_pid)
        result = await self.wrk(base, script, tokens_file, self.args.page_seconds)
        cpu_used = cpu_seconds(serve_pid) - cpu_before
        if result["non_2xx"] or result["errors"]:
            raise RuntimeError(f"wrk saw failures at {orders_now} orders: {result}")
        page = Page(
            orders=orders_now,
            rps=result["requests"] / (result["duration_us"] / 1e6),
            p50_ms=result["p50_us"] / 1000,
            p99_ms=result["p99_us"] / 1000,
            requests=result["requests"],
            cpu_ms=1000 * cpu_used / max(result["requests"], 1),
            load=os.getloadavg()[0],
        )
        self.run.pages.append(page)
        print(
            f"  GET /t/{{token}} at {orders_now:,} orders: {page.rps:,.0f} req/s, "
            f"p50 {page.p50_ms:.1f} ms, p99 {page.p99_ms:.1f} ms ({page.requests:,} requests, "
            f"{page.cpu_ms:.1f} ms of server CPU each, load average {page.load:.1f})"
        )
        return page

    async def wrk(self, base: str, script: Path, tokens: Path, seconds: float) -> dict[str, int]:
        args = ["wrk", "-t2", f"-c{WRK_CONNECTIONS}", f"-d{seconds:g}s", "--timeout", "10s"]
        args += ["-s", str(script), base, "--", str(tokens)]
        process = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout=seconds + 60)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        for line in output.decode().splitlines():
            if line.startswith("RESULT "):
                return dict(json.loads(line.removeprefix("RESULT ")))
        raise RuntimeError(f"wrk gave no result:\n{output.decode()}")

    # -- the run ---------------------------------------------------------------------------------

    async def main(self) -> None:
        args = self.args
        client = await self.start_stack()
        print(
            f"stack up in {self.workdir}: dev server, worker (cache {args.cache}, idle RSS "
            f"{megabytes(self.run.idle_rss)}), carrier-sim, SMTP sink, serve; read model "
            f"{'PostgreSQL' if args.postgres else 'SQLite'}"
        )
        self.run = Run(idle_rss=self.run.idle_rss)
        watchers = [
            asyncio.create_task(self.watch_progress()),
            asyncio.create_task(self.watch_worker()),
            asyncio.create_task(self.report_windows()),
        ]
        scenario = asyncio.create_task(self.scenario(client))
        try:
            # A watcher ends only by failing (a process died): then so does the run. Out of time,
            # the run stops where it is and reports what it measured.
            budget = args.max_minutes * 60 - (time.monotonic() - self.began)
            await asyncio.wait([scenario, *watchers], timeout=budget, return_when=asyncio.FIRST_COMPLETED)
            for watcher in watchers:
                if watcher.done():
                    watcher.result()
            if scenario.done():
                scenario.result()
            else:
                self.gave_up = True
                print(
                    f"GAVE UP after --max-minutes {args.max_minutes:g}: {self.run.started:,} orders started, "
                    f"{self.run.set_up:,} set up; the report covers those"
                )
        finally:
            tasks = [scenario, *watchers, *self.shipping_tasks]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        report = await asyncio.wait_for(self.final_numbers(client), timeout=FINAL_NUMBERS_PATIENCE)
        self.print_table(report)

    async def scenario(self, client: Client) -> None:
        args, run = self.args, self.run
        first_stop = min(self.args.first_page_at, args.orders)
        await self.start_orders(client, 0, first_stop)
        await self.drain(args.max_minutes * 60)
        await self.measure_page(first_stop)
        # The next window's rates count from here, not from before the wait and the page's load.
        run.window_base[first_stop] = (run.now(), run.now())
        await self.start_orders(client, first_stop, args.orders)
        started_all = run.now()
        self.ship_due(client, args.orders, all_now=True)
        waited = await self.drain(args.max_minutes * 60)
        print(
            f"all {args.orders:,} started at t={started_all:.0f} s; the worker caught up {waited:.0f} s later"
        )
        await asyncio.sleep(10)  # a few idle samples after the last order
        if args.orders > first_stop:
            await self.measure_page(args.orders)
        await asyncio.sleep(2 * SAMPLE_EVERY)

    async def report_windows(self) -> None:
        """A line per --window orders set up, as they come."""
        printed = 0
        print(Window.HEADER)
        while True:
            await asyncio.sleep(1)
            for mark in sorted(self.run.set_up_at):
                if mark > printed and mark in self.run.started_at:
                    print(self.window(mark).line())
                    printed = mark

    def window(self, mark: int) -> "Window":
        """The --window orders ending at `mark`: rates, and the worker's CPU, RSS and cache."""
        run = self.run
        previous = mark - self.args.window
        start_began, set_up_began = run.window_base.get(
            previous, (run.started_at.get(previous, 0.0), run.set_up_at.get(previous, 0.0))
        )
        set_up_seconds = max(run.set_up_at[mark] - set_up_began, 1e-9)
        first = self.sample_at(set_up_began)
        last = self.sample_at(run.set_up_at[mark])
        elapsed = max(last.at - first.at, 1e-9)
        return Window(
            mark=mark,
            started_rate=self.args.window / max(run.started_at[mark] - start_began, 1e-9),
            set_up_rate=self.args.window / set_up_seconds,
            cpu={name: (last.cpu.get(name, 0) - first.cpu.get(name, 0)) / elapsed for name in last.cpu},
            rss=last.rss,
            cache=last.cache,
        )

    def sample_at(self, at: float) -> Sample:
        return min(self.run.samples, key=lambda sample: abs(sample.at - at))

    async def final_numbers(self, client: Client) -> dict[str, object]:
        report: dict[str, object] = {}
        running = await client.count_workflows('ExecutionStatus="Running"')
        report["open workflows"] = running.count
        for status in ("confirmed", "shipped", "in_transit"):
            counted = await client.count_workflows(f'ExecutionStatus="Running" AND OrderStatus="{status}"')
            report[f"open, OrderStatus={status}"] = counted.count
        report["history"] = await self.history_sizes(client)
        report["read model"] = await self.read_model_size()
        temporal_db = sum(p.stat().st_size for p in self.workdir.glob("temporal.db*"))
        report["temporal db"] = temporal_db
        mail_dir = self.workdir / "mail"
        report["emails"] = sum(1 for _ in mail_dir.iterdir()) if mail_dir.exists() else 0
        async with httpx.AsyncClient(timeout=5) as http:
            metrics = sdk_metrics((await http.get(f"http://127.0.0.1:{self.ports['metrics']}/metrics")).text)
        report["metrics"] = metrics
        return report

    async def history_sizes(self, client: Client) -> dict[str, tuple[float, float]]:
        """Events and bytes per history, averaged over a sample of set-up-only and shipped orders."""
        sizes: dict[str, tuple[float, float]] = {}
        shipped = set(self.shipped)
        kinds = {
            "confirmed": [n for n in range(self.run.started) if n not in shipped],
            "shipped": self.shipped,
        }
        for kind, candidates in kinds.items():
            events, size = [], []
            for number in random.sample(candidates, min(HISTORY_SAMPLE, len(candidates))):
                handle = client.get_workflow_handle(f"order-scale-{self.prefix}-{number:06d}")
                history = await handle.fetch_history()
                events.append(len(history.events))
                size.append(sum(event.ByteSize() for event in history.events))
            if events:
                sizes[kind] = (statistics.mean(events), statistics.mean(size))
        return sizes

    async def read_model_size(self) -> "ReadModelSize":
        """Rows and bytes (with indexes) of each table, and of the whole database."""
        engine = create_engine(self.database_url)
        size = ReadModelSize()
        try:
            async with engine.connect() as db:
                for table in READ_MODEL_TABLES:
                    rows = await db.execute(text(f"SELECT count(*) FROM {table}"))
                    size.rows[table] = rows.scalar_one()
                if self.args.postgres:
                    for table in READ_MODEL_TABLES:
                        query = text(f"SELECT pg_total_relation_size('{table}')")
                        size.table_bytes[table] = (await db.execute(query)).scalar_one()
                    query = text("SELECT pg_database_size(current_database())")
                    size.total = (await db.execute(query)).scalar_one()
        finally:
            await engine.dispose()
        if not self.args.postgres:
            size.table_bytes = sqlite_table_bytes(self.workdir / "orders.db")
            size.total = sum(p.stat().st_size for p in self.workdir.glob("orders.db*"))
        return size

    def print_table(self, report: dict[str, object]) -> None:
        args, run = self.args, self.run
        kind = "PostgreSQL" if args.postgres else "SQLite"
        print()
        print(
            f"== scale: {run.started:,} open orders, one dev server, one worker (cache {args.cache}), "
            f"read model {kind}, {os.cpu_count()} cores =="
        )
        if self.gave_up:
            print(f"(stopped early by --max-minutes {args.max_minutes:g}: {args.orders:,} were asked for)")
        print(
            f"\nstart rate per {self.args.window:,} orders (client starts; set up = confirmation email sent)"
        )
        print("(CPU: cores busy, 100% = one core; server = the Temporal dev server)")
        print(Window.HEADER)
        windows = [self.window(m) for m in sorted(run.set_up_at) if m in run.started_at]
        for window in windows:
            print(window.line())
        if windows:
            seconds = sum(self.args.window / window.set_up_rate for window in windows)
            cpu = {
                name: sum(
                    window.cpu.get(name, 0.0) * self.args.window / window.set_up_rate for window in windows
                )
                for name in windows[-1].cpu
            }
            count = windows[-1].mark
            print(
                f"overall: {count / seconds:.1f} orders set up per second ({count:,} in {seconds:.0f} s); "
                "CPU per order: "
                + ", ".join(f"{name} {1000 * used / count:.0f} ms" for name, used in cpu.items())
            )
        for line in self.rss_report():
            print(line)
        print("\nTemporal")
        for key in ("open workflows", "open, OrderStatus=confirmed", "open, OrderStatus=shipped"):
            print(f"  {key:<34} {report[key]:>10,}")
        print(f"  {'open, OrderStatus=in_transit':<34} {report['open, OrderStatus=in_transit']:>10,}")
        history = report["history"]
        assert isinstance(history, dict)
        for name, (events, size) in history.items():
            print(f"  history of a {name} order: {events:.0f} events, {size / 1024:.1f} KiB")
        temporal_db = report["temporal db"]
        assert isinstance(temporal_db, int)
        print(
            f"  dev server's SQLite file: {megabytes(temporal_db)} "
            f"({temporal_db / max(run.started, 1) / 1024:.1f} KiB per open order)"
        )
        metrics = report["metrics"]
        assert isinstance(metrics, dict)
        tasks = metrics.get("temporal_workflow_task_execution_latency_count", 0.0)
        activities = metrics.get("temporal_activity_execution_latency_count", 0.0)
        evictions = metrics.get("temporal_sticky_cache_total_forced_eviction", 0.0)
        print(
            f"  worker: {tasks:,.0f} workflow tasks ({tasks / max(run.started, 1):.1f} per order), "
            f"{activities:,.0f} activities ({activities / max(run.started, 1):.1f} per order), "
            f"{evictions:,.0f} forced cache evictions"
        )
        size = report["read model"]
        assert isinstance(size, ReadModelSize)
        print(f"\nread model ({kind}; sizes with indexes)")
        print(f"  {'table':<18} {'rows':>9} {'size':>11} {'bytes/row':>10}")
        for table in READ_MODEL_TABLES:
            rows, used = size.rows[table], size.table_bytes.get(table, 0)
            per_row = f"{used / rows:,.0f}" if rows else "-"
            print(f"  {table:<18} {rows:>9,} {megabytes(used):>11} {per_row:>10}")
        grown = size.total - self.empty_db_bytes
        print(
            f"  whole database {megabytes(size.total)} (empty schema {megabytes(self.empty_db_bytes)}): "
            f"{grown / max(size.rows['orders'], 1) / 1024:.2f} KiB per order"
        )
        print(f"  emails received by the SMTP sink: {report['emails']:,}")
        print(
            f"\nGET /t/{{token}} (wrk, {WRK_CONNECTIONS} connections, {args.page_seconds:g} s, random tokens)"
        )
        print(f"{'orders':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11} {'load avg':>9}")
        for page in run.pages:
            print(
                f"{page.orders:>8,} {page.rps:>8.0f} {page.p50_ms:>8.1f} {page.p99_ms:>8.1f} "
                f"{page.cpu_ms:>11.1f} {page.load:>9.1f}"
            )
        if len(run.pages) == 2:
            small, large = run.pages
            print(
                f"{large.orders / small.orders:.0f}x the orders: p99 {large.p99_ms / small.p99_ms:.2f}x, "
                f"req/s {large.rps / small.rps:.2f}x, "
                f"server CPU per request {large.cpu_ms / small.cpu_ms:.2f}x"
            )

    def rss_report(self) -> Iterator[str]:
        run = self.run
        samples = run.samples
        if not samples:
            return
        yield f"\nworker RSS (idle before the first order: {megabytes(run.idle_rss)})"
        every = max(1, len(samples) // 24)
        shown = samples[::every] + ([samples[-1]] if (len(samples) - 1) % every else [])
        yield f"{'t (s)':>7} {'orders':>7} {'set up':>7} {'cache':>6} {'RSS':>10}"
        for s in shown:
            cache = f"{s.cache:.0f}" if s.cache is not None else "?"
            yield f"{s.at:>7.0f} {s.started:>7,} {s.set_up:>7,} {cache:>6} {megabytes(s.rss):>10}"
        full = next((s for s in samples if s.cache is not None and s.cache >= self.args.cache), None)
        if full is None:
            yield f"the cache never filled ({self.args.cache} workflows): no flatness to judge"
            return
        after = [s.rss for s in samples if s.at >= full.at]
        end = samples[-1].rss
        low, high = min(after), max(after)
        growth = (end - full.rss) / full.rss
        spread = (high - low) / full.rss
        filling = [
            s for s in samples if s.at <= full.at and s.cache is not None and s.cache >= self.args.cache / 4
        ]
        per_workflow = ""
        if len(filling) >= 3 and len({s.cache for s in filling}) >= 2:
            slope, _ = statistics.linear_regression(
                [s.cache or 0.0 for s in filling], [s.rss for s in filling]
            )
            per_workflow = f"; while filling, {slope / 1024:.0f} KiB per cached workflow"
        yield (
            f"cache full ({self.args.cache}) at t={full.at:.0f} s, {full.started:,} orders: RSS "
            f"{megabytes(full.rss)}; at the end ({samples[-1].started:,} orders): {megabytes(end)} "
            f"({growth:+.1%}); range after filling {megabytes(low)} - {megabytes(high)} "
            f"({spread:.1%} of the value at filling){per_workflow}"
        )
        half = next((s for s in samples if s.set_up >= max(samples[-1].set_up // 2, full.set_up)), None)
        if half is not None and half is not samples[-1]:
            yield (
                f"second half ({half.set_up:,} orders set up -> {samples[-1].set_up:,}): "
                f"{megabytes(half.rss)} -> {megabytes(end)} ({(end - half.rss) / half.rss:+.1%})"
            )
        if abs(growth) <= FLAT_WITHIN and spread <= 2 * FLAT_WITHIN:
            yield f"RSS FLAT after the cache filled (within {FLAT_WITHIN:.0%} end to end)"
        else:
            yield f"RSS NOT FLAT after the cache filled: {growth:+.1%} end to end, spread {spread:.1%}"


async def run_bench(args: argparse.Namespace, workdir: Path, children: Children) -> None:
    bench = Bench(args, workdir, children)
    drop_database = None
    if args.postgres:
        bench.database_url, drop_database = await throwaway_postgres()
    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    try:
        await migrate(bench.database_url)
        bench.empty_db_bytes = (await bench.read_model_size()).total
        # A backstop: main stops by itself after --max-minutes and reports.
        await asyncio.wait_for(bench.main(), timeout=args.max_minutes * 60 + 2 * FINAL_NUMBERS_PATIENCE)
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None  # SIGTERM: stopped like Ctrl-C
    except TimeoutError:
        raise SystemExit(
            f"gave up after {args.max_minutes:g} minutes at {bench.run.started:,} orders"
        ) from None
    finally:
        children.stop_all()
        if drop_database is not None:
            await drop_database()


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[tuple[Path, Children]]:
    """A work directory for logs and databases, removed at the end unless kept or the run failed."""
    workdir = Path(tempfile.mkdtemp(prefix="ordertrack-scale-"))
    children = Children(workdir)
    failed = True
    try:
        yield workdir, children
        failed = False
    except KeyboardInterrupt:
        failed = False
        raise
    finally:
        children.stop_all()  # also after Ctrl-C, which ends asyncio.run before its finally blocks
        if keep or failed:
            print(f"logs and databases kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--cache", type=int, default=1_000, help="the worker's max cached workflows")
    parser.add_argument("--concurrency", type=int, default=16, help="start_order calls in flight")
    parser.add_argument("--backlog", type=int, default=500, help="orders started ahead of the worker")
    parser.add_argument("--window", type=int, default=1_000, help="start rate reported per this many")
    parser.add_argument(
        "--first-page-at", type=int, default=1_000, help="orders when the page is first measured"
    )
    parser.add_argument("--page-seconds", type=float, default=15.0, help="wrk's run at each point")
    parser.add_argument("--postgres", action="store_true", help="read model on the local PostgreSQL")
    parser.add_argument("--max-minutes", type=float, default=120.0, help="give up after this long")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases)")
    parser.add_argument("--sink", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sink:
        run_sink(int(args.sink[0]), Path(args.sink[1]))
        return
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # progress shows as it comes, also through a pipe
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing (apt-get install wrk)")
    try:
        with workspace(args.keep) as (workdir, children):
            asyncio.run(run_bench(args, workdir, children))
    except KeyboardInterrupt:
        raise SystemExit("interrupted; every process the bench started is stopped") from None
    except RuntimeError as err:
        raise SystemExit(f"failed: {err}") from None


if __name__ == "__main__":
    main()
