"""Reading an order: the read model over HTTP against a Temporal query, side by side in one run.

Seeds 10,000 orders into a SQLite read model and serves them with `ordertrack serve`'s app in its
own process, then drives each route with `wrk` (the load generator must not be the bottleneck, and
a Python client is) for a fixed time: the tracking page over random tokens of all the orders, the
shop API's `GET /api/orders/{id}` over random ids, a route on the same server answering from a
Temporal `status` query over 100 running workflows, `/healthz`, and a bare FastAPI route on the same
uvicorn serving as many bytes as a tracking page (the HTTP stack's ceiling). Pages and answers are
kept by the server until their order changes, so before measuring the steady state each order's
page and answer is asked for once (as its first view would); a second server keeping nothing then
measures what every first view after a change costs. Prints requests per second, p50/p99 latency
and the server process's CPU time per request for each (on a machine shared with other work the
first three are noisy; the last much less), then the ratios.

    .venv/bin/python bench/read_path.py [--orders 10000] [--seconds 10] [--connections 16] [--postgres]

With --postgres the read model is a throwaway database on the local PostgreSQL (127.0.0.1:5432),
as in production; by default it is a SQLite file, as under `ordertrack up`. Needs `wrk`
(`apt-get install wrk`, `brew install wrk`).
"""

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import httpx
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from ordertrack import orders
from ordertrack.connection import connect
from ordertrack.domain import machine
from ordertrack.domain.messages import FulfillmentUpdate
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.records import ChangeRecord, OrderRecord
from ordertrack.domain.statuses import FulfillmentEvent, OrderStatus
from ordertrack.domain.tracking import TrackingEvent, TrackingSnapshot
from ordertrack.domain.view import order_view
from ordertrack.mail.sink import MailSink
from ordertrack.names import SearchAttributes as sa
from ordertrack.settings import Settings
from ordertrack.store.migrate import migrate
from ordertrack.store.repository import Store
from ordertrack.tracking_link import new_tracking_token
from starter.demo import sample_order
from starter.devserver import temporal_cli
from worker import order_worker

API_KEY = "bench-shop-key"
QUERIED_ORDERS = 100  # running workflows the query path picks from
# One wrk thread drives 16 connections at well over the fastest route's rate (it is C and event
# driven); a second would only take CPU from the server on a 2-core machine.
WRK_THREADS = 1


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def seed(store: Store, count: int) -> list[tuple[str, str]]:
    """`count` shipped orders in transit, each with a few scans: (order id, token) pairs."""
    now = datetime.now(UTC)
    policy = TimingPolicy()
    seeded = []
    for number in range(count):
        order = sample_order(f"bench-{number:05d}", "Ana Souza", "pt-BR", "São Paulo", "BR", paid=True)
        token = new_tracking_token()
        start = machine.on_start(order, policy, now)
        await store.save_order(
            OrderRecord(
                order=order,
                workflow_id=f"order-{order.order_id}",
                tracking_token=token,
                view=order_view(order, start.state, token),
            )
        )
        shipped = machine.on_fulfillment(
            start.state,
            FulfillmentUpdate(
                event=FulfillmentEvent.SHIPPED, carrier="simulated", tracking_number=f"SIM-ONTIME-{number}"
            ),
            now,
        )
        scans = [
            TrackingEvent(
                at=now + timedelta(hours=h), status=OrderStatus.IN_TRANSIT, message=m, location="Campinas"
            )
            for h, m in ((1, "Accepted"), (20, "Departed facility"), (40, "Arrived at hub"))
        ]
        snapshot = TrackingSnapshot(
            carrier="simulated",
            tracking_number=f"SIM-ONTIME-{number}",
            status=OrderStatus.IN_TRANSIT,
            events=scans,
            estimated_delivery=now + timedelta(days=3),
        )
        tracked = machine.on_tracking(shipped.state, snapshot, policy, now)
        final = tracked.state
        await store.record_change(
            ChangeRecord(
                view=order_view(order, final, token, timeline=False),
                entries=shipped.entries + tracked.entries,
            )
        )
        seeded.append((order.order_id, token))
    return seeded


