"""`POST /webhooks/carriers/{carrier}` with the real app, the dev server and an in-process worker.

Polling is set to once a day, so only the webhook can move the order. The simulated adapter's
webhooks are signed with its development-only key (`sign_webhook`).
"""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.carrier import CarrierActivities
from ordertrack.carriers.registry import CarrierRegistry, UnknownCarrierError, build_registry
from ordertrack.carriers.simulated import SIGNATURE_HEADER, sign_webhook
from ordertrack.domain.records import PollRequest
from ordertrack.domain.statuses import OrderStatus
from ordertrack.domain.tracking import TrackingEvent, TrackingSnapshot
from ordertrack.mail.sink import MailSink
from ordertrack.settings import Settings
from tests.web.conftest import Api, api_settings, running_api

URL = "/webhooks/carriers/simulated"


@pytest.fixture
async def hooks(dev_env: WorkflowEnvironment, tmp_path: Path, mail_sink: MailSink) -> AsyncIterator[Api]:
    settings = api_settings(tmp_path, mail_sink.port, carrier_poll_interval=timedelta(days=1))
    async with running_api(dev_env.client, settings, mail_sink) as running:
        yield running


async def ship(api: Api, order_id: str, number: str) -> None:
    url = f"/api/orders/{order_id}/fulfillment"
    for event in (
        {"event": "picking_started"},
        {"event": "packed", "carrier": "simulated", "tracking_number": number},
        {"event": "shipped"},
    ):
        response = await api.http.post(url, json=event, headers=api.shop)
        assert response.status_code == 200, response.text
    await api.read(order_id, until="shipped")


def delivered_push(number: str) -> bytes:
    now = datetime.now(UTC)
    tracker: dict[str, Any] = {
        "tracking_number": number,
        "status": "DELIVERED",
        "estimated_delivery": None,
        "events": [
            {
                "occurred_at": (now - timedelta(seconds=2)).isoformat(),
                "status": "OUT_FOR_DELIVERY",
                "code": "OD",
                "description": "Out for delivery",
                "location": "São Paulo, BR",
            },
            {
                "occurred_at": (now - timedelta(seconds=1)).isoformat(),
                "status": "DELIVERED",
                "code": "DL",
                "description": "Delivered",
                "location": "São Paulo, BR",
            },
        ],
    }
    return json.dumps(tracker).encode()


async def push(api: Api, body: bytes, signature: str | None = None, carrier: str = "simulated") -> Any:
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature or sign_webhook(body)}
    return await api.http.post(f"/webhooks/carriers/{carrier}", content=body, headers=headers)


async def settled(api: Api, order_id: str) -> dict[str, Any]:
    """The order once its read model has not changed for a while (late effects would show)."""
    before = await api.read(order_id)
    for _ in range(10):
        await asyncio.sleep(0.2)
        now = await api.read(order_id)
        assert now["version"] == before["version"], "the order changed"
    return now


async def test_a_pushed_delivery_moves_a_shipped_order_to_delivered(hooks: Api) -> None:
    order_id, _ = await hooks.start()
    number = f"SIM-ONTIME-{order_id}"
    await ship(hooks, order_id, number)

    response = await push(hooks, delivered_push(number))

    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1}
    order = await hooks.read(order_id, until="delivered")
    scans = [entry for entry in order["timeline"] if entry["kind"] == "scan"]
    assert [scan["message"] for scan in scans] == ["Out for delivery", "Delivered"]
    assert order["carrier"] == "simulated"


async def test_the_same_push_twice_changes_nothing_more(hooks: Api) -> None:
    order_id, _ = await hooks.start()
    number = f"SIM-ONTIME-{order_id}"
    await ship(hooks, order_id, number)
    body = delivered_push(number)
    assert (await push(hooks, body)).status_code == 200
    first = await hooks.read(order_id, until="delivered")
    await settled(hooks, order_id)

    again = await push(hooks, body)

    assert again.status_code == 200, again.text
    assert again.json() == {"accepted": 1}  # delivered to the workflow, which ignores seen scans
    after = await settled(hooks, order_id)
    assert after["version"] == first["version"]
    assert after["timeline"] == first["timeline"]


