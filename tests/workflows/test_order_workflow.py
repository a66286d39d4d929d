"""OrderWorkflow on the time-skipping server with the real activities, SQLite store and SMTP sink."""

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from ordertrack import orders
from ordertrack.carriers import journeys
from ordertrack.domain.messages import CancelRequest, CorrectionRequest, FulfillmentUpdate
from ordertrack.domain.models import Order
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.statuses import FulfillmentEvent, OrderStatus
from ordertrack.domain.timeline import EntryKind
from ordertrack.domain.view import OrderView
from ordertrack.mail.sink import MailSink
from tests.factories import sample_order
from tests.workflows.harness import Harness, order_worker
from workflows.order import OrderWorkflow

POLICY = TimingPolicy()
ON_TIME = ["confirmation", "shipped", "out_for_delivery", "delivered", "review_request"]
# The attempt fails at 52 h and the second goes out at 66 h: under a day, so no reminder.
FAILED_ATTEMPT = [
    "confirmation",
    "shipped",
    "out_for_delivery",
    "delivery_failed",
    "out_for_delivery",
    "delivered",
    "review_request",
]


@pytest.fixture
async def harness(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path, mail_sink: MailSink
) -> AsyncIterator[Harness]:
    async with order_worker(time_skipping_env, tmp_path, mail_sink, f"orders-{uuid.uuid4()}") as running:
        yield running


def new_order(**changes: object) -> Order:
    order_id = f"wf-{uuid.uuid4().hex[:10]}"
    email = f"{order_id}@example.com"
    customer = {"name": "Ana Souza", "email": email, "locale": "en"}
    return sample_order(order_id=order_id, customer=customer, **changes)


async def start(
    h: Harness, order: Order, policy: TimingPolicy = POLICY
) -> WorkflowHandle[OrderWorkflow, OrderView]:
    started = await orders.start_order(h.client, order, policy, h.task_queue)
    assert started.created
    h.started.append(started.workflow_id)
    return h.client.get_workflow_handle_for(OrderWorkflow.run, started.workflow_id)


async def ship(h: Harness, order: Order, tracking_number: str) -> None:
    for event in (FulfillmentEvent.PICKING_STARTED, FulfillmentEvent.PACKED):
        await orders.record_fulfillment(h.client, order.order_id, FulfillmentUpdate(event=event))
    shipped = FulfillmentUpdate(
        event=FulfillmentEvent.SHIPPED, carrier="simulated", tracking_number=tracking_number
    )
    view = await orders.record_fulfillment(h.client, order.order_id, shipped)
    assert view.status == OrderStatus.SHIPPED


def kinds_sent(h: Harness, order: Order) -> list[str]:
    """Which message kinds the customer received by email, in order."""
    return h.kinds_mailed(order.customer.email)


UPDATE_EVENTS = (
    "workflow_execution_update_admitted_event_attributes",
    "workflow_execution_update_accepted_event_attributes",
    "workflow_execution_update_completed_event_attributes",
)


async def update_events(handle: WorkflowHandle[OrderWorkflow, OrderView]) -> int:
    """Events any update has left in history; a refused one (rejected by its validator) leaves none."""
    events = (await handle.fetch_history()).events
    return sum(1 for event in events if event.WhichOneof("attributes") in UPDATE_EVENTS)


