"""Operator tools on a real dev server: visibility queries per status and delay, `order list`,
`stats`, and bulk corrections from a CSV, with an in-process worker and the CLI as a subprocess.

Orders here get a unique id prefix and carrier, so other tests' orders on the shared dev server
never show up in the counts.
"""

import asyncio
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from ordertrack import orders
from ordertrack.domain.messages import CancelRequest, CorrectionRequest, FulfillmentUpdate
from ordertrack.domain.models import Order
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.statuses import FulfillmentEvent, OrderStatus
from ordertrack.domain.view import OrderView
from ordertrack.mail.sink import MailSink
from starter.devserver import temporal_cli
from tests.conftest import eventually
from tests.e2e.stack import Stack
from tests.factories import order_data
from tests.workflows.harness import Harness, order_worker

pytestmark = pytest.mark.e2e

VISIBILITY_WAIT = 60.0  # seconds; visibility is eventually consistent (and slow on a loaded machine)
PENDING = {"status": "pending", "method": "pix"}
DEFAULT = TimingPolicy()
LATE = TimingPolicy(ship_by=timedelta(seconds=1))  # misses its ship-by date almost at once


class Shop:
    """Brings orders to a status through the same updates the shop and operators send."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.client = harness.client
        tag = uuid.uuid4().hex[:8]
        self.prefix = f"opt{tag}-"
        self.carrier = f"opt{tag}"  # no adapter: polling gives up and the status stays put
        self.count = 0

    async def order(self, *events: FulfillmentEvent, policy: TimingPolicy = DEFAULT, **data: object) -> str:
        self.count += 1
        order_id = f"{self.prefix}{self.count}"
        order = Order.model_validate(order_data(order_id=order_id, **data))
        await orders.start_order(self.client, order, policy, self.harness.task_queue)
        self.harness.started.append(f"order-{order_id}")
        for event in events:
            labelled = event in (FulfillmentEvent.PACKED, FulfillmentEvent.SHIPPED)
            update = FulfillmentUpdate(
                event=event,
                carrier=self.carrier if labelled else None,
                tracking_number=f"TN-{order_id}".upper() if labelled else None,
            )
            await orders.record_fulfillment(self.client, order_id, update)
        return order_id

    async def correct(self, order_id: str, status: OrderStatus) -> None:
        request = CorrectionRequest(status=status, reason="set up by the test", operator="test-setup")
        await orders.correct_status(self.client, order_id, request)

    async def until_delayed(self, order_id: str) -> None:
        async def delayed() -> bool:
            return (await orders.get_order(self.client, order_id)).delayed

        await eventually(delayed, f"order {order_id} delayed", within=60)


async def visible(client: Client, query: str, expected: set[str]) -> set[str]:
    """The order ids `query` finds, once they are `expected` or the bounded wait is over."""
    found: set[str] = set()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + VISIBILITY_WAIT
    while loop.time() < deadline:
        found = {row.order_id for row in await orders.list_orders(client, query, limit=1000)}
        if found == expected:
            break
        await asyncio.sleep(0.3)
    return found


@pytest.fixture
async def harness(
    dev_env: WorkflowEnvironment, tmp_path: Path, mail_sink: MailSink
) -> AsyncIterator[Harness]:
    async with order_worker(dev_env, tmp_path, mail_sink, f"ops-{uuid.uuid4().hex[:8]}") as running:
        yield running


@pytest.fixture
def stack(dev_env: WorkflowEnvironment, tmp_path: Path, mail_sink: MailSink, harness: Harness) -> Stack:
    """Only for its environment and `cli()`: the worker is the in-process one."""
    return Stack(
        temporal_address=dev_env.client.service_client.config.target_host,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}",
        sink=mail_sink,
        sim_port=0,
        workdir=tmp_path,
        task_queue=harness.task_queue,
    )


async def test_visibility_list_stats_and_bulk_corrections(harness: Harness, stack: Stack) -> None:
    shop = Shop(harness)
    pick, pack, ship = FulfillmentEvent.PICKING_STARTED, FulfillmentEvent.PACKED, FulfillmentEvent.SHIPPED
    received = await shop.order(payment=PENDING)
    confirmed = await shop.order()
    picking = await shop.order(pick)
    packed = await shop.order(pick, pack)
    shipped = await shop.order(pick, pack, ship)
    in_transit = await shop.order(pick, pack, ship)
    await shop.correct(in_transit, OrderStatus.IN_TRANSIT)
    delivered = await shop.order(ship)
    await shop.correct(delivered, OrderStatus.IN_TRANSIT)
    await shop.correct(delivered, OrderStatus.DELIVERED)
    late_confirmed = await shop.order(policy=LATE)
    late_in_transit = await shop.order(policy=LATE)
    await shop.until_delayed(late_in_transit)
    for event in (pick, pack, ship):
        labelled = event != pick
        update = FulfillmentUpdate(
            event=event,
            carrier=shop.carrier if labelled else None,
            tracking_number="TN-LATE-1" if labelled else None,
        )
        await orders.record_fulfillment(shop.client, late_in_transit, update)
    await shop.correct(late_in_transit, OrderStatus.IN_TRANSIT)
    await shop.until_delayed(late_confirmed)
    cancelled = await shop.order()
    await orders.cancel_order(
        shop.client, cancelled, CancelRequest(reason="customer asked", operator="ops-bo")
    )

    expected = {
        OrderStatus.RECEIVED: {received},
        OrderStatus.CONFIRMED: {confirmed, late_confirmed},
        OrderStatus.PICKING: {picking},
        OrderStatus.PACKED: {packed},
        OrderStatus.SHIPPED: {shipped},
        OrderStatus.IN_TRANSIT: {in_transit, late_in_transit},
        OrderStatus.DELIVERED: {delivered},
        OrderStatus.CANCELLED: {cancelled},
    }
    everyone = set().union(*expected.values())
    delayed = {late_confirmed, late_in_transit}
    with_carrier = {packed, shipped, in_transit, delivered, late_in_transit}

    # Temporal visibility, as the UI and `temporal workflow list --query` see it.
    client = shop.client
    for status in OrderStatus:
        query = orders.orders_query(status.value, id_prefix=shop.prefix)
        assert await visible(client, query, expected.get(status, set())) == expected.get(status, set()), (
            status
        )
    assert await visible(client, orders.orders_query(delayed=True, id_prefix=shop.prefix), delayed) == delayed
    both = orders.orders_query("in_transit", True, id_prefix=shop.prefix)
    assert await visible(client, both, {late_in_transit}) == {late_in_transit}
    by_carrier = orders.orders_query(carrier=shop.carrier)
    assert await visible(client, by_carrier, with_carrier) == with_carrier
    running = orders.orders_query(id_prefix=shop.prefix, running=True)
    assert await visible(client, running, everyone - {cancelled}) == everyone - {cancelled}

    # `ordertrack order list`, as a subprocess.
    for status, ids in expected.items():
        out = await stack.cli_ok("order", "list", "--status", status.value, "--prefix", shop.prefix)
        assert {line.split()[0] for line in out.splitlines()} == ids, status
        assert all(line.split()[1] == status.value for line in out.splitlines())
    out = await stack.cli_ok("order", "list", "--delayed", "--prefix", shop.prefix, "--json")
    rows = json.loads(out)
    assert {row["order_id"] for row in rows} == delayed
    assert all(row["delayed"] is True and row["workflow_id"] == f"order-{row['order_id']}" for row in rows)
    out = await stack.cli_ok("order", "list", "--carrier", shop.carrier.upper(), "--since", "1h")
    assert {line.split()[0] for line in out.splitlines()} == with_carrier
    out = await stack.cli_ok("order", "list", "--prefix", shop.prefix, "--since", "2999-01-01")
    assert out == ""
    out = await stack.cli_ok("order", "list", "--prefix", shop.prefix, "--limit", "3")
    assert len(out.splitlines()) == 3

    # `ordertrack stats`.
    stats = json.loads(await stack.cli_ok("stats", "--prefix", shop.prefix, "--json"))
    assert stats == {
        "total": len(everyone),
        "delayed": len(delayed),
        "by_status": {status.value: len(expected.get(status, ())) for status in OrderStatus},
    }
    stats = json.loads(await stack.cli_ok("stats", "--prefix", shop.prefix, "--running", "--json"))
    assert (stats["total"], stats["by_status"]["cancelled"]) == (len(everyone) - 1, 0)
    stats = json.loads(await stack.cli_ok("stats", "--carrier", shop.carrier, "--since", "1d", "--json"))
    assert (stats["total"], stats["delayed"], stats["by_status"]["in_transit"]) == (5, 1, 2)
    text = await stack.cli_ok("stats", "--prefix", shop.prefix)
    table = dict(line.split() for line in text.splitlines())
    assert (table["confirmed"], table["lost"], table["total"], table["delayed"]) == (
        "2",
        "0",
        str(len(everyone)),
        "2",
    )

    # Bulk corrections: the dry run says what would happen and changes nothing.
    unknown = f"{shop.prefix}nope"
    csv_file = stack.workdir / "fix.csv"
    csv_file.write_text(
        "order_id,status,reason,note\n"
        f"{shipped},in_transit,,scan missing\n"
        f"{received},,,\n"
        f"\n"
        f"{in_transit},,,\n"
        f"{cancelled},,,\n"
        f"{unknown},,,\n"
        f"{picking},confirmed,picked the wrong parcel,\n"
    )
    before = {order_id: await orders.get_order(client, order_id) for order_id in everyone}
    args = ["order", "correct-bulk", str(csv_file), "--status", "delivered", "--reason", "carrier confirmed"]
    dry = await stack.cli(*args, "--dry-run", "--operator", "bulk-op")
    assert dry.returncode == 4, dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[0] == f"{shipped}: shipped -> in_transit"
    assert lines[1].startswith(
        f"{received}: refused: correct_status to 'delivered' refused: the order is received;"
    )
    assert "needs a carrier and a tracking number" in lines[1]
    assert lines[2] == f"{in_transit}: in_transit -> delivered"
    assert lines[3].startswith(f"{cancelled}: refused: ") and "finished order cannot change" in lines[3]
    assert lines[4] == f"{unknown}: not found"
    assert lines[5] == f"{picking}: picking -> confirmed"
    assert len(lines) == 6
    assert "3 would be corrected, 2 refused, 1 not found (dry run: nothing changed)" in dry.stderr
    after = {order_id: await orders.get_order(client, order_id) for order_id in everyone}
    assert after == before

    # The real run applies the legal ones, refuses the rest and says so in its exit status.
    real = await stack.cli(*args, "--operator", "bulk-op")
    assert real.returncode == 4, real.stderr
    lines = real.stdout.splitlines()
    assert lines[0] == f"{shipped}: shipped -> in_transit"
    assert lines[1].startswith(f"{received}: refused: correct_status to 'delivered' refused")
    assert lines[2] == f"{in_transit}: in_transit -> delivered"
    assert (
        lines[3] == f"{cancelled}: refused: order {cancelled} is cancelled and its workflow has ended; "
        "nothing can change"
    )
    assert lines[4] == f"{unknown}: not found"
    assert lines[5] == f"{picking}: picking -> confirmed"
    assert "3 corrected, 2 refused, 1 not found" in real.stderr
    assert (await orders.get_order(client, received)).status == OrderStatus.RECEIVED
    view = await orders.get_order(client, picking)
    assert view.status == OrderStatus.CONFIRMED
    entry = view.timeline[-1]
    assert (entry.status, entry.actor, entry.reason) == (
        OrderStatus.CONFIRMED,
        "bulk-op",
        "picked the wrong parcel",
    )
    entry = (await orders.get_order(client, shipped)).timeline[-1]
    assert (entry.status, entry.actor, entry.reason) == (
        OrderStatus.IN_TRANSIT,
        "bulk-op",
        "carrier confirmed",
    )

    # `order show` puts who and why on every operator action: corrections and the cancel.
    out = await stack.cli_ok("order", "show", picking)
    assert "confirmed" in out and "by bulk-op (reason: picked the wrong parcel)" in out
    out = await stack.cli_ok("order", "show", cancelled)
    assert "by ops-bo (reason: customer asked)" in out
    target = expected[OrderStatus.IN_TRANSIT] - {in_transit} | {shipped}
    assert await visible(client, orders.orders_query("in_transit", id_prefix=shop.prefix), target) == target


async def test_bulk_with_every_row_applied_exits_0(harness: Harness, stack: Stack) -> None:
    shop = Shop(harness)
    first, second = await shop.order(), await shop.order(FulfillmentEvent.PICKING_STARTED)
    csv_file = stack.workdir / "ok.csv"
    csv_file.write_text(f"order_id\n{first}\n{second}\n")
    result = await stack.cli(
        "order", "correct-bulk", str(csv_file), "--status", "packed", "--reason", "label printed"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{first}: confirmed -> packed", f"{second}: picking -> packed"]
    bad = await stack.cli("order", "correct-bulk", str(csv_file), "--reason", "label printed")
    assert bad.returncode == 2
    assert (
        bad.stderr.strip()
        == f"error: {csv_file}: line 2: no status for order {first} (give --status or a status column)"
    )


async def test_a_cli_request_run_again_with_its_request_id_is_applied_once(
    harness: Harness, stack: Stack
) -> None:
    order_id = await Shop(harness).order()
    args = ["order", "correct", order_id, "--status", "picking", "--reason", "warehouse phoned"]
    first = await stack.cli_ok(*args, "--request-id", "fix-42", "--json")
    again = await stack.cli_ok(*args, "--request-id", "fix-42", "--json")
    assert json.loads(again) == json.loads(first)
    unkeyed = await stack.cli(*args)
    assert unkeyed.returncode == 4 and "already" in unkeyed.stderr
    view = await orders.get_order(harness.client, order_id)
    assert [entry.reason for entry in view.timeline].count("warehouse phoned") == 1


async def test_the_stock_temporal_cli_signals_a_correction(harness: Harness, stack: Stack) -> None:
    """What ops reach for: `temporal workflow signal`, as in the README."""
    order_id = await Shop(harness).order()
    payload = {"status": "picking", "reason": "warehouse phoned", "operator": "rita"}
    command = [
        temporal_cli(), "workflow", "signal", "--address", stack.temporal_address,
        "--workflow-id", f"order-{order_id}", "--name", "correct_status", "--input", json.dumps(payload),
    ]  # fmt: skip
    sent = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0, sent.stderr

    async def picking() -> OrderView | None:
        view = await orders.get_order(harness.client, order_id)
        return view if view.status == OrderStatus.PICKING else None

    view = await eventually(picking, "the signalled correction")
    assert (view.timeline[-1].actor, view.timeline[-1].reason) == ("rita", "warehouse phoned")
