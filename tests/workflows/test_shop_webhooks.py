"""Shop webhooks end to end on the time-skipping server: the real activities POST signed events to
a real receiver on loopback that checks every signature with `ordertrack.webhooks.verify`."""

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.webhooks import ShopWebhookActivities
from ordertrack import orders
from ordertrack.domain.messages import CancelRequest, FulfillmentUpdate
from ordertrack.domain.models import Order
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.statuses import FulfillmentEvent, OrderStatus
from ordertrack.domain.view import OrderView
from ordertrack.mail.sink import MailSink
from ordertrack.names import DELIVER_SHOP_EVENT
from ordertrack.serving import serve_app
from ordertrack.webhooks import WebhookVerificationError, verify
from tests.conftest import free_port
from tests.factories import sample_order
from tests.workflows.harness import Harness, order_worker
from workflows.order import OrderWorkflow

SECRET = "whsec_" + base64.b64encode(b"shop webhook secret for tests").decode()


@dataclass
class Delivery:
    headers: dict[str, str]
    body: dict[str, Any]
    answered: int


@dataclass
class Receiver:
    """A shop's webhook endpoint: verifies, then answers what `answer(n)` says for the n-th delivery."""

    url: str
    answer: Callable[[int], int] = lambda n: 500 if n == 0 else 200
    deliveries: list[Delivery] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> list[dict[str, Any]]:
        return [d.body for d in self.deliveries if 200 <= d.answered < 300]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"ok": "yes"}

        @app.post("/hooks/ordertrack")
        async def hook(request: Request) -> Response:
            body = await request.body()
            try:
                payload = verify(SECRET, request.headers, body)
            except WebhookVerificationError as err:
                self.invalid.append(str(err))
                return Response(status_code=401)
            code = self.answer(len(self.deliveries))
            self.deliveries.append(Delivery(dict(request.headers), payload, code))
            return Response(status_code=code)

        return app


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    receiving = Receiver(f"http://127.0.0.1:{port}/hooks/ordertrack")
    stop = asyncio.Event()
    task = asyncio.create_task(serve_app(receiving.app(), "127.0.0.1", port, stop=stop))
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        else:
            raise RuntimeError("webhook receiver did not start")
    yield receiving
    stop.set()
    await asyncio.wait_for(task, 10)


@pytest.fixture
async def harness(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path, mail_sink: MailSink, receiver: Receiver
) -> AsyncIterator[Harness]:
    webhooks = ShopWebhookActivities(receiver.url, SECRET)
    task_queue = f"orders-{uuid.uuid4()}"
    async with order_worker(time_skipping_env, tmp_path, mail_sink, task_queue, webhooks) as running:
        yield running
    await webhooks.aclose()


def pending_order() -> Order:
    order_id = f"wh-{uuid.uuid4().hex[:10]}"
    customer = {"name": "Ana Souza", "email": f"{order_id}@example.com", "locale": "en"}
    return sample_order(order_id=order_id, customer=customer, payment={"status": "pending"})


async def start(h: Harness, order: Order, *, shop_webhooks: bool) -> WorkflowHandle[OrderWorkflow, OrderView]:
    started = await orders.start_order(
        h.client, order, TimingPolicy(), h.task_queue, shop_webhooks=shop_webhooks
    )
    h.started.append(started.workflow_id)
    return h.client.get_workflow_handle_for(OrderWorkflow.run, started.workflow_id)


async def wait_for(h: Harness, condition: Callable[[], bool], what: str) -> None:
    """Retries wait in backoff on the server's clock, which the test server does not skip alone."""
    for _ in range(100):
        if condition():
            return
        await h.env.sleep(timedelta(seconds=5))
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def confirm_then_cancel(h: Harness, order: Order, receiver: Receiver | None) -> OrderView:
    def accepted(n: int) -> Callable[[], bool]:
        return lambda: receiver is None or len(receiver.accepted) >= n

    await wait_for(h, accepted(1), "the start's event")
    await orders.record_fulfillment(
        h.client, order.order_id, FulfillmentUpdate(event=FulfillmentEvent.PAYMENT_CONFIRMED)
    )
    await wait_for(h, accepted(2), "the confirmation's event")
    await orders.cancel_order(
        h.client, order.order_id, CancelRequest(reason="customer changed their mind", operator="rita")
    )
    return await h.run_to_end(h.client.get_workflow_handle_for(OrderWorkflow.run, f"order-{order.order_id}"))


async def test_signed_events_in_order_retried_with_the_same_id(harness: Harness, receiver: Receiver):
    order = pending_order()
    await start(harness, order, shop_webhooks=True)
    result = await confirm_then_cancel(harness, order, receiver)
    assert result.status == OrderStatus.CANCELLED

    assert receiver.invalid == []  # every delivery, retries included, was signed correctly
    first, retry = receiver.deliveries[:2]
    assert first.answered == 500 and retry.answered == 200
    assert first.headers["webhook-id"] == retry.headers["webhook-id"] == first.body["event_id"]
    assert first.body == retry.body
    assert int(retry.headers["webhook-timestamp"]) >= int(first.headers["webhook-timestamp"])
    assert all(d.headers["content-type"] == "application/json" for d in receiver.deliveries)
    assert all(d.headers["user-agent"].startswith("ordertrack/") for d in receiver.deliveries)

    accepted = receiver.accepted
    assert [e["status"] for e in accepted] == ["received", "confirmed", "cancelled"]
    seqs = [e["seq"] for e in accepted]
    assert seqs == sorted(set(seqs)), f"seq must strictly increase: {seqs}"
    ids = [e["event_id"] for e in accepted]
    assert len(ids) == len(set(ids))
    assert ids == [f"evt_{order.order_id}_{seq}" for seq in seqs]
    assert seqs[-1] == result.version  # the workflow ended only after its last event was delivered
    assert all(e["order_id"] == order.order_id and e["delayed"] is False for e in accepted)
    assert set(accepted[0]) == {
        "event_id",
        "order_id",
        "status",
        "delayed",
        "at",
        "seq",
        "carrier",
        "tracking_number",
        "estimated_delivery",
        "delay_reason",
    }


async def test_an_order_started_without_shop_webhooks_sends_nothing(harness: Harness, receiver: Receiver):
    order = pending_order()
    handle = await start(harness, order, shop_webhooks=False)
    result = await confirm_then_cancel(harness, order, None)
    assert result.status == OrderStatus.CANCELLED
    assert receiver.deliveries == [] and receiver.invalid == []
    history = json.dumps((await handle.fetch_history()).to_json_dict())
    assert DELIVER_SHOP_EVENT not in history


async def test_a_rejected_event_is_given_up_and_the_next_ones_still_go(harness: Harness, receiver: Receiver):
    receiver.answer = lambda n: 422 if n == 0 else 200  # the receiver refuses the first event for good
    order = pending_order()
    await start(harness, order, shop_webhooks=True)
    await wait_for(harness, lambda: len(receiver.deliveries) >= 1, "the first delivery")
    result = await confirm_then_cancel(harness, order, None)

    assert result.status == OrderStatus.CANCELLED and receiver.invalid == []
    assert [d.answered for d in receiver.deliveries] == [422, 200, 200]  # no retry of the refused one
    assert [e["status"] for e in receiver.accepted] == ["confirmed", "cancelled"]
