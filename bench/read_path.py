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

import httpx
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from ordertrack.domain import machine
from ordertrack.domain.messages import FulfillmentUpdate
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.records import ChangeRecord, OrderRecord
from ordertrack.domain.statuses import FulfillmentEvent, OrderStatus
from ordertrack.domain.tracking import TrackingEvent, TrackingSnapshot
from ordertrack.domain.view import order_view
from ordertrack.mail.sink import MailSink
from ordertrack.settings import Settings
from ordertrack.store.migrate import migrate
from ordertrack.store.repository import Store
from starter import client as orders
from starter.demo import sample_order
from starter.devserver import temporal_cli
from worker import order_worker
from workflows import search_attributes as sa
from workflows.order import OrderWorkflow

API_KEY = "bench-shop-key"


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
        token = orders.new_tracking_token()
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

    port = free_port()
    env = {
        **os.environ,
        "ORDERTRACK_DATABASE_URL": database_url,
        "ORDERTRACK_API_KEYS": json.dumps({API_KEY: {"role": "shop", "name": "bench"}}),
    }
    server = subprocess.Popen(  # noqa: ASYNC220 - started once, before any load
        [str(Path(sys.executable).parent / "ordertrack"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    results: dict[str, tuple[float, float, float]] = {}
    try:
        await wait_ready(f"{base}/healthz")
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base, limits=limits) as http:

            async def page() -> None:
                response = await http.get(f"/t/{random.choice(seeded)[1]}")
                assert response.status_code == 200, response.status_code

            async def api() -> None:
                response = await http.get(
                    f"/api/orders/{random.choice(seeded)[0]}", headers={"Authorization": f"Bearer {API_KEY}"}
                )
                assert response.status_code == 200, response.status_code

            results["GET /t/{token} (read model)"] = await drive(page, seconds, concurrency)
            results["GET /api/orders/{id} (read model)"] = await drive(api, seconds, concurrency)
    finally:
        server.terminate()
        server.wait(timeout=20)

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
    try:
        async with order_worker(temporal.client, settings) as worker:
            running = asyncio.create_task(worker.run())
            order = sample_order(
                f"bench-q-{uuid.uuid4().hex[:6]}", "Ana Souza", "pt-BR", "São Paulo", "BR", paid=True
            )
            await orders.start_order(temporal.client, order, settings.timing_policy(), settings.task_queue)
            handle = temporal.client.get_workflow_handle_for(OrderWorkflow.run, f"order-{order.order_id}")

            async def query() -> None:
                await handle.query(OrderWorkflow.status)

            await query()
            results["Temporal query `status` (same order)"] = await drive(query, seconds, concurrency)
            await worker.shutdown()
            await running
    finally:
        sink.stop()
        await temporal.shutdown()

    if drop_database is not None:
        await drop_database()
    store_kind = "PostgreSQL" if postgres else "SQLite"
    print(
        f"{count} orders in {store_kind}, {concurrency} concurrent clients, {seconds:g} s each, "
        "one machine (2 cores)"
    )
    print(f"{'read path':<40} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, (rps, p50, p99) in results.items():
        print(f"{name:<40} {rps:>8.0f} {p50:>8.1f} {p99:>8.1f}")
    query_rps, _, query_p99 = results["Temporal query `status` (same order)"]
    for name in list(results)[:2]:
        rps, _, p99 = results[name]
        print(
            f"{name}: {rps / query_rps:.1f}x the query's requests per second, "
            f"p99 {query_p99 / p99:.1f}x lower"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--postgres", action="store_true", help="read model on the local PostgreSQL")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.orders, arguments.seconds, arguments.concurrency, arguments.postgres))
