"""What one order costs on Temporal Cloud, before and after the cost-per-order patch, per journey.

Each simulated journey (the simulated carrier's, played on the server's clock) runs twice on a fresh
time-skipping server with the real workflow and activities (SQLite read model, SMTP sink): once on
the path orders took before the patch (the workflow with the patch forced off, as orders started
before it still run) and once on today's. Printed per journey: billable actions by kind, counted
from the history the way Cloud bills them (`tests/workflows/costs.py`; a poll's attempts as the
worker ran them, since a poll cancelled while it waits leaves them out of history), carrier calls
and history events, side by side with the ratio after/before; then, for today's path, what the
order costs the worker and leaves behind: the CPU time of this process while the order ran (the
worker, and the harness driving it: an upper bound of the worker's share; the Temporal server is
another process), its history's size in bytes (what Temporal keeps and Cloud bills as storage) and
its rows and bytes in the read model, by table (SQLite's own page accounting, `dbstat`).

    .venv/bin/python bench/cost_per_order.py [--journeys SIM-ONTIME- SIM-LOST- ...]

Every order ships at 09:00 UTC, as in the tests: the count of polls on the estimated day depends on
the hour the simulated carrier goes out for delivery, which follows the hour it first saw the parcel.
"""

import argparse
import asyncio
import resource
import sqlite3
import sys
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from temporalio import workflow
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

sys.path.insert(0, str(Path(__file__).parents[1]))  # the tests' harness, from a checkout

from ordertrack.carriers import journeys
from ordertrack.domain.messages import OrderInput
from ordertrack.domain.models import Order
from ordertrack.domain.view import OrderView
from ordertrack.mail.sink import MailSink
from starter.client import register_search_attributes
from starter.devserver import time_skipping_server
from tests.conftest import TEST_CLOCK_STARTS_AT, eventually, free_port, skip_to
from tests.workflows.costs import billable_actions
from tests.workflows.harness import Harness, order_worker
from tests.workflows.test_order_workflow import new_order, ship, start
from workflows.order import MESSAGES_V2, OrderWorkflow

# Rows in this order; kinds that only one side has show "-" on the other.
KINDS = (
    "start",
    "update",
    "signal",
    "upsert",
    "timer",
    "poll_carrier",
    "send_notification",
    "send_sms",
    "record_change",
    "save_order",
    "local activities",
)


@workflow.defn(name="OrderWorkflow", sandboxed=False)
class OrderWorkflowBefore(OrderWorkflow):
    """Today's workflow with the cost-per-order patch forced off: the path of orders started before."""

    @workflow.run
    async def run(self, input: OrderInput) -> OrderView:
        return await super().run(input)

    def _paths(self, order: Order) -> tuple[bool, bool, bool]:
        return False, False, workflow.patched(MESSAGES_V2)


@dataclass
class Cost:
    actions: Counter[str]
    carrier_calls: int
    events: int
    cpu_seconds: float
    history_bytes: int
    read_model: dict[str, tuple[int, int]]  # table: (rows, bytes of its rows and index entries)


def read_model_footprint(database: Path) -> dict[str, tuple[int, int]]:
    """Rows and payload bytes per table of a read model that holds this one order (and the indexes'
    entries for them, counted with their table), from SQLite's `dbstat`."""
    with sqlite3.connect(database) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        footprint = {}
        for table in tables:
            if table.startswith("sqlite_") or table == "alembic_version":
                continue
            (rows,) = db.execute(f'SELECT count(*) FROM "{table}"').fetchone()
            (size,) = db.execute(
                "SELECT coalesce(sum(payload), 0) FROM dbstat WHERE name = ? OR name IN "
                "(SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?)",
                (table, table),
            ).fetchone()
            if rows:
                footprint[table] = (rows, size)
        return footprint


async def run_journey(prefix: str, workflow_class: type) -> Cost:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=time_skipping_server()
    )
    await register_search_attributes(env.client)
    await skip_to(env, TEST_CLOCK_STARTS_AT)
    workdir = Path(tempfile.mkdtemp(prefix="ordertrack-bench-"))
    try:
        with MailSink(workdir / "mail", port=free_port()) as sink:
            queue = f"bench-{uuid.uuid4().hex[:8]}"
            async with order_worker(env, workdir, sink, queue, workflow=workflow_class) as harness:
                return await _run(harness, prefix, workdir / "orders.db")
    finally:
        await env.shutdown()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _run(harness: Harness, prefix: str, database: Path) -> Cost:
    cpu_before = cpu_seconds()
    order = new_order()
    handle = await start(harness, order)

    async def confirmation_sent() -> bool:  # the warehouse starts once it is out, as it would
        return "confirmation" in harness.kinds_mailed(order.customer.email)

    await eventually(confirmation_sent, "the confirmation sent")
    number = f"{prefix}{order.order_id}"
    await ship(harness, order, number)
    await harness.run_to_end(handle)
    cpu = cpu_seconds() - cpu_before
    events = (await handle.fetch_history()).events
    return Cost(
        billable_actions(events, harness.attempts),
        harness.carrier.calls[number],
        len(events),
        cpu,
        sum(event.ByteSize() for event in events),
        read_model_footprint(database),
    )


def ratio(before: int, after: int) -> str:
    return f"{after / before:.2f}" if before else ""


def report(prefix: str, before: Cost, after: Cost) -> list[str]:
    lines = [f"{prefix:<20}{'before':>8}{'after':>8}{'after/before':>14}"]
    for kind in KINDS:
        if kind in before.actions or kind in after.actions:
            old, new = (side.actions.get(kind, "-") for side in (before, after))
            lines.append(f"  {kind:<18}{old:>8}{new:>8}")
    totals = [
        ("billable actions", sum(before.actions.values()), sum(after.actions.values())),
        ("carrier calls", before.carrier_calls, after.carrier_calls),
        ("history events", before.events, after.events),
    ]
    lines += [f"  {name:<18}{old:>8}{new:>8}{ratio(old, new):>14}" for name, old, new in totals]
    return lines


async def main(prefixes: list[str]) -> None:
    summary = []
    for prefix in prefixes:
        before = await run_journey(prefix, OrderWorkflowBefore)
        after = await run_journey(prefix, OrderWorkflow)
        print("\n".join(report(prefix, before, after)), end="\n\n", flush=True)
        summary.append((prefix, before, after))
    print(f"{'journey':<16}{'actions':>16}{'carrier calls':>18}{'events':>16}")
    for prefix, before, after in summary:
        actions = f"{sum(before.actions.values())} -> {sum(after.actions.values())}"
        calls = f"{before.carrier_calls} -> {after.carrier_calls}"
        print(f"{prefix:<16}{actions:>16}{calls:>18}{f'{before.events} -> {after.events}':>16}")
    print("\nWhat one finished order leaves behind, today's path:")
    print(f"{'journey':<16}{'CPU ms':>8}{'history bytes':>15}  read model (rows, payload bytes by table)")
    for prefix, _, after in summary:
        tables = ", ".join(f"{name} {rows} ({size:,} B)" for name, (rows, size) in after.read_model.items())
        total = sum(size for _, size in after.read_model.values())
        cpu_ms = after.cpu_seconds * 1e3
        print(f"{prefix:<16}{cpu_ms:>8.0f}{after.history_bytes:>15,}  {tables}; {total:,} B in all")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--journeys", nargs="+", default=[journey.prefix for journey in journeys.JOURNEYS], metavar="PREFIX"
    )
    asyncio.run(main(parser.parse_args().journeys))
