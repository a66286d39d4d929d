"""Record order histories for the replay test: `.venv/bin/python -m tests.histories.record [FOLDER]`.

Plays representative journeys on the time-skipping server with the real activities and saves each
workflow's history as JSON in FOLDER (default `cost_per_order/` beside this file, the newest path of
paid orders); `awaiting_payment/` gets the journeys of orders awaiting payment, the only ones that
take that path.
The JSON files directly beside this file were recorded before the `customer-messages-v2` patch, and
those in `customer_messages_v2/` before the `cost-per-order` patch; neither is ever re-recorded: they
stand for orders that were already running when each patch shipped. Re-record only on purpose: the
point of the files is that a workflow change which cannot replay them would break orders already
running.
"""

import asyncio
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import time, timedelta
from pathlib import Path

from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from ordertrack import orders
from ordertrack.domain.messages import CancelRequest, CorrectionRequest, FulfillmentUpdate
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.statuses import FulfillmentEvent, OrderStatus
from ordertrack.domain.view import OrderView
from ordertrack.mail.sink import MailSink
from ordertrack.sms.sink import SmsSink
from starter.client import register_search_attributes
from starter.devserver import time_skipping_server
from tests.conftest import TEST_CLOCK_STARTS_AT, free_port, skip_to
from tests.workflows.harness import Harness, order_worker
from tests.workflows.test_awaiting_payment import REMINDER_AFTER, pix_order
from tests.workflows.test_customer_messages import SEOUL, texting_order
from tests.workflows.test_order_workflow import new_order, ship

HERE = Path(__file__).parent
DEFAULT_FOLDER = HERE / "cost_per_order"
Journey = Callable[[Harness], Awaitable[WorkflowHandle[object, OrderView]]]


async def _shipped(h: Harness, prefix: str) -> WorkflowHandle[object, OrderView]:
    order = new_order()
    await orders.start_order(h.client, order, TimingPolicy(), h.task_queue, shop_webhooks=False)
    await ship(h, order, f"{prefix}{order.order_id}")
    return h.client.get_workflow_handle(f"order-{order.order_id}", result_type=OrderView)


async def on_time(h: Harness) -> WorkflowHandle[object, OrderView]:
    return await _shipped(h, "SIM-ONTIME-")


async def estimate_moved(h: Harness) -> WorkflowHandle[object, OrderView]:
    return await _shipped(h, "SIM-DELAYED-")


async def failed_attempt(h: Harness) -> WorkflowHandle[object, OrderView]:
    return await _shipped(h, "SIM-FAILED-")


async def lost(h: Harness) -> WorkflowHandle[object, OrderView]:
    return await _shipped(h, "SIM-LOST-")


async def payment_timeout(h: Harness) -> WorkflowHandle[object, OrderView]:
    order = new_order(payment={"status": "pending"})
    await orders.start_order(h.client, order, TimingPolicy(), h.task_queue)
    return h.client.get_workflow_handle(f"order-{order.order_id}", result_type=OrderView)


async def operator_actions(h: Harness) -> WorkflowHandle[object, OrderView]:
    """An operator's day: a correction, a tracking-link rotation, then a cancellation."""
    order = new_order()
    await orders.start_order(h.client, order, TimingPolicy(), h.task_queue)
    correction = CorrectionRequest(
        status=OrderStatus.PACKED, reason="warehouse forgot to scan", operator="rita"
    )
    await orders.correct_status(h.client, order.order_id, correction)
    await orders.rotate_tracking_token(h.client, order.order_id, "link forwarded by mistake", "rita")
    await orders.cancel_order(
        h.client, order.order_id, CancelRequest(reason="customer asked", operator="rita")
    )
    return h.client.get_workflow_handle(f"order-{order.order_id}", result_type=OrderView)