# For each request wrk picks a path of a file (a token, an order id): at random, or in `once` mode
# each in turn, saying WARMED when all have been asked for; it prints its summary as one JSON line,
# latencies in microseconds. Random is seeded per thread, so threads do not walk the same sequence.
WRK_SCRIPT = """
local paths, headers, once, asked = {}, {}, false, 0
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  if args[2] ~= "-" then headers["Authorization"] = "Bearer " .. args[2] end
  once = args[3] == "once"
  math.randomseed(os.time() + tonumber(tostring(paths):match("0x(%x+)") or "0", 16))
end
function request()
  local index = math.random(#paths)
  if once then
    asked = asked + 1
    if asked == #paths + 1 then io.write("WARMED\\n"); io.flush() end
    index = (asked - 1) % #paths + 1
  end
  return wrk.format("GET", paths[index], headers)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"errors": %d, "bad_status": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""
WRK_MISSING = (
    "bench/read_path.py drives HTTP with wrk, which is not installed: "
    "`apt-get install wrk` (Debian, Ubuntu), `brew install wrk` (macOS), or build it from "
    "https://github.com/wg/wrk"
)


@dataclass(frozen=True)
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float | None  # the server process's CPU time per request (None off Linux)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far, from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Server:
    base_url: str
    pid: int


@dataclass(frozen=True)
class Wrk:
    """wrk against one server. Run as a subprocess of the event loop, not blocking it: the worker in
    this process answers the query route's queries meanwhile."""

    server: Server
    workdir: Path
    seconds: int
    connections: int

    async def _start(
        self, threads: int, seconds: int, paths: list[str], *args: str
    ) -> asyncio.subprocess.Process:
        script, listing = self.workdir / "pick.lua", self.workdir / f"paths-{uuid.uuid4().hex[:6]}.txt"
        script.write_text(WRK_SCRIPT)
        listing.write_text("\n".join(paths) + "\n")
        return await asyncio.create_subprocess_exec(
            "wrk", f"-t{threads}", f"-c{self.connections}", f"-d{seconds}s", "--timeout", "10s",
            "-s", str(script), self.server.base_url, "--", str(listing), *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip

    async def measure(self, paths: list[str], api_key: str | None = None) -> Result:
        """Requests for random ones of `paths` for `seconds`: req/s, p50, p99 and the server's CPU
        per request (which, unlike the others, other work on the machine barely moves)."""
        cpu_before = cpu_seconds(self.server.pid)
        process = await self._start(WRK_THREADS, self.seconds, paths, api_key or "-")
        output = (await process.communicate())[0].decode()
        cpu_after = cpu_seconds(self.server.pid)
        found = [line for line in output.splitlines() if line.startswith("WRK_RESULT ")]
        if process.returncode != 0 or not found:
            raise RuntimeError(f"wrk failed ({process.returncode}):\n{output}")
        summary = json.loads(found[0].removeprefix("WRK_RESULT "))
        if summary["errors"] or summary["bad_status"]:
            failed = f"{summary['errors']} socket errors, {summary['bad_status']} answers not 2xx or 3xx"
            raise RuntimeError(f"{paths[0]} and others: {failed}")
        requests = summary["requests"]
        cpu = None if cpu_before is None or cpu_after is None else (cpu_after - cpu_before) * 1e6 / requests
        return Result(
            requests / (summary["duration_us"] / 1e6), summary["p50_us"] / 1e3, summary["p99_us"] / 1e3, cpu
        )

    async def warm(self, paths: list[str], api_key: str | None = None) -> None:
        """Each of `paths` asked for once, as first views would (the server renders and keeps them)."""
        process = await self._start(1, 3600, paths, api_key or "-", "once")
        assert process.stdout is not None
        try:
            async for line in process.stdout:
                if line.startswith(b"WARMED"):
                    return
            raise RuntimeError(f"wrk stopped before asking for every path ({await process.wait()})")
        finally:
            if process.returncode is None:
                process.terminate()
                await process.wait()


async def wait_ready(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def throwaway_postgres() -> tuple[str, Callable[[], Awaitable[None]]]:
    """A fresh database on the local server, and how to drop it."""
    import asyncpg

    name = f"ordertrack_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="test")
    await admin.execute(f'CREATE DATABASE "{name}"')

    async def drop() -> None:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", drop


BARE_PREFIX = "/bench/bare/"


def serve_with_bench_routes(port: int) -> None:
    """The server under test: `ordertrack serve`'s app, plus on the same uvicorn a route that answers
    from a Temporal query (both read paths cross the same HTTP stack in the same process) and a bare
    FastAPI app (no middleware, no database) whose `GET /bench/bare/{size}` serves `size` bytes of
    HTML: the ceiling this HTTP stack puts on any page of that size."""
    from fastapi import Depends, FastAPI
    from fastapi.responses import HTMLResponse
    from starlette.types import Receive, Scope, Send
    from temporalio.client import Client

    from ordertrack.serving import run, serve_app
    from ordertrack.settings import get_settings
    from ordertrack.web.app import create_app
    from ordertrack.web.temporal import get_temporal

    app = create_app(get_settings())

    @app.get("/bench/query/{order_id}")
    async def by_query(order_id: str, client: Annotated[Client, Depends(get_temporal)]) -> dict[str, object]:
        view = await orders.get_order(client, order_id)
        return view.model_dump(mode="json")

    bare = FastAPI(openapi_url=None)

    @bare.get(BARE_PREFIX + "{size}")
    async def bare_bytes(size: int) -> HTMLResponse:
        return HTMLResponse(b"x" * size)

    async def both(scope: Scope, receive: Receive, send: Send) -> None:
        target = bare if scope["type"] == "http" and scope["path"].startswith(BARE_PREFIX) else app
        await target(scope, receive, send)

    run(serve_app(both, "127.0.0.1", port))  # on the loop `ordertrack serve` runs on


async def start_running_orders(settings: Settings, count: int) -> list[str]:
    client = await connect(settings)
    started = []
    for number in range(count):
        order = sample_order(
            f"bench-q-{number:03d}-{uuid.uuid4().hex[:4]}", "Ana Souza", "pt-BR", "São Paulo", "BR", True
        )
        await orders.start_order(client, order, settings.timing_policy(), settings.task_queue)
        started.append(order.order_id)
    return started


PAGE = "GET /t/{token} (read model)"
API = "GET /api/orders/{id} (read model)"
QUERY = "GET /bench/query/{id} (Temporal query)"
HEALTH = "GET /healthz"
BARE = "GET bare FastAPI route, same bytes"
PAGE_UNKEPT = "GET /t/{token}, nothing kept (first views)"
API_UNKEPT = "GET /api/orders/{id}, nothing kept"


async def main(count: int, seconds: int, connections: int, postgres: bool) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="ordertrack-bench-"))
    database_url = f"sqlite+aiosqlite:///{workdir / 'orders.db'}"
    drop_database = None
    if postgres:
        database_url, drop_database = await throwaway_postgres()
    try:
        await migrate(database_url)
        store = Store.from_url(database_url)
        began = time.perf_counter()
        seeded = await seed(store, count)
        await store.close()
        print(f"seeded {count} orders in {time.perf_counter() - began:.1f} s", flush=True)
        results, page_bytes = await run(workdir, database_url, seeded, seconds, connections)
    finally:
        if drop_database is not None:
            await drop_database()
    report(results, page_bytes, count, "PostgreSQL" if postgres else "SQLite", seconds, connections)


