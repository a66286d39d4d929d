"""Operators' requests as signals (the Temporal UI's "Send Signal", `temporal workflow signal`): applied
with the updates' rules; refusals and signals the order cannot read are recorded, never dropped."""

import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from ordertrack.domain.statuses import OrderStatus
from ordertrack.domain.timeline import EntryKind, TimelineEntry
from ordertrack.domain.view import OrderView
from ordertrack.mail.sink import MailSink
from ordertrack.names import CANCEL_SIGNAL, CARRIER_UPDATE_SIGNAL, CORRECT_STATUS_SIGNAL
from tests.conftest import eventually
from tests.workflows.harness import Harness, order_worker
from tests.workflows.test_order_workflow import kinds_sent, new_order, ship, start
from workflows.order import OrderWorkflow


@pytest.fixture
async def harness(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path, mail_sink: MailSink
) -> AsyncIterator[Harness]:
    async with order_worker(time_skipping_env, tmp_path, mail_sink, f"orders-{uuid.uuid4()}") as running:
        yield running


Handle = WorkflowHandle[OrderWorkflow, OrderView]


async def entry_after(handle: Handle, version: int) -> TimelineEntry:
    """The first timeline entry past `version`, once the workflow has recorded it."""

    async def recorded() -> OrderView | None:
        view = await handle.query(OrderWorkflow.status)
        return view if view.version > version else None

    view = await eventually(recorded, f"an entry after version {version}")
    return view.timeline[version]


async def signal(handle: Handle, name: str, payload: Any) -> int:
    """Send a signal the way the UI and the stock CLI do (a JSON payload); returns the version before."""
    version = (await handle.query(OrderWorkflow.status)).version
    await handle.signal(name, payload)
    return version


async def replays(handle: Handle) -> None:
    """The run so far replays on today's code (the new path is as deterministic as the old)."""
    replayer = Replayer(workflows=[OrderWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(await handle.fetch_history())


async def test_a_signalled_correction_is_applied_like_the_update(harness: Harness):
    order = new_order()
    handle = await start(harness, order)
    before = await signal(
        handle, CORRECT_STATUS_SIGNAL, {"status": "picking", "reason": "warehouse phoned", "operator": "rita"}
    )

    entry = await entry_after(handle, before)
    assert (entry.kind, entry.status, entry.actor, entry.reason) == (
        EntryKind.STATUS,
        OrderStatus.PICKING,
        "rita",
        "warehouse phoned",
    )

    async def stored_picking() -> bool:
        stored = await harness.store.get_order(order.order_id)
        return stored is not None and stored.status == OrderStatus.PICKING

    await eventually(stored_picking, "the read model at picking")
    await replays(handle)


async def test_a_refused_signal_is_recorded_with_who_why_and_what_is_allowed(harness: Harness):
    order = new_order()
    handle = await start(harness, order)
    # Delivered needs a carrier and a tracking number; nothing else moves this order meanwhile.
    request = {"status": "delivered", "reason": "customer called", "operator": "rita"}
    before = await signal(handle, CORRECT_STATUS_SIGNAL, request)

    entry = await entry_after(handle, before)
    assert entry.kind == EntryKind.REFUSED and (entry.actor, entry.reason) == ("rita", "customer called")
    assert entry.message.startswith("signal correct_status to 'delivered' refused: the order is confirmed")
    assert "Allowed now:" in entry.message
    assert (await handle.query(OrderWorkflow.status)).status == OrderStatus.CONFIRMED
    # The UI's current details show it as the last event, with who and why.
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    details = metadata.current_details
    assert (
        "signal correct_status to 'delivered' refused" in details
        and "(rita; reason: customer called)" in details
    )

    async def stored_refusal() -> bool:
        timeline = await harness.store.get_timeline(order.order_id)
        return any(stored.kind == EntryKind.REFUSED for stored in timeline)

    await eventually(stored_refusal, "the refusal in the read model's timeline")
    await replays(handle)


async def test_a_signalled_cancel_after_shipping_is_refused_and_sends_nothing(harness: Harness):
    order = new_order()
    handle = await start(harness, order)
    await ship(harness, order, f"SIM-ONTIME-{order.order_id}")
    await handle.signal(CANCEL_SIGNAL, {"reason": "customer asked", "operator": "rita"})

    async def refused() -> TimelineEntry | None:
        view = await handle.query(OrderWorkflow.status)
        return next((entry for entry in view.timeline if entry.kind == EntryKind.REFUSED), None)

    entry = await eventually(refused, "the cancel's refusal")
    assert entry.message.startswith("signal cancel refused") and entry.actor == "rita"
    assert (await handle.query(OrderWorkflow.status)).status != OrderStatus.CANCELLED
    assert "cancelled" not in kinds_sent(harness, order)


async def test_unknown_and_unreadable_signals_are_recorded_as_ignored(
    harness: Harness, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING)
    order = new_order()
    handle = await start(harness, order)

    before = await signal(handle, "corect_status", {"status": "picking"})
    unknown = await entry_after(handle, before)
    assert unknown.kind == EntryKind.REFUSED and unknown.actor == "system"
    assert "'corect_status' ignored" in unknown.message and "correct_status" in unknown.message

    before = await signal(handle, CORRECT_STATUS_SIGNAL, {"status": "picking"})  # no reason, no operator
    unreadable = await entry_after(handle, before)
    assert unreadable.kind == EntryKind.REFUSED
    assert "'correct_status' ignored: its payload is not a CorrectionRequest" in unreadable.message

    before = await signal(handle, CARRIER_UPDATE_SIGNAL, {"tracking": "nope"})
    carrier = await entry_after(handle, before)
    assert "'carrier_update' ignored: its payload is not a TrackingSnapshot" in carrier.message

    view = await handle.query(OrderWorkflow.status)
    assert view.status == OrderStatus.CONFIRMED
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert sum("ignored" in warning for warning in warnings) >= 3, warnings
    await replays(handle)
