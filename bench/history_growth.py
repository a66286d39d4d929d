"""History size against poll count: the same on-time journey polled ~10 times and ~200 times.

Everything real and in one run: a Temporal dev server, the simulated carrier over HTTP, the worker,
an SMTP sink and a SQLite read model. Prints each order's polls and history events, and the ratios.

    .venv/bin/python bench/history_growth.py [--journey-seconds 240]

Temporal does not retry an activity sooner than about a second apart, so ~200 polls need a journey
of a few minutes.
"""

import argparse
import asyncio
import tempfile
import uuid
from datetime import time, timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from ordertrack import orders
from ordertrack.carriers.simulator import FaultConfig, serve_simulator
from ordertrack.domain.messages import FulfillmentUpdate
from ordertrack.domain.statuses import FulfillmentEvent
from ordertrack.mail.sink import MailSink
from ordertrack.names import SearchAttributes as sa
from ordertrack.settings import Settings
from starter.demo import sample_order
from starter.devserver import temporal_cli
from worker import order_worker

JOURNEY_HOURS = 72  # the on-time journey, first scan to delivery


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_order(
    client: Client, settings: Settings, polls_wanted: int, journey: float
) -> tuple[float, int, int]:
    interval = timedelta(seconds=journey / polls_wanted)
    # One pace for the whole journey: the adaptive bounds pinned to the interval.
    pace = {"carrier_poll_interval": interval, "carrier_poll_min": interval, "carrier_poll_max": interval}
    policy = settings.timing_policy().model_copy(update=pace)
    order = sample_order(f"bench-{uuid.uuid4().hex[:8]}", "Ana Souza", "en", "Porto", "PT", paid=True)
    await orders.start_order(client, order, policy, settings.task_queue)
    shipped = FulfillmentUpdate(
        event=FulfillmentEvent.SHIPPED, carrier="simulated", tracking_number=f"SIM-ONTIME-{order.order_id}"
    )
    await orders.record_fulfillment(client, order.order_id, shipped)
    handle = client.get_workflow_handle(f"order-{order.order_id}")
    await handle.result()
    polls = await orders.carrier_poll_count(client, order.order_id)
    return interval.total_seconds(), polls, len((await handle.fetch_history()).events)


async def main(journey: float) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="ordertrack-bench-"))
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_cli(),
        search_attributes=sa.ALL,
        port=free_port(),
    )
    sink = MailSink(workdir / "mail", port=free_port())
    sim_port = free_port()
    settings = Settings(
        temporal_address=env.client.service_client.config.target_host,
        database_url=f"sqlite+aiosqlite:///{workdir / 'orders.db'}",
        smtp_port=sink.port,
        simulated_carrier_url=f"http://127.0.0.1:{sim_port}",
        review_request_delay=timedelta(seconds=1),
        stale_tracking_after=timedelta(seconds=journey),
        # Quiet hours off: the review request would wait for the customer's morning in real time.
        daytime_starts=time(0, 0),
        daytime_ends=time(0, 0),
    )
    stop = asyncio.Event()
    speed = JOURNEY_HOURS * 3600 / journey
    sim = asyncio.create_task(serve_simulator("127.0.0.1", sim_port, speed, FaultConfig(), stop=stop))
    sink.start()
    try:
        async with order_worker(env.client, settings) as worker:
            running = asyncio.create_task(worker.run())
            few, many = await asyncio.gather(
                run_order(env.client, settings, 10, journey), run_order(env.client, settings, 200, journey)
            )
            await worker.shutdown()
            await running
    finally:
        stop.set()
        await sim
        sink.stop()
        await env.shutdown()

    print(
        f"on-time journey of {JOURNEY_HOURS} carrier hours played in {journey:g} s (simulator at {speed:g}x)"
    )
    print(f"{'poll every':>12} {'polls':>7} {'history events':>15}")
    for interval, polls, events in (few, many):
        print(f"{interval:>11.2f}s {polls:>7} {events:>15}")
    print(f"polls ratio {many[1] / few[1]:.1f}x, history ratio {many[2] / few[2]:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--journey-seconds", type=float, default=240.0, help="real seconds for the 72 h journey"
    )
    asyncio.run(main(parser.parse_args().journey_seconds))
