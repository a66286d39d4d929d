"""Reading an order: the read model over HTTP against a Temporal query, side by side in one run.

Seeds 10,000 orders into a SQLite read model, serves them with `ordertrack serve` in its own
process, and drives `GET /t/{token}` and `GET /api/orders/{id}` with concurrent clients for a
fixed time each; then reads one running order through the workflow's `status` query the same way.
Prints requests per second and p50/p99 latency for each, and the ratios.

    .venv/bin/python bench/read_path.py [--orders 10000] [--seconds 10] [--concurrency 16] [--postgres]

With --postgres the read model is a throwaway database on the local PostgreSQL (127.0.0.1:5432),
as in production; by default it is a SQLite file, as under `ordertrack up`.
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
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
        start = machine.on_start(order, now)
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


async def drive(
    call: Callable[[], Awaitable[None]], seconds: float, concurrency: int
) -> tuple[float, float, float]:
    """Run `call` from `concurrency` loops for `seconds`: requests per second, p50 and p99 in ms."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - began) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    quantiles = statistics.quantiles(latencies, n=100)
    return len(latencies) / elapsed, quantiles[49], quantiles[98]


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


def serve_with_query_route(port: int) -> None:
    """The server under test: `ordertrack serve`'s app plus one route that answers from a Temporal
    query, so both read paths cross the same HTTP stack in the same process."""
    from fastapi import Depends
    from temporalio.client import Client

    from ordertrack.serving import serve_app
    from ordertrack.settings import get_settings
    from ordertrack.web.app import create_app
    from ordertrack.web.temporal import get_temporal

    app = create_app(get_settings())

    @app.get("/bench/query/{order_id}")
    async def by_query(order_id: str, client: Annotated[Client, Depends(get_temporal)]) -> dict[str, object]:
        view = await orders.get_order(client, order_id)
        return view.model_dump(mode="json")

    asyncio.run(serve_app(app, "127.0.0.1", port))


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


async def main(count: int, seconds: float, concurrency: int, postgres: bool) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="ordertrack-bench-"))
    database_url = f"sqlite+aiosqlite:///{workdir / 'orders.db'}"
    drop_database = None
    if postgres:
        database_url, drop_database = await throwaway_postgres()
    await migrate(database_url)
    store = Store.from_url(database_url)
    began = time.perf_counter()
    seeded = await seed(store, count)
    await store.close()
    print(f"seeded {count} orders in {time.perf_counter() - began:.1f} s")

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
    port = free_port()
    env = {
        **os.environ,
        "ORDERTRACK_DATABASE_URL": database_url,
        "ORDERTRACK_TEMPORAL_ADDRESS": settings.temporal_address,
        "ORDERTRACK_API_KEYS": json.dumps({API_KEY: {"role": "shop", "name": "bench"}}),
    }
    results: dict[str, tuple[float, float, float]] = {}
    try:
        async with order_worker(temporal.client, settings) as worker:
            running = asyncio.create_task(worker.run())
            queried = await start_running_orders(settings, QUERIED_ORDERS)
            server = subprocess.Popen(  # noqa: ASYNC220 - started once, before any load
                [sys.executable, __file__, "--serve", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                await wait_ready(f"http://127.0.0.1:{port}/healthz")
                results = await measure(port, seeded, queried, seconds, concurrency)
            finally:
                server.terminate()
                server.wait(timeout=20)
            await worker.shutdown()
            await running
    finally:
        sink.stop()
        await temporal.shutdown()
        if drop_database is not None:
            await drop_database()

    store_kind = "PostgreSQL" if postgres else "SQLite"
    print(
        f"{count} orders in {store_kind}; {QUERIED_ORDERS} running workflows for the query path; "
        f"{concurrency} concurrent clients, {seconds:g} s per path; one machine (2 cores)"
    )
    print(f"{'read path (all over HTTP, same server)':<44} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, (rps, p50, p99) in results.items():
        print(f"{name:<44} {rps:>8.0f} {p50:>8.1f} {p99:>8.1f}")
    query_rps, _, query_p99 = results[QUERY_PATH]
    for name in (PAGE_PATH, API_PATH):
        rps, _, p99 = results[name]
        print(
            f"{name}: {rps / query_rps:.2f}x the query path's req/s; "
            f"p99 {p99 / query_p99:.2f}x the query path's"
        )


PAGE_PATH = "GET /t/{token} (read model)"
API_PATH = "GET /api/orders/{id} (read model)"
QUERY_PATH = "GET /bench/query/{id} (Temporal query)"


async def measure(
    port: int, seeded: list[tuple[str, str]], queried: list[str], seconds: float, concurrency: int
) -> dict[str, tuple[float, float, float]]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    auth = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as http:

        async def expect_ok(path: str, headers: dict[str, str] | None = None) -> None:
            response = await http.get(path, headers=headers)
            assert response.status_code == 200, (path, response.status_code)

        async def page() -> None:
            await expect_ok(f"/t/{random.choice(seeded)[1]}")

        async def api() -> None:
            await expect_ok(f"/api/orders/{random.choice(seeded)[0]}", auth)

        async def query() -> None:
            await expect_ok(f"/bench/query/{random.choice(queried)}")

        return {
            PAGE_PATH: await drive(page, seconds, concurrency),
            API_PATH: await drive(api, seconds, concurrency),
            QUERY_PATH: await drive(query, seconds, concurrency),
        }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--postgres", action="store_true", help="read model on the local PostgreSQL")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the server under test
    arguments = parser.parse_args()
    if arguments.serve:
        serve_with_query_route(arguments.serve)
    else:
        asyncio.run(main(arguments.orders, arguments.seconds, arguments.concurrency, arguments.postgres))