async def test_a_forged_signature_is_401_and_changes_nothing(hooks: Api) -> None:
    order_id, _ = await hooks.start()
    number = f"SIM-ONTIME-{order_id}"
    await ship(hooks, order_id, number)
    before = await hooks.read(order_id)
    body = delivered_push(number)

    forged = await push(hooks, body, signature=sign_webhook(b"another body"))
    missing = await hooks.http.post(URL, content=body, headers={"Content-Type": "application/json"})

    for response in (forged, missing):
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "invalid_signature"
    after = await settled(hooks, order_id)
    assert after["status"] == "shipped"
    assert after["version"] == before["version"]


async def test_an_unknown_tracking_number_is_acknowledged(hooks: Api) -> None:
    response = await push(hooks, delivered_push("SIM-ONTIME-nobody-has-this"))

    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 0}


async def test_unknown_carrier_is_404_and_a_signed_but_malformed_body_is_acknowledged(hooks: Api) -> None:
    body = delivered_push("SIM-ONTIME-x")
    unknown = await push(hooks, body, carrier="pony-express")
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["error"]["code"] == "unknown_carrier"

    # Signed by the carrier: a 4xx would only make it retry or disable the endpoint.
    malformed = b'{"tracking_number": "SIM-ONTIME-x", "status": '
    response = await push(hooks, malformed)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 0 and "could not be read" in response.json()["ignored"]
    forged = await push(hooks, malformed, signature="0" * 64)
    assert forged.status_code == 401


# -- routing through the default adapter, and the per-carrier limit (no server needed) ------------


class _Aggregator:
    """An aggregator-like adapter that reports snapshots under its own name, counting concurrency."""

    name = "aggregator"
    display_name = "Aggregator"

    def __init__(self) -> None:
        self.running = 0
        self.most = 0

    async def track(self, tracking_number: str) -> TrackingSnapshot:
        self.running += 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(0.02)
        self.running -= 1
        event = TrackingEvent(
            at=datetime(2026, 1, 1, tzinfo=UTC), status=OrderStatus.IN_TRANSIT, message="Departed"
        )
        return TrackingSnapshot(
            carrier=self.name, tracking_number=tracking_number, status=OrderStatus.IN_TRANSIT, events=[event]
        )

    def tracking_url(self, tracking_number: str) -> str | None:
        return None

    def parse_webhook(self, headers: Any, body: bytes) -> list[TrackingSnapshot]:
        return []

    async def aclose(self) -> None:
        pass


def poll_request(carrier: str, number: str) -> PollRequest:
    return PollRequest(carrier=carrier, tracking_number=number, order_id="1001", known_fingerprint=None)


async def test_a_carrier_without_an_adapter_is_polled_through_the_default_under_its_own_name() -> None:
    adapter = _Aggregator()
    registry = CarrierRegistry([adapter], default="aggregator")  # type: ignore[list-item]
    activities = CarrierActivities(registry)

    snapshot = await activities.poll_carrier(poll_request("ups", "1Z999"))

    assert snapshot.carrier == "ups"
    assert registry.carrier_url("ups", "1Z999") == "https://www.ups.com/track?loc=en_US&tracknum=1Z999"
    with pytest.raises(UnknownCarrierError):
        CarrierRegistry([adapter]).resolve("ups")  # type: ignore[list-item]


async def test_concurrent_calls_to_one_carrier_are_limited_per_worker() -> None:
    adapter = _Aggregator()
    registry = CarrierRegistry([adapter], default="aggregator", max_concurrent_calls=2)  # type: ignore[list-item]
    activities = CarrierActivities(registry)

    await asyncio.gather(*(activities.poll_carrier(poll_request("dhl", f"NUM{i}")) for i in range(8)))

    assert adapter.most == 2


async def test_the_registry_is_built_from_the_entry_points() -> None:
    registry = build_registry(Settings(carrier="simulated"))
    try:
        assert "simulated" in registry.names
        assert registry.default == "simulated"
        assert registry.resolve("correios") is registry.get("simulated")
    finally:
        await registry.aclose()