async def test_happy_path_to_completed_with_review_request_days_after_delivery(harness: Harness):
    order = new_order()
    handle = await start(harness, order)
    await ship(harness, order, f"SIM-ONTIME-{order.order_id}")
    result = await harness.run_to_end(handle)

    assert result.status == OrderStatus.COMPLETED and not result.delayed
    statuses = [e.status for e in result.timeline if e.kind == EntryKind.STATUS]
    assert statuses == [
        OrderStatus.RECEIVED,
        OrderStatus.CONFIRMED,
        OrderStatus.PICKING,
        OrderStatus.PACKED,
        OrderStatus.SHIPPED,
        OrderStatus.IN_TRANSIT,
        OrderStatus.OUT_FOR_DELIVERY,
        OrderStatus.DELIVERED,
        OrderStatus.COMPLETED,
    ]
    delivered_at = next(e.at for e in result.timeline if e.status == OrderStatus.DELIVERED)
    completed_at = result.timeline[-1].at
    assert completed_at - delivered_at >= POLICY.review_request_delay
    assert kinds_sent(harness, order) == ON_TIME
    shipped_mail = harness.mails_for(order.customer.email)[1]
    assert f"SIM-ONTIME-{order.order_id}" in shipped_mail.get_body(("plain",)).get_content()

    stored = await harness.store.get_order(order.order_id)
    assert stored is not None and stored.status == OrderStatus.COMPLETED and stored.version == result.version
    assert stored.time_zone == POLICY.default_time_zone  # the customer gave none: the page uses the default
    assert len(await harness.store.get_timeline(order.order_id)) == len(result.timeline)
    assert {n.status for n in await harness.store.list_notifications(order.order_id)} == {"sent"}


async def test_payment_timeout_cancels_with_an_email(harness: Harness):
    order = new_order(payment={"status": "pending"})
    handle = await start(harness, order)
    result = await harness.run_to_end(handle)
    assert result.status == OrderStatus.CANCELLED
    assert result.timeline[-1].at - result.timeline[0].at >= POLICY.payment_timeout
    assert kinds_sent(harness, order) == ["awaiting_payment", "payment_reminder", "cancelled"]


async def test_payment_confirmed_in_time_confirms(harness: Harness):
    order = new_order(payment={"status": "pending"})
    await start(harness, order)
    confirmed = FulfillmentUpdate(event=FulfillmentEvent.PAYMENT_CONFIRMED)
    view = await orders.record_fulfillment(harness.client, order.order_id, confirmed)
    assert view.status == OrderStatus.CONFIRMED


async def test_cancel_before_shipping(harness: Harness):
    order = new_order()
    handle = await start(harness, order)
    request = CancelRequest(reason="customer changed their mind", operator="rita")
    view = await orders.cancel_order(harness.client, order.order_id, request)
    assert view.status == OrderStatus.CANCELLED
    result = await harness.run_to_end(handle)
    assert result.timeline[-1].actor == "rita" and result.timeline[-1].reason == request.reason
    assert kinds_sent(harness, order) == ["confirmation", "cancelled"]


async def test_cancel_after_shipping_is_refused_and_leaves_history_untouched(harness: Harness):
    order = new_order()
    handle = await start(harness, order)
    await ship(harness, order, f"SIM-ONTIME-{order.order_id}")
    before = await update_events(handle)  # the carrier keeps moving it, so only updates are compared
    with pytest.raises(
        orders.RequestRefused, match=r"the order is (shipped|in_transit).*only before it is shipped"
    ):
        await orders.cancel_order(
            harness.client, order.order_id, CancelRequest(reason="too late", operator="rita")
        )
    assert await update_events(handle) == before
    assert (await handle.query(OrderWorkflow.status)).status != OrderStatus.CANCELLED


async def test_refused_correction_leaves_history_unchanged(harness: Harness):
    order = new_order()
    handle = await start(harness, order)
    before, version = await update_events(handle), (await handle.query(OrderWorkflow.status)).version
    refused = CorrectionRequest(
        status=OrderStatus.DELIVERED, reason="customer says it arrived", operator="rita"
    )
    with pytest.raises(orders.RequestRefused, match=r"needs a carrier and a tracking number.*Allowed now:"):
        await orders.correct_status(harness.client, order.order_id, refused)
    assert await update_events(handle) == before
    assert (await handle.query(OrderWorkflow.status)).version == version
    accepted = CorrectionRequest(
        status=OrderStatus.PACKED, reason="warehouse forgot to scan", operator="rita"
    )
    view = await orders.correct_status(harness.client, order.order_id, accepted)
    assert view.status == OrderStatus.PACKED and view.timeline[-1].reason == accepted.reason
    assert await update_events(handle) == before + 2  # accepted and completed


