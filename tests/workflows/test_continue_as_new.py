"""OrderWorkflow continues as new when the server suggests it, and the new run carries everything.

A real Temporal dev server (its own, for this module) suggests continue-as-new after 40 history
events instead of the default thousands, so one order's ordinary life crosses several runs. The dev
server does not skip time, so the carrier's scans arrive as `carrier_update` pushes with the
simulated journey's snapshots taken hours apart, and the review request is due seconds after
delivery.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, time, timedelta
from functools import partial
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from ordertrack import orders
from ordertrack.carriers import journeys
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.statuses import OrderStatus
from ordertrack.domain.timeline import EntryKind
from ordertrack.domain.view import OrderView
from ordertrack.mail.sink import MailSink
from ordertrack.names import SearchAttributes as sa
from starter.devserver import temporal_cli
from tests.conftest import free_port
from tests.workflows.harness import Harness, order_worker
from tests.workflows.test_order_workflow import FAILED_ATTEMPT, kinds_sent, new_order, ship
from workflows.order import OrderWorkflow

# The server's dynamic config key (default 4K events): past it, each workflow task says "suggested".
SUGGEST_AFTER_EVENTS = 40
POLICY = TimingPolicy(
    # One pace whatever the real day and hour (the adaptive cadence would wait out the real night).
    carrier_poll_interval=timedelta(seconds=1),
    carrier_poll_min=timedelta(seconds=1),
    carrier_poll_max=timedelta(seconds=1),
    review_request_delay=timedelta(seconds=2),
    # The dev server's clock is the wall clock: the review request must not wait for the morning.
    daytime_starts=time(0),
    daytime_ends=time(0),
)


@pytest.fixture(scope="module")
async def can_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_cli(),
        search_attributes=sa.ALL,
        port=free_port(),
        dev_server_extra_args=[
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_AFTER_EVENTS}",
        ],
    )
    yield env
    await env.shutdown()


@pytest.fixture
async def harness(
    can_env: WorkflowEnvironment, tmp_path: Path, mail_sink: MailSink
) -> AsyncIterator[Harness]:
    async with order_worker(can_env, tmp_path, mail_sink, f"orders-{uuid.uuid4()}") as running:
        yield running


WAIT = 45  # seconds for any one step of the order to show (generous: a loaded machine is slow)


async def wait_for(
    handle: WorkflowHandle[OrderWorkflow, OrderView], done: Callable[[OrderView], bool]
) -> OrderView:
    """Query the latest run until `done(view)`."""
    async with asyncio.timeout(WAIT):
        while True:
            view = await handle.query(OrderWorkflow.status)
            if done(view):
                return view
            await asyncio.sleep(0.05)


async def run_histories(client: Client, workflow_id: str, first_run_id: str) -> list[list[HistoryEvent]]:
    """Every run's history, following the continue-as-new chain from the first run."""
    runs, run_id = [], first_run_id
    while run_id:
        events = list((await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()).events)
        runs.append(events)
        last = events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            else ""
        )
    return runs


def scans(view: OrderView) -> int:
    return sum(1 for entry in view.timeline if entry.kind == EntryKind.SCAN)


def has_scans(count: int, view: OrderView) -> bool:
    return scans(view) >= count


async def test_continue_as_new_carries_the_whole_order(harness: Harness):
    order = new_order()
    started = await orders.start_order(harness.client, order, POLICY, harness.task_queue)
    harness.started.append(started.workflow_id)
    handle = harness.client.get_workflow_handle_for(OrderWorkflow.run, started.workflow_id)
    first_run_id = (await handle.describe()).run_id
    assert first_run_id

    # The carrier's clock starts now (the dev server's clock is the wall clock); polls every second
    # see only the first scan, while the pushes below report the journey hours later.
    tracking_number = f"SIM-FAILED-{order.order_id}"
    first_seen = datetime.now(UTC)
    harness.carrier.first_seen[tracking_number] = first_seen
    await ship(harness, order, tracking_number)
    shipped = await handle.query(OrderWorkflow.status)

    # The pushes below pass 40 events wherever the warehouse updates left the count (it depends on
    # how workflow tasks batch), so the server suggests continue-as-new during the journey.
    journey = journeys.journey_for(tracking_number)
    for reached, step in enumerate(journey.steps, start=1):
        snapshot = journeys.snapshot_at(tracking_number, first_seen, first_seen + step.after, speed=1.0)
        await handle.signal(OrderWorkflow.carrier_update, snapshot)
        await wait_for(handle, partial(has_scans, reached))

    result = await asyncio.wait_for(handle.result(), timeout=WAIT)  # follows the runs to the last one
    assert result.status == OrderStatus.COMPLETED and not result.delayed
    assert result.timeline[: len(shipped.timeline)] == shipped.timeline  # carried over, unchanged

    # It did continue as new, at least once, because the server suggested it.
    runs = await run_histories(harness.client, started.workflow_id, first_run_id)
    assert len(runs) >= 2, f"one run of {len(runs[0])} events: continue-as-new was never suggested"
    for events in runs[:-1]:
        assert events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        assert any(
            event.workflow_task_started_event_attributes.suggest_continue_as_new
            for event in events
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
        )
    assert runs[-1][-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    assert (await handle.describe()).run_id != first_run_id

    # The whole timeline, from before the first continue-as-new to the end, in one contiguous run.
    assert [entry.seq for entry in result.timeline] == list(range(1, len(result.timeline) + 1))
    assert result.timeline[0].message == "Order received"
    assert result.version == len(result.timeline)
    statuses = [e.status for e in result.timeline if e.kind == EntryKind.STATUS]
    assert statuses == [
        OrderStatus.RECEIVED,
        OrderStatus.CONFIRMED,
        OrderStatus.PICKING,
        OrderStatus.PACKED,
        OrderStatus.SHIPPED,
        OrderStatus.IN_TRANSIT,
        OrderStatus.OUT_FOR_DELIVERY,
        OrderStatus.DELIVERY_FAILED,
        OrderStatus.OUT_FOR_DELIVERY,
        OrderStatus.DELIVERED,
        OrderStatus.COMPLETED,
    ]
    assert scans(result) == len(journey.steps)  # each scan once, though polled and pushed
    assert result.tracking_token == started.tracking_token
    assert (result.carrier, result.tracking_number) == ("simulated", tracking_number)

    # Each message once: none resent by a new run, none lost by the old one's drain.
    assert kinds_sent(harness, order) == FAILED_ATTEMPT
    message_ids = [str(m["Message-ID"]) for m in harness.sink.messages]
    assert len(message_ids) == len(set(message_ids)) == len(FAILED_ATTEMPT)
    assert {n.status for n in await harness.store.list_notifications(order.order_id)} == {"sent"}

    # The read model followed every run.
    stored = await harness.store.get_order(order.order_id)
    assert stored is not None
    assert (stored.status, stored.version, stored.tracking_token) == (
        OrderStatus.COMPLETED,
        result.version,
        started.tracking_token,
    )
    assert [e.seq for e in await harness.store.get_timeline(order.order_id)] == [
        e.seq for e in result.timeline
    ]
