"""Customer messages in the workflow, on skipped time: texts, quiet hours, reminders, refusals, reverts."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from ordertrack import orders
from ordertrack.domain import machine
from ordertrack.domain.messages import CancelRequest, CorrectionRequest, FulfillmentUpdate, OrderInput
from ordertrack.domain.models import NotifyPreferences, Order
from ordertrack.domain.statuses import FulfillmentEvent, OrderStatus
from ordertrack.domain.timeline import EntryKind
from ordertrack.domain.tracking import TrackingSnapshot
from ordertrack.domain.view import OrderView
from ordertrack.mail.sink import MailSink
from ordertrack.sms.sink import SmsSink
from tests.conftest import eventually, skip_to
from tests.workflows.harness import Harness, order_worker
from tests.workflows.test_order_workflow import ON_TIME, POLICY, kinds_sent, new_order, ship, start
from workflows.order import OrderWorkflow

PHONE = "+5511999990000"
SEOUL = "Asia/Seoul"


@pytest.fixture
async def harness(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path, mail_sink: MailSink, sms_sink: SmsSink
) -> AsyncIterator[Harness]:
    task_queue = f"orders-{uuid.uuid4()}"
    async with order_worker(time_skipping_env, tmp_path, mail_sink, task_queue, sms=sms_sink) as running:
        yield running


def texting_order(time_zone: str = "America/Sao_Paulo") -> Order:
    order = new_order()
    customer = order.customer.model_copy(update={"phone": PHONE, "time_zone": time_zone})
    return order.model_copy(update={"customer": customer, "notify": NotifyPreferences(email=True, sms=True)})


async def sends_of(handle: WorkflowHandle[OrderWorkflow, OrderView], activity: str) -> list[datetime]:
    """When each `activity` was scheduled, from the workflow's history (server time)."""
    times = []
    async for event in handle.fetch_history_events():
        scheduled = event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        if scheduled and event.activity_task_scheduled_event_attributes.activity_type.name == activity:
            times.append(event.event_time.ToDatetime(tzinfo=UTC))
    return times


async def test_texts_go_for_the_moments_worth_one_and_only_in_the_daytime(harness: Harness):
    order = texting_order()
    handle = await start(harness, order)
    await ship(harness, order, f"SIM-ONTIME-{order.order_id}")
    result = await harness.run_to_end(handle)
    assert result.status == OrderStatus.COMPLETED

    assert kinds_sent(harness, order) == ON_TIME
    log = await harness.store.list_notifications(order.order_id)
    texted = [row.kind for row in log if row.channel == "sms"]
    assert texted == ["shipped", "out_for_delivery", "delivered"]  # no confirmation, no review request
    assert {row.status for row in log} == {"sent"}
    assert len(harness.texts_for(PHONE)) == 3
    assert all(f"/t/{result.tracking_token}" in text for text in harness.texts_for(PHONE))
    # Texts and the review request wait for 08:00-20:00 in São Paulo.
    zone = ZoneInfo("America/Sao_Paulo")
    for sent_at in [*await sends_of(handle, "send_sms"), (await sends_of(handle, "send_notification"))[-1]]:
        assert time(8) <= sent_at.astimezone(zone).time() < time(20), sent_at.astimezone(zone)


async def test_a_text_at_night_waits_on_a_durable_timer_for_the_morning(
    harness: Harness, time_skipping_env: WorkflowEnvironment
):
    now = await skip_to(time_skipping_env, time(2, 0), SEOUL)  # 02:00 where the customer lives
    order = texting_order(time_zone=SEOUL)
    handle = await start(harness, order)
    await ship(harness, order, f"SIM-ONTIME-{order.order_id}")

    async def two_emails() -> bool:  # email goes at once (the courier works apart from the update)
        return len(kinds_sent(harness, order)) >= 2

    await eventually(two_emails, "the confirmation and shipped emails")
    assert kinds_sent(harness, order) == ["confirmation", "shipped"]
    assert harness.texts_for(PHONE) == []

    await time_skipping_env.sleep(timedelta(hours=7))
    texts = await sends_of(handle, "send_sms")
    assert texts, "the morning came and no text went"
    local = texts[0].astimezone(ZoneInfo(SEOUL))
    assert local.date() == now.astimezone(ZoneInfo(SEOUL)).date()
    assert time(8) <= local.time() < time(8, 1), local  # first thing in the morning
    assert harness.texts_for(PHONE)[0]