async def test_ship_by_missed_sends_one_delay_email(harness: Harness, time_skipping_env: WorkflowEnvironment):
    order = new_order()
    handle = await start(harness, order)
    await time_skipping_env.sleep(POLICY.ship_by * 2)  # nothing shipped meanwhile
    view = await handle.query(OrderWorkflow.status)
    assert view.delayed and "Not handed to the carrier" in (view.delay_reason or "")
    await ship(harness, order, f"SIM-ONTIME-{order.order_id}")
    result = await harness.run_to_end(handle)
    assert result.status == OrderStatus.COMPLETED and not result.delayed
    assert kinds_sent(harness, order) == [
        "confirmation",
        "delayed",
        "shipped",
        "out_for_delivery",
        "delivered",
        "review_request",
    ]


async def test_estimate_moved_later_sends_one_delay_email_per_new_date(harness: Harness):
    order = new_order()
    handle = await start(harness, order)
    await ship(harness, order, f"SIM-DELAYED-{order.order_id}")
    result = await harness.run_to_end(handle)
    assert result.status == OrderStatus.COMPLETED
    assert kinds_sent(harness, order) == [
        "confirmation",
        "shipped",
        "delayed",
        "out_for_delivery",
        "delivered",
        "review_request",
    ]
    delays = [e for e in result.timeline if e.kind == EntryKind.DELAY]
    assert len(delays) == 1 and "moved the estimated delivery" in delays[0].message
    # polled for four days, every 30 minutes on the (new) estimated day, yet one delay email
    assert harness.carrier.calls[f"SIM-DELAYED-{order.order_id}"] > 20


async def test_failed_attempt_then_delivered(harness: Harness):
    order = new_order()
    handle = await start(harness, order)
    await ship(harness, order, f"SIM-FAILED-{order.order_id}")
    result = await harness.run_to_end(handle)
    statuses = [e.status for e in result.timeline if e.kind == EntryKind.STATUS]
    assert statuses[-5:] == [
        OrderStatus.OUT_FOR_DELIVERY,
        OrderStatus.DELIVERY_FAILED,
        OrderStatus.OUT_FOR_DELIVERY,
        OrderStatus.DELIVERED,
        OrderStatus.COMPLETED,
    ]
    assert kinds_sent(harness, order) == FAILED_ATTEMPT


async def test_no_scan_for_too_long_marks_the_order_lost(harness: Harness):
    order = new_order()
    handle = await start(
        harness, order, POLICY.model_copy(update={"carrier_poll_interval": timedelta(hours=6)})
    )
    await ship(harness, order, f"SIM-LOST-{order.order_id}")
    result = await harness.run_to_end(handle)
    assert result.status == OrderStatus.LOST
    lost = next(e for e in result.timeline if e.status == OrderStatus.LOST and e.kind == EntryKind.STATUS)
    last_scan = max(e.at for e in result.timeline if e.kind == EntryKind.SCAN)
    assert lost.at - last_scan >= POLICY.stale_tracking_after
    assert "review_request" not in kinds_sent(harness, order)


async def test_carrier_push_moves_the_order_without_polling(
    harness: Harness, time_skipping_env: WorkflowEnvironment
):
    order = new_order()
    handle = await start(
        harness, order, POLICY.model_copy(update={"carrier_poll_interval": timedelta(days=30)})
    )
    tracking_number = f"SIM-ONTIME-{order.order_id}"
    await ship(harness, order, tracking_number)
    await harness.carrier_answered(handle)  # once, on shipping; the push does the rest
    now = await time_skipping_env.get_current_time()
    delivered = journeys.snapshot_at(tracking_number, now - timedelta(days=3), now, speed=1.0)
    await handle.signal(OrderWorkflow.carrier_update, delivered)
    await handle.signal(OrderWorkflow.carrier_update, delivered)  # delivered twice: applied once
    result = await harness.run_to_end(handle)
    assert result.status == OrderStatus.COMPLETED
    assert kinds_sent(harness, order).count("delivered") == 1


async def test_duplicate_start_finds_the_first_workflow(harness: Harness):
    order = new_order()
    first = await orders.start_order(harness.client, order, POLICY, harness.task_queue)
    harness.started.append(first.workflow_id)
    run_id = (await harness.client.get_workflow_handle(first.workflow_id).describe()).run_id
    second = await orders.start_order(harness.client, order, POLICY, harness.task_queue)
    assert first.created and not second.created
    assert second.tracking_token == first.tracking_token and second.workflow_id == first.workflow_id
    assert (await harness.client.get_workflow_handle(first.workflow_id).describe()).run_id == run_id


