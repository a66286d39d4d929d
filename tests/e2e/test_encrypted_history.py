"""Encrypted history on the real dev server: the server keeps only ciphertext of the customer's data,
the codec endpoint gets it back, and a key rotated out of "current" still opens what it wrote."""

import base64
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from ordertrack.codec import ENCODING, KEY_ID_METADATA, data_converter
from ordertrack.mail.sink import MailSink
from ordertrack.settings import Settings
from ordertrack.web import codec
from tests.factories import order_data
from tests.web.conftest import api_settings, new_order_id, running_api

pytestmark = pytest.mark.e2e

OLD_KEY, NEW_KEY = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every Payload anywhere in a proto message (inputs, results, memo, headers, summaries...)."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            items = value.values()
            if field.message_type.fields_by_name["value"].type != FieldDescriptor.TYPE_MESSAGE:
                continue
        else:
            items = [value] if isinstance(value, Message) else value
        for item in items:
            yield from payloads_in(item)


def key_id(payload: Payload) -> str | None:
    if payload.metadata.get("encoding") != ENCODING:
        return None
    return payload.metadata[KEY_ID_METADATA].decode()


async def encrypted_client(dev_env: WorkflowEnvironment, settings: Settings) -> Client:
    return await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=dev_env.client.namespace,
        data_converter=data_converter(settings),
    )


async def test_history_holds_only_ciphertext_and_the_codec_opens_it(
    dev_env: WorkflowEnvironment, tmp_path: Path, mail_sink: MailSink
):
    order_id = new_order_id("enc")
    email = f"enc-{secrets.token_hex(4)}@example.com"
    sample = order_data()
    customer = {**sample["customer"], "email": email}
    pii = [
        email,
        customer["name"],
        sample["shipping_address"]["line1"],
        sample["shipping_address"]["postal_code"],
    ]

    # 1. Encrypting with "old": the order starts and is confirmed.
    before = api_settings(tmp_path, mail_sink.port, encryption_keys={"old": OLD_KEY})
    async with running_api(await encrypted_client(dev_env, before), before, mail_sink) as api:
        _, started = await api.start(order_id=order_id, customer=customer)
        assert started.status_code == 201, started.text
        await api.read(order_id, until="confirmed")

    # 2. Rotated: "new" encrypts, "old" is kept to decrypt. A fresh worker replays the old history
    #    (payloads under "old") and writes new events under "new".
    after = api_settings(
        tmp_path,
        mail_sink.port,
        task_queue=before.task_queue,
        encryption_keys={"old": OLD_KEY, "new": NEW_KEY},
        encryption_key_id="new",
    )
    async with running_api(await encrypted_client(dev_env, after), after, mail_sink) as api:
        moved = await api.http.post(
            f"/api/orders/{order_id}/fulfillment", json={"event": "picking_started"}, headers=api.shop
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["status"] == "picking"

        # 3. The raw history, read without the codec.
        history = await dev_env.client.get_workflow_handle(f"order-{order_id}").fetch_history()
        raw = b"".join(event.SerializeToString() for event in history.events)
        for value in pii:
            assert value.encode() not in raw, f"{value!r} is in the history in plain text"

        payloads = [p for event in history.events for p in payloads_in(event)]
        keys_used = {key_id(p) for p in payloads}
        assert {"old", "new"} <= keys_used
        started_event = history.events[0].workflow_execution_started_event_attributes
        [order_input] = started_event.input.payloads
        assert key_id(order_input) == "old"
        # What may stay plain: the search attributes, which hold no PII by design, and what the SDK's
        # core writes in its markers past the codec: a patch's name, and a local activity's
        # bookkeeping (sequence, attempt, activity type; its result is encrypted).
        plain = [p for p in payloads if key_id(p) is None]
        indexed = [p for e in history.events for p in payloads_in(_search_attributes_of(e))]
        marker_details = [
            e.marker_recorded_event_attributes.details
            for e in history.events
            if e.HasField("marker_recorded_event_attributes")
        ]
        patches = [
            p for details in marker_details if "patch-data" in details for p in details["patch-data"].payloads
        ]
        patch_names = (
            b"customer-messages-v2",
            b"cost-per-order",
            b"operator-signals",
            b"suppressed-on-timeline",
        )
        assert patches and all(any(name in p.data for name in patch_names) for p in patches)
        bookkeeping = [p for details in marker_details if "data" in details for p in details["data"].payloads]
        assert all(b'"activity_type"' in p.data for p in bookkeeping)
        markers = patches + bookkeeping
        strays = [p for p in plain if not any(p == q for q in indexed + markers)]
        assert not strays, strays[:3]

        # 4. The codec endpoint opens them all, under either key.
        body = json_format.MessageToDict(Payloads(payloads=[p for p in payloads if key_id(p)]))
        # The codec alone, as on its own loopback listener (the public port has none without a token).
        codec_app = codec.standalone_app(after)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=codec_app), base_url="http://c") as c:
            decoded = await c.post("/codec/decode", json=body, headers={"X-Namespace": "default"})
        assert decoded.status_code == 200, decoded.text
        opened = [json_format.ParseDict(p, Payload()) for p in decoded.json()["payloads"]]
        assert all(key_id(p) is None for p in opened)
        first = json_format.ParseDict(decoded.json()["payloads"][0], Payload())
        assert email.encode() in first.data  # the order input, under the rotated-out key


def _search_attributes_of(event: Message) -> Message:
    """The part of an event that holds search attributes (or an empty message)."""
    from temporalio.api.history.v1 import HistoryEvent

    assert isinstance(event, HistoryEvent)
    if event.HasField("workflow_execution_started_event_attributes"):
        return event.workflow_execution_started_event_attributes.search_attributes
    if event.HasField("upsert_workflow_search_attributes_event_attributes"):
        return event.upsert_workflow_search_attributes_event_attributes.search_attributes
    return HistoryEvent()