async def test_an_operator_revert_withdraws_a_text_still_waiting_for_the_morning(
    harness: Harness, time_skipping_env: WorkflowEnvironment
):
    await skip_to(time_skipping_env, time(2, 0), SEOUL)
    order = texting_order(time_zone=SEOUL)
    handle = await start(harness, order)
    await ship(harness, order, f"SIM-ONTIME-{order.order_id}")
    await harness.carrier_answered(handle)  # before the operator steps in
    delivered = CorrectionRequest(
        status=OrderStatus.DELIVERED, reason="customer called: got it", operator="rita"
    )
    await orders.correct_status(harness.client, order.order_id, delivered)

    async def delivered_mailed() -> bool:  # transactional mail does not wait for the morning
        return "delivered" in kinds_sent(harness, order)

    await eventually(delivered_mailed, "the delivered email")
    back = CorrectionRequest(status=OrderStatus.IN_TRANSIT, reason="wrong customer, sorry", operator="rita")
    await orders.correct_status(harness.client, order.order_id, back)

    await time_skipping_env.sleep(timedelta(hours=7))
    log = await harness.store.list_notifications(order.order_id)
    assert [row.kind for row in log if row.channel == "sms"] == ["shipped"]  # "delivered" withdrawn
    assert len(harness.texts_for(PHONE)) == 1


async def test_a_failed_attempt_still_unresolved_gets_one_reminder(harness: Harness):
    order = new_order()
    handle = await start(
        harness, order, POLICY.model_copy(update={"failed_attempt_follow_up": timedelta(hours=6)})
    )
    await ship(harness, order, f"SIM-FAILED-{order.order_id}")
    result = await harness.run_to_end(handle)
    assert kinds_sent(harness, order) == [
        "confirmation",
        "shipped",
        "out_for_delivery",
        "delivery_failed",
        "delivery_failed",
        "out_for_delivery",
        "delivered",
        "review_request",
    ]
    keys = [row.dedupe_key for row in await harness.store.list_notifications(order.order_id)]
    assert "delivery-failed:1:follow-up" in keys
    reminders = [e for e in result.timeline if e.kind == EntryKind.MESSAGE]
    assert len(reminders) == 1 and "reminder sent" in reminders[0].message


async def test_a_refused_number_is_recorded_for_ops_and_the_order_completes(
    harness: Harness, sms_sink: SmsSink
):
    order = texting_order()
    sms_sink.reject_numbers.add(PHONE)
    handle = await start(harness, order)
    await ship(harness, order, f"SIM-ONTIME-{order.order_id}")
    result = await harness.run_to_end(handle)
    assert result.status == OrderStatus.COMPLETED
    assert kinds_sent(harness, order) == ON_TIME  # email unaffected
    log = await harness.store.list_notifications(order.order_id)
    texts = [row for row in log if row.channel == "sms"]
    assert [(row.status, row.attempts) for row in texts] == [("failed", 1)] * 3  # not retried
    refusals = [e for e in result.timeline if e.kind == EntryKind.MESSAGE]
    assert len(refusals) == 3 and all("21211" in e.message for e in refusals)


async def test_an_operator_can_cancel_without_telling_the_customer(harness: Harness):
    order = new_order()
    handle = await start(harness, order)
    await orders.cancel_order(
        harness.client,
        order.order_id,
        CancelRequest(reason="fraud check failed", operator="rita", notify_customer=False),
    )
    result = await handle.result()
    assert result.status == OrderStatus.CANCELLED
    assert kinds_sent(harness, order) == ["confirmation"]


async def test_texts_asked_for_without_an_sms_provider_are_recorded_for_ops(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path, mail_sink: MailSink
):
    async with order_worker(time_skipping_env, tmp_path, mail_sink, f"orders-{uuid.uuid4()}") as h:
        order = texting_order()
        handle = await start(h, order)
        await ship(h, order, f"SIM-ONTIME-{order.order_id}")
        result = await h.run_to_end(handle)
    assert result.status == OrderStatus.COMPLETED
    assert kinds_sent(h, order) == ON_TIME
    missing = [e.message for e in result.timeline if e.kind == EntryKind.MESSAGE]
    assert len(missing) == 3 and all("SMS is not configured" in message for message in missing)


async def test_a_push_delivered_with_a_continued_runs_first_task_is_applied(harness: Harness):
    """A continued run is ready at once, so a signal in its first task runs before `run` does."""
    order = texting_order()
    started = machine.on_start(order, POLICY, datetime.now(UTC)).state
    shipped = FulfillmentUpdate(
        event=FulfillmentEvent.SHIPPED, carrier="simulated", tracking_number="SIM-X-1"
    )
    state = machine.on_fulfillment(started, shipped, datetime.now(UTC)).state
    push = TrackingSnapshot(
        carrier="simulated", tracking_number="SIM-X-1", status=OrderStatus.OUT_FOR_DELIVERY
    )
    workflow_id = f"order-{order.order_id}"
    handle = await harness.client.start_workflow(
        OrderWorkflow.run,
        OrderInput(order=order, tracking_token="t" * 32, state=state),
        id=workflow_id,
        task_queue=harness.task_queue,
        start_signal="carrier_update",
        start_signal_args=[push],
    )
    harness.started.append(workflow_id)

    async def pushed() -> bool:
        return (await handle.query(OrderWorkflow.status)).status == OrderStatus.OUT_FOR_DELIVERY

    await eventually(pushed, "the push in the first task applied")