async def texts_quiet_hours_reminder(h: Harness) -> WorkflowHandle[object, OrderView]:
    """Email and texts to a customer for whom it is 2 a.m. at shipping (texts wait on the quiet-hours
    timer), a silent correction to packed, and a failed attempt left long enough for its reminder."""
    await skip_to(h.env, time(2, 0), SEOUL)
    order = texting_order(time_zone=SEOUL)
    policy = TimingPolicy(failed_attempt_follow_up=timedelta(hours=6))
    await orders.start_order(h.client, order, policy, h.task_queue)
    silent = CorrectionRequest(
        status=OrderStatus.PACKED,
        reason="packed before the scanner came back",
        operator="rita",
        notify_customer=False,
    )
    await orders.correct_status(h.client, order.order_id, silent)
    shipped = FulfillmentUpdate(
        event=FulfillmentEvent.SHIPPED, carrier="simulated", tracking_number=f"SIM-FAILED-{order.order_id}"
    )
    await orders.record_fulfillment(h.client, order.order_id, shipped)
    return h.client.get_workflow_handle(f"order-{order.order_id}", result_type=OrderView)


async def awaiting_payment_timeout(h: Harness) -> WorkflowHandle[object, OrderView]:
    """A Pix order in São Paulo with texts: how to pay at once (its text at 08:00 there), the
    reminder waiting for the morning, then the timeout's cancellation."""
    order = pix_order()
    await orders.start_order(h.client, order, TimingPolicy(), h.task_queue)
    return h.client.get_workflow_handle(f"order-{order.order_id}", result_type=OrderView)


async def paid_after_the_reminder(h: Harness) -> WorkflowHandle[object, OrderView]:
    """Reminded, then paid and shipped on time."""
    order = pix_order()
    await orders.start_order(h.client, order, TimingPolicy(), h.task_queue)
    await h.env.sleep(REMINDER_AFTER + timedelta(hours=3))
    paid = FulfillmentUpdate(event=FulfillmentEvent.PAYMENT_CONFIRMED)
    await orders.record_fulfillment(h.client, order.order_id, paid)
    await ship(h, order, f"SIM-ONTIME-{order.order_id}")
    return h.client.get_workflow_handle(f"order-{order.order_id}", result_type=OrderView)


JOURNEYS: dict[str, Journey] = {
    "on_time": on_time,
    "estimate_moved": estimate_moved,
    "failed_attempt": failed_attempt,
    "lost": lost,
    "payment_timeout": payment_timeout,
    "operator_actions": operator_actions,
    "texts_quiet_hours_reminder": texts_quiet_hours_reminder,
}


# Folders whose journeys are not the paid ones above.
FOLDER_JOURNEYS: dict[str, dict[str, Journey]] = {
    "awaiting_payment": {
        "payment_timeout": awaiting_payment_timeout,
        "paid_after_the_reminder": paid_after_the_reminder,
    },
}


async def main(folder: Path) -> None:
    for name, journey in FOLDER_JOURNEYS.get(folder.name, JOURNEYS).items():
        env = await WorkflowEnvironment.start_time_skipping(
            data_converter=pydantic_data_converter, test_server_existing_path=time_skipping_server()
        )
        await register_search_attributes(env.client)
        await skip_to(env, TEST_CLOCK_STARTS_AT)  # the hour every test starts at
        workdir = Path(tempfile.mkdtemp())
        try:
            with (
                MailSink(workdir / "mail", port=free_port()) as mail,
                SmsSink(workdir / "sms", port=free_port()) as sms,
            ):
                task_queue = f"record-{uuid.uuid4().hex[:6]}"
                async with order_worker(env, workdir, mail, task_queue, sms=sms) as harness:
                    handle = await journey(harness)
                    await harness.run_to_end(handle)
                    history = await handle.fetch_history()
        finally:
            await env.shutdown()
        (folder / f"{name}.json").write_text(history.to_json())
        print(f"{name}: {len(history.events)} events")


if __name__ == "__main__":
    destination = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FOLDER
    destination.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(destination))
