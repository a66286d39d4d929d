"""Customer messages end to end: real worker and carrier processes, an aiosmtpd sink and an SMS sink.

Each journey must produce exactly the expected messages, in order, each once, in the customer's
language; refusals and outages of the mail server must neither duplicate a message nor block an order.
"""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from ordertrack.domain.statuses import OrderStatus
from ordertrack.mail.sink import MailSink
from ordertrack.sms.sink import SmsSink
from ordertrack.store.repository import Store
from tests.conftest import eventually, free_port
from tests.e2e.stack import Stack, running_stack
from tests.e2e.test_end_to_end import finish, mails_to
from tests.factories import order_data

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]

KOREAN = {"name": "김민지", "locale": "ko", "time_zone": "Asia/Seoul", "phone": "+821012345678"}
BRAZILIAN = {
    "name": "Ana Souza",
    "locale": "pt-BR",
    "time_zone": "America/Sao_Paulo",
    "phone": "+5511999990000",
}


# Every message of every journey is checked here, so each carrier state must outlast a poll delayed
# by a busy machine: a three-day journey in 30 s (a failed attempt's 14 hours last about 6 s).
JOURNEY_SPEED = 72 * 3600 / 30


@pytest.fixture
async def stack(
    dev_env: WorkflowEnvironment, database_url: str, tmp_path: Path, mail_sink: MailSink
) -> AsyncIterator[Stack]:
    with SmsSink(tmp_path / "sms", port=free_port()) as sms:
        async with running_stack(dev_env, database_url, tmp_path, mail_sink, sms, JOURNEY_SPEED) as running:
            yield running


async def start_order(
    stack: Stack, journey: str, customer: dict[str, str], sms: bool = False
) -> dict[str, str]:
    """Start a paid order through the CLI and ship it with the simulated carrier's `journey`."""
    order_id = f"e2e-{uuid.uuid4().hex[:10]}"
    email = f"{order_id}@example.com"
    data = order_data(
        order_id=order_id, customer={**customer, "email": email}, notify={"email": True, "sms": sms}
    )
    path = stack.workdir / f"{order_id}.json"
    path.write_text(json.dumps(data))
    await stack.cli_ok("order", "start", str(path))
    tracking_number = f"SIM-{journey}-{order_id.upper()}"
    await stack.cli_ok(
        "order", "event", order_id, "shipped", "--carrier", "simulated", "--tracking-number", tracking_number
    )
    return {
        "order_id": order_id,
        "email": email,
        "phone": customer["phone"],
        "tracking_number": tracking_number,
    }


def kinds(messages: list[dict[str, Any]], channel: str) -> list[str]:
    """Message kinds of one channel from the notification log, in send order."""
    return [row["kind"] for row in messages if row["channel"] == channel]


def check_emails(mails: list[EmailMessage], log: list[dict[str, Any]], language: str) -> list[str]:
    """Each mail is in the customer's language and logged as sent under its Message-ID; returns the
    kinds in the order they arrived."""
    by_id = {row["message_id"]: row for row in log if row["channel"] == "email"}
    arrived = []
    for mail in mails:
        row = by_id[str(mail["Message-ID"])]
        assert row["status"] == "sent", row
        assert mail["Content-Language"] == language
        assert mail.get_content_type() == "multipart/alternative"
        arrived.append(row["kind"])
    assert len({m["Message-ID"] for m in mails}) == len(mails), "a message arrived twice"
    return arrived


async def test_three_customers_side_by_side(stack: Stack, dev_env: WorkflowEnvironment):
    """A Korean delayed journey, a Portuguese failed attempt by email and text, and a refused
    address, run at once on one stack (each checks its own customer's messages)."""
    await asyncio.gather(
        delayed_journey_in_korean(stack, dev_env),
        failed_attempt_journey_in_portuguese_by_email_and_text(stack, dev_env),
        a_permanently_refused_address_is_recorded_and_the_order_completes(stack, dev_env),
    )


async def delayed_journey_in_korean(stack: Stack, dev_env: WorkflowEnvironment) -> None:
    order = await start_order(stack, "DELAYED", KOREAN)
    result = await finish(dev_env, order["order_id"], stack)
    assert result.status == OrderStatus.COMPLETED

    shown = await stack.show(order["order_id"])
    expected = ["confirmation", "shipped", "delayed", "out_for_delivery", "delivered", "review_request"]
    mails = mails_to(stack.sink, order["email"])
    assert check_emails(mails, shown["messages"], "ko") == expected
    assert kinds(shown["messages"], "email") == expected
    for mail in mails:  # Korean subjects and bodies, not English ones
        assert any("\uac00" <= char <= "\ud7a3" for char in str(mail["Subject"]))
    assert "지연" in str(mails[2]["Subject"])  # "delay"
    assert "늦어지고" in mails[2].get_body(("plain",)).get_content()  # "is running late"