WORKFLOW_TASK_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
}


def polled_every(interval: timedelta) -> TimingPolicy:
    """A policy that polls at one pace the whole journey (the adaptive bounds pinned to it)."""
    return POLICY.model_copy(
        update={"carrier_poll_interval": interval, "carrier_poll_min": interval, "carrier_poll_max": interval}
    )


async def test_history_does_not_grow_with_the_number_of_polls(harness: Harness):
    lengths, polls = [], []
    for interval in (timedelta(hours=7), timedelta(minutes=20)):
        order = new_order()
        handle = await start(harness, order, polled_every(interval))
        await ship(harness, order, f"SIM-ONTIME-{order.order_id}")
        assert (await harness.run_to_end(handle)).status == OrderStatus.COMPLETED
        events = (await handle.fetch_history()).events
        lengths.append(sum(1 for event in events if event.event_type not in WORKFLOW_TASK_EVENTS))
        polls.append(await orders.carrier_poll_count(harness.client, order.order_id))
    assert polls[0] <= 20 and polls[1] >= 200, polls
    # Counted without the workflow tasks' own events, whose number depends on how a busy worker
    # happens to batch completions; 200 more polls would show as hundreds more events.
    assert abs(lengths[0] - lengths[1]) <= 4, (lengths, polls)


async def test_same_order_id_with_different_contents_is_a_conflict(harness: Harness):
    order = new_order()
    first = await orders.start_order(harness.client, order, POLICY, harness.task_queue)
    harness.started.append(first.workflow_id)
    changed = order.model_copy(update={"currency": "EUR"})
    with pytest.raises(orders.OrderConflict, match="already exists with different contents"):
        await orders.start_order(harness.client, changed, POLICY, harness.task_queue)


async def test_rotating_the_tracking_link_retires_the_old_one(harness: Harness):
    order = new_order()
    handle = await start(harness, order)
    old_token = (await handle.query(OrderWorkflow.status)).tracking_token
    view = await orders.rotate_tracking_token(
        harness.client, order.order_id, "link forwarded by mistake", "rita"
    )
    assert view.tracking_token != old_token and len(view.tracking_token) >= 22
    entry = view.timeline[-1]
    assert (entry.kind, entry.actor, entry.reason) == (
        EntryKind.TRACKING_LINK,
        "rita",
        "link forwarded by mistake",
    )
    stored = await harness.store.get_order_by_token(view.tracking_token)
    assert stored is not None and stored.order_id == order.order_id
    assert await harness.store.get_order_by_token(old_token) is None


async def test_polling_slows_while_the_carrier_pushes_and_speeds_up_after(
    harness: Harness, time_skipping_env: WorkflowEnvironment
):
    order = new_order()
    handle = await start(harness, order, polled_every(timedelta(hours=1)))
    number = f"SIM-LOST-{order.order_id}"  # one scan, then silence: polls never see a change
    await ship(harness, order, number)
    await harness.advance_until(handle, lambda view: view.status == OrderStatus.IN_TRANSIT)
    first_seen = harness.carrier.first_seen[number]

    async def polls_over(hours: int, push_every: int | None) -> int:
        before = harness.carrier.calls[number]
        for hour in range(hours):
            if push_every and hour % push_every == 0:
                now = await time_skipping_env.get_current_time()
                await handle.signal(
                    OrderWorkflow.carrier_update, journeys.snapshot_at(number, first_seen, now, 1.0)
                )
            await time_skipping_env.sleep(timedelta(hours=1))
        return harness.carrier.calls[number] - before

    quiet = await polls_over(8, push_every=None)
    pushed = await polls_over(16, push_every=2)
    await polls_over(4, push_every=None)  # the slow cadence runs out after the last push
    after = await polls_over(8, push_every=None)
    assert quiet >= 7 and after >= 7, (quiet, after)
    assert pushed <= 16 / 4 + 2, pushed  # every 4 hours instead of every hour (+ the switch)
