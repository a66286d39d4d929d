"""An order awaiting payment, on skipped time: how to pay at once, one reminder, the cancellation."""

import uuid
from collections.abc import AsyncIterator
from datetime import time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from temporalio.testing import WorkflowEnvironment

from ordertrack import orders
from ordertrack.domain.messages import FulfillmentUpdate
from ordertrack.domain.models import Order
from ordertrack.domain.statuses import FulfillmentEvent, OrderStatus
from ordertrack.domain.timeline import EntryKind
from ordertrack.mail.sink import MailSink
from ordertrack.sms.sink import SmsSink
from tests.conftest import eventually
from tests.factories import PIX_CODE
from tests.workflows.harness import Harness, order_worker
from tests.workflows.test_customer_messages import PHONE, sends_of, texting_order
from tests.workflows.test_order_workflow import ON_TIME, POLICY, kinds_sent, ship, start
from workflows.order import OrderWorkflow

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
REMINDER_AFTER = POLICY.payment_timeout - timedelta(hours=24)  # the default PAYMENT_REMINDER_BEFORE


@pytest.fixture
async def harness(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path, mail_sink: MailSink, sms_sink: SmsSink
) -> AsyncIterator[Harness]:
    task_queue = f"orders-{uuid.uuid4()}"
    async with order_worker(time_skipping_env, tmp_path, mail_sink, task_queue, sms=sms_sink) as running:
        yield running


def pix_order() -> Order:
    """A São Paulo customer paying by Pix, with email and texts."""
    order = texting_order()
    instructions = {"kind": "pix", "code": PIX_CODE}
    payment = order.payment.model_validate(
        {"status": "pending", "method": "pix", "instructions": instructions}
    )
    return order.model_copy(update={"payment": payment})


async def test_awaiting_payment_then_one_reminder_then_the_timeout_cancels(harness: Harness):
    order = pix_order()
    handle = await start(harness, order)
    result = await harness.run_to_end(handle)

    assert result.status == OrderStatus.CANCELLED
    assert kinds_sent(harness, order) == ["awaiting_payment", "payment_reminder", "cancelled"]
    awaiting = harness.mails_for(order.customer.email)[0].get_body(("plain",)).get_content()
    assert PIX_CODE in awaiting
    assert [PIX_CODE in text for text in harness.texts_for(PHONE)] == [True, True, False]
    log = await harness.store.list_notifications(order.order_id)
    assert sorted((row.channel, row.dedupe_key) for row in log) == [
        ("email", "awaiting-payment"),
        ("email", "cancelled"),
        ("email", "payment-reminder"),
        ("sms", "awaiting-payment"),
        ("sms", "cancelled"),
        ("sms", "payment-reminder"),
    ]
    assert {row.status for row in log} == {"sent"}

    received_at, cancelled_at = result.timeline[0].at, result.timeline[-1].at
    reminded = [e for e in result.timeline if e.kind == EntryKind.MESSAGE]
    assert len(reminded) == 1 and "reminder sent" in reminded[0].message
    assert reminded[0].at - received_at >= REMINDER_AFTER
    assert cancelled_at - received_at >= POLICY.payment_timeout
    # The clock starts at 09:00 UTC, 06:00 in São Paulo: the reminder, due then two days later,
    # waits for 08:00 there on both channels; the first email went at once.
    emails = await sends_of(handle, "send_notification")
    assert emails[0] - received_at < timedelta(minutes=1)
    reminder_sent = emails[1].astimezone(SAO_PAULO)
    assert reminded[0].at < emails[1] and time(8) <= reminder_sent.time() < time(20), reminder_sent


async def test_paid_before_the_reminder_no_reminder_and_the_order_goes_on(harness: Harness):
    order = pix_order()
    handle = await start(harness, order)

    async def told_how_to_pay() -> bool:
        return kinds_sent(harness, order) == ["awaiting_payment"]

    await eventually(told_how_to_pay, "the awaiting-payment email")
    paid = FulfillmentUpdate(event=FulfillmentEvent.PAYMENT_CONFIRMED)
    await orders.record_fulfillment(harness.client, order.order_id, paid)
    await ship(harness, order, f"SIM-ONTIME-{order.order_id}")
    result = await harness.run_to_end(handle)

    assert result.status == OrderStatus.COMPLETED
    assert result.timeline[-1].at - result.timeline[0].at > POLICY.payment_timeout  # past both deadlines
    assert kinds_sent(harness, order) == ["awaiting_payment", *ON_TIME]
    log = await harness.store.list_notifications(order.order_id)
    assert "payment-reminder" not in {row.dedupe_key for row in log}
    assert len(log) == len({(row.channel, row.dedupe_key) for row in log})  # each message once


async def test_a_reminder_waiting_for_the_morning_is_withdrawn_once_paid(
    harness: Harness, time_skipping_env: WorkflowEnvironment
):
    order = pix_order()
    handle = await start(harness, order)  # at 06:00 in São Paulo
    await time_skipping_env.sleep(REMINDER_AFTER + timedelta(hours=1))  # 07:00: the reminder waits

    async def reminder_due() -> bool:
        view = await handle.query(OrderWorkflow.status)
        return any(e.kind == EntryKind.MESSAGE for e in view.timeline)

    await eventually(reminder_due, "the reminder's deadline")
    paid = FulfillmentUpdate(event=FulfillmentEvent.PAYMENT_CONFIRMED)
    await orders.record_fulfillment(harness.client, order.order_id, paid)
    await time_skipping_env.sleep(timedelta(hours=3))  # past 08:00 there

    async def confirmed() -> bool:
        return "confirmation" in kinds_sent(harness, order)

    await eventually(confirmed, "the confirmation email")
    assert kinds_sent(harness, order) == ["awaiting_payment", "confirmation"]
    log = await harness.store.list_notifications(order.order_id)
    assert "payment-reminder" not in {row.dedupe_key for row in log}