async def failed_attempt_journey_in_portuguese_by_email_and_text(
    stack: Stack, dev_env: WorkflowEnvironment
) -> None:
    order = await start_order(stack, "FAILED", BRAZILIAN, sms=True)
    result = await finish(dev_env, order["order_id"], stack)
    assert result.status == OrderStatus.COMPLETED

    shown = await stack.show(order["order_id"])
    expected = [
        "confirmation",
        "shipped",
        "out_for_delivery",
        "delivery_failed",
        "delivery_failed",  # the reminder: still unresolved a (simulated) day later
        "out_for_delivery",
        "delivered",
        "review_request",
    ]
    mails = mails_to(stack.sink, order["email"])
    assert check_emails(mails, shown["messages"], "pt-BR") == expected
    keys = [row["dedupe_key"] for row in shown["messages"] if row["channel"] == "email"]
    assert keys[2:7] == [
        "out-for-delivery:1",
        "delivery-failed:1",
        "delivery-failed:1:follow-up",
        "out-for-delivery:2",
        "delivered",
    ]
    assert "Entregue" in str(mails[6]["Subject"]) or "entregue" in str(mails[6]["Subject"])

    # Texts: only the moments worth one (no confirmation, no review request), once each, in Portuguese.
    assert stack.sms is not None
    texts = [text for text in stack.sms.messages if text.to == order["phone"]]
    assert kinds(shown["messages"], "sms") == expected[1:-1]
    assert len(texts) == len(expected) - 2
    tracking_url = f"https://shop.example/t/{shown['tracking_token']}"
    assert all(tracking_url in text.body for text in texts)
    assert all(row["status"] == "sent" for row in shown["messages"] if row["channel"] == "sms")


async def a_permanently_refused_address_is_recorded_and_the_order_completes(
    stack: Stack, dev_env: WorkflowEnvironment
) -> None:
    customer = {"name": "Ana Souza", "locale": "en", "phone": "+5511999990000"}
    order_id = f"e2e-{uuid.uuid4().hex[:10]}"
    stack.sink.reject_addresses.add(f"{order_id}@example.com".lower())
    data = order_data(order_id=order_id, customer={**customer, "email": f"{order_id}@example.com"})
    path = stack.workdir / f"{order_id}.json"
    path.write_text(json.dumps(data))
    await stack.cli_ok("order", "start", str(path))
    await stack.cli_ok(
        "order",
        "event",
        order_id,
        "shipped",
        "--carrier",
        "simulated",
        "--tracking-number",
        f"SIM-ONTIME-{order_id}",
    )
    result = await finish(dev_env, order_id, stack)
    assert result.status == OrderStatus.COMPLETED

    shown = await stack.show(order_id)
    assert {row["status"] for row in shown["messages"]} == {"failed"}
    assert all("550" in (row["last_error"] or "") for row in shown["messages"])
    assert all(row["attempts"] == 1 for row in shown["messages"]), "a refusal for good is not retried"
    refusals = [entry for entry in shown["timeline"] if entry["kind"] == "message"]
    assert len(refusals) == len(shown["messages"]) and "550" in refusals[0]["message"]
    human = await stack.cli_ok("order", "show", order_id)
    assert "messages:" in human and "failed" in human


async def test_a_mail_server_outage_is_ridden_out_without_a_duplicate(
    stack: Stack, dev_env: WorkflowEnvironment
):
    customer = {"name": "Ana Souza", "locale": "es", "phone": "+34600000000"}
    order_id = f"e2e-{uuid.uuid4().hex[:10]}"
    email = f"{order_id}@example.com"
    data = order_data(order_id=order_id, customer={**customer, "email": email}, payment={"status": "pending"})
    path = stack.workdir / f"{order_id}.json"
    path.write_text(json.dumps(data))
    await stack.cli_ok("order", "start", str(path))

    store = Store.from_url(stack.database_url)  # read in process: no CLI per check
    try:

        async def statuses() -> set[tuple[str, str]]:
            return {(row.kind, row.status) for row in await store.list_notifications(order_id)}

        async def told_how_to_pay() -> bool:  # in the sink, then logged (the worker made the tables)
            return bool(mails_to(stack.sink, email)) and ("awaiting_payment", "sent") in await statuses()

        await eventually(told_how_to_pay, "the awaiting-payment email")
        stack.sink.stop()  # the mail server goes away just before the confirmation
        try:
            await stack.cli_ok("order", "event", order_id, "payment_confirmed")

            async def attempt_failed() -> bool:
                return ("confirmation", "failed") in await statuses()

            await eventually(attempt_failed, "the confirmation failing against the closed port")
        finally:
            stack.sink.start()
    finally:
        await store.close()
    # The order goes on meanwhile; cancelling it ends it (and sends one more message).
    await stack.cli_ok("order", "cancel", order_id, "--reason", "customer asked by phone")
    result = await finish(dev_env, order_id, stack)
    assert result.status == OrderStatus.CANCELLED

    shown = await stack.show(order_id)
    confirmation = [row for row in shown["messages"] if row["kind"] == "confirmation"]
    assert len(confirmation) == 1 and confirmation[0]["status"] == "sent" and confirmation[0]["attempts"] >= 2
    mails = mails_to(stack.sink, email)
    assert check_emails(mails, shown["messages"], "es") == ["awaiting_payment", "confirmation", "cancelled"]