async def run(
    workdir: Path, database_url: str, seeded: list[tuple[str, str]], seconds: int, connections: int
) -> tuple[dict[str, Result], int]:
    temporal = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_cli(),
        search_attributes=sa.ALL,
        port=free_port(),
    )
    sink = MailSink(workdir / "mail", port=free_port())
    sink.start()
    settings = Settings(
        temporal_address=temporal.client.service_client.config.target_host,
        database_url=database_url,
        smtp_port=sink.port,
        task_queue=f"bench-{uuid.uuid4().hex[:6]}",
    )
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("ORDERTRACK_")},
        "ORDERTRACK_DATABASE_URL": database_url,
        "ORDERTRACK_TEMPORAL_ADDRESS": settings.temporal_address,
        "ORDERTRACK_API_KEYS": json.dumps({API_KEY: {"role": "shop", "name": "bench"}}),
    }
    pages = [f"/t/{token}" for _, token in seeded]
    reads = [f"/api/orders/{order_id}" for order_id, _ in seeded]
    try:
        async with order_worker(temporal.client, settings) as worker:
            running = asyncio.create_task(worker.run())
            queried = await start_running_orders(settings, QUERIED_ORDERS)
            async with serving(env) as server:
                async with httpx.AsyncClient(base_url=server.base_url) as http:
                    page_bytes = len((await http.get(pages[0])).content)
                load = Wrk(server, workdir, seconds, connections)
                # Steady state: every order's page and answer made once, as its first view would.
                await load.warm(pages)
                await load.warm(reads, API_KEY)
                results = {
                    PAGE: await load.measure(pages),
                    API: await load.measure(reads, API_KEY),
                    QUERY: await load.measure([f"/bench/query/{order_id}" for order_id in queried]),
                    HEALTH: await load.measure(["/healthz"]),
                    BARE: await load.measure([f"{BARE_PREFIX}{page_bytes}"]),
                }
            # Nothing kept: each view is what a first view after a change costs.
            async with serving({**env, "ORDERTRACK_READ_CACHE_MB": "0"}) as server:
                load = Wrk(server, workdir, seconds, connections)
                results[PAGE_UNKEPT] = await load.measure(pages)
                results[API_UNKEPT] = await load.measure(reads, API_KEY)
            await worker.shutdown()
            await running
    finally:
        sink.stop()
        await temporal.shutdown()
    return results, page_bytes


@contextlib.asynccontextmanager
async def serving(env: dict[str, str]) -> AsyncIterator[Server]:
    """The server under test in its own process, for the block."""
    port = free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 - started before any load
        [sys.executable, __file__, "--serve", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        server = Server(f"http://127.0.0.1:{port}", process.pid)
        await wait_ready(f"{server.base_url}/healthz")
        yield server
    finally:
        process.terminate()
        process.wait(timeout=20)


def report(
    results: dict[str, Result], page_bytes: int, count: int, store_kind: str, seconds: int, connections: int
) -> None:
    print(
        f"{count} orders in {store_kind}; {QUERIED_ORDERS} running workflows for the query path; "
        f"wrk, {connections} connections, {seconds} s per route; one machine "
        f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}); pages of {page_bytes} bytes"
    )
    print(
        f"{'route (all over HTTP, same server)':<44} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'server CPU us/req':>18}"
    )
    for name, result in results.items():
        cpu = "-" if result.cpu_us is None else f"{result.cpu_us:.0f}"
        print(f"{name:<44} {result.rps:>8.0f} {result.p50_ms:>8.1f} {result.p99_ms:>8.1f} {cpu:>18}")
    for what, over, of in (
        ("page/bare", PAGE, BARE),
        ("page/query", PAGE, QUERY),
        ("api/query", API, QUERY),
        ("first view/query", PAGE_UNKEPT, QUERY),
    ):
        print(
            f"{what}: {results[over].rps / results[of].rps:.2f}x the req/s, "
            f"p99 {results[over].p99_ms / results[of].p99_ms:.2f}x"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--postgres", action="store_true", help="read model on the local PostgreSQL")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the server under test
    arguments = parser.parse_args()
    if arguments.serve:
        serve_with_bench_routes(arguments.serve)
    elif shutil.which("wrk") is None:
        sys.exit(WRK_MISSING)
    else:
        asyncio.run(main(arguments.orders, arguments.seconds, arguments.connections, arguments.postgres))
