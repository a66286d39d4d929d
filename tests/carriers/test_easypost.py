"""The EasyPost adapter: its mapping table over documented fixtures, against a local fake EasyPost
(FastAPI on loopback, basic auth, `POST /v2/trackers`), and its webhook signature check."""

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import unicodedata
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ordertrack.carriers import base
from ordertrack.carriers.base import (
    CarrierAuthError,
    CarrierError,
    CarrierPayloadError,
    CarrierRateLimited,
    CarrierUnavailable,
    TrackingNotFound,
)
from ordertrack.carriers.easypost import STATUSES, EasyPostCarrier, WebhookAuthError, map_status
from ordertrack.domain.statuses import CARRIER_STATUSES, OrderStatus
from tests.conftest import free_port, serving

FIXTURES = Path(__file__).parent / "fixtures" / "easypost"
API_KEY = "EZTK_test_0123456789abcdef"
SECRET = "whsec_s3cr3t_ÅÉ"  # non-ASCII: EasyPost NFKD-normalises the secret before keying the HMAC


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def body_of(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sign(body: bytes, secret: str = SECRET) -> dict[str, str]:
    key = unicodedata.normalize("NFKD", secret).encode()
    return {"X-Hmac-Signature": "hmac-sha256-hex=" + hmac.new(key, body, hashlib.sha256).hexdigest()}


# Fixture file -> (tracker status, canonical status).
EXPECTED: dict[str, tuple[str, OrderStatus]] = {
    "tracker_pre_transit.json": ("pre_transit", OrderStatus.IN_TRANSIT),
    "tracker_unknown.json": ("unknown", OrderStatus.IN_TRANSIT),
    "tracker_in_transit.json": ("in_transit", OrderStatus.IN_TRANSIT),
    "tracker_in_transit_delayed.json": ("in_transit", OrderStatus.IN_TRANSIT),
    "tracker_out_for_delivery.json": ("out_for_delivery", OrderStatus.OUT_FOR_DELIVERY),
    "tracker_delivered.json": ("delivered", OrderStatus.DELIVERED),
    "tracker_delivered_then_scan.json": ("in_transit", OrderStatus.DELIVERED),
    "tracker_available_for_pickup.json": ("available_for_pickup", OrderStatus.AVAILABLE_FOR_PICKUP),
    "tracker_return_to_sender.json": ("return_to_sender", OrderStatus.RETURNED),
    "tracker_failure.json": ("failure", OrderStatus.EXCEPTION),
    "tracker_failure_lost.json": ("failure", OrderStatus.LOST),
    "tracker_cancelled.json": ("cancelled", OrderStatus.EXCEPTION),
    "tracker_error.json": ("error", OrderStatus.EXCEPTION),
    "tracker_unknown_code.json": ("held_at_customs", OrderStatus.IN_TRANSIT),
}
BY_CODE = {
    fixture(name)["tracking_code"]: name for name in EXPECTED if name != "tracker_in_transit_delayed.json"
}


# -- the fake EasyPost ----------------------------------------------------------------------------


class FakeEasyPost:
    """`POST /v2/trackers` from the fixtures; special codes answer with the documented failures."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.overrides: dict[str, str] = {}  # tracking code -> fixture to answer with instead
        self.app = FastAPI()
        self.app.post("/v2/trackers")(self.create_tracker)

    async def create_tracker(self, request: Request) -> Response:
        expected = "Basic " + base64.b64encode(f"{API_KEY}:".encode()).decode()
        if request.headers.get("authorization") != expected:
            return JSONResponse(
                {
                    "error": {
                        "code": "APIKEY.INACTIVE",
                        "message": "This api key is no longer active.",
                        "errors": [],
                    }
                },
                status_code=401,
            )
        payload = await request.json()
        self.requests.append(payload)
        code = payload["tracker"]["tracking_code"]
        if code == "EZ429RATELIMIT":
            return JSONResponse(
                {"error": {"code": "RATE_LIMITED", "message": "Too many requests", "errors": []}},
                status_code=429,
                headers={"Retry-After": "7"},
            )
        if code == "EZ500DOWN":
            return JSONResponse({"error": {"code": "INTERNAL_SERVER_ERROR", "message": "oops"}}, 500)
        if code == "EZMALFORMED":
            return Response(
                b'{"object": "Tracker", "tracking_code": "EZMALFORMED", "status": ',
                200,
                media_type="application/json",
            )
        if code == "EZWRONGSHAPE":
            return JSONResponse({"object": "Tracker", "status": "in_transit", "tracking_details": "none"})
        if code == "EZSOMEONEELSE":
            return JSONResponse(fixture("tracker_delivered.json"))
        if code == "EZSLOW":
            await asyncio.sleep(2)
        name = self.overrides.get(code) or BY_CODE.get(code)
        if name is None:
            return JSONResponse(
                {"error": {"code": "NOT_FOUND", "message": "The requested resource could not be found."}},
                status_code=404,
            )
        return JSONResponse(fixture(name), status_code=201)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fake() -> AsyncIterator[tuple[FakeEasyPost, str]]:
    server = FakeEasyPost()
    async with serving(server.app) as url:
        yield server, url


@pytest_asyncio.fixture(loop_scope="session")
async def carrier(fake: tuple[FakeEasyPost, str]) -> AsyncIterator[EasyPostCarrier]:
    adapter = EasyPostCarrier(fake[1], API_KEY, SECRET, timeout=1.0)
    yield adapter
    await adapter.aclose()


# -- mapping ----------------------------------------------------------------------------------------


def test_table_covers_every_documented_status_with_carrier_statuses() -> None:
    documented = {
        "unknown",
        "pre_transit",
        "in_transit",
        "out_for_delivery",
        "delivered",
        "available_for_pickup",
        "return_to_sender",
        "failure",
        "cancelled",
        "error",
    }
    assert set(STATUSES) == documented
    assert set(STATUSES.values()) <= CARRIER_STATUSES


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_every_fixture_maps_through_the_fake_server(name: str, carrier: EasyPostCarrier) -> None:
    raw, canonical = EXPECTED[name]
    tracker = fixture(name)
    assert tracker["status"] == raw
    code = tracker["tracking_code"]
    if name == "tracker_in_transit_delayed.json":
        return  # polled in test_estimate_moving_later
    snapshot = await carrier.track(code)
    assert snapshot.carrier == "easypost"
    assert snapshot.tracking_number == code
    assert snapshot.status is canonical
    for event in snapshot.events:
        assert event.at.tzinfo is not None
        assert event.code  # the raw EasyPost status is kept
        assert event.status is map_status(event.code, None) or event.status is OrderStatus.LOST
    assert carrier.tracking_url(code) == tracker["public_url"]


async def test_detail_statuses_map_with_raw_code(carrier: EasyPostCarrier) -> None:
    result = await carrier.track("9400110200886666666666")
    assert [(e.code, e.status) for e in result.events] == [
        ("pre_transit", OrderStatus.IN_TRANSIT),
        ("in_transit", OrderStatus.IN_TRANSIT),
        ("in_transit", OrderStatus.IN_TRANSIT),
        ("failure", OrderStatus.EXCEPTION),
        ("return_to_sender", OrderStatus.RETURNED),
    ]
    assert result.events[1].location == "SAN FRANCISCO, CA, US"
    assert result.events[0].location is None
    assert result.estimated_delivery is None


async def test_out_of_order_details_sorted_and_duplicates_dropped(carrier: EasyPostCarrier) -> None:
    snapshot = await carrier.track("9400110200882222222222")
    times = [event.at for event in snapshot.events]
    assert times == sorted(times)
    assert len(snapshot.events) == 4  # five details, one a repeat of the facility arrival
    assert len({event.key for event in snapshot.events}) == 4
    assert snapshot.events[0].code == "pre_transit"
    assert snapshot.estimated_delivery == datetime(2024, 8, 13, tzinfo=UTC)


async def test_delivered_wins_over_a_later_lower_scan(carrier: EasyPostCarrier) -> None:
    snapshot = await carrier.track("9400110200885555555555")
    assert snapshot.events[-1].status is OrderStatus.IN_TRANSIT  # the stray scan is kept, in order
    assert snapshot.status is OrderStatus.DELIVERED


async def test_estimate_moving_later(fake: tuple[FakeEasyPost, str], carrier: EasyPostCarrier) -> None:
    server, _ = fake
    code = "9400110200882222222222"
    first = await carrier.track(code)
    server.overrides[code] = "tracker_in_transit_delayed.json"
    try:
        second = await carrier.track(code)
    finally:
        server.overrides.pop(code)
    assert first.estimated_delivery and second.estimated_delivery
    assert second.estimated_delivery - first.estimated_delivery == timedelta(days=2)
    assert second.fingerprint() != first.fingerprint()
    assert second.events[-1].message == "Delayed due to weather"


async def test_unknown_code_is_in_transit_with_raw_code_and_warning(
    carrier: EasyPostCarrier, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ordertrack.carriers.easypost"):
        snapshot = await carrier.track("9400110200881212121212")
    assert snapshot.status is OrderStatus.IN_TRANSIT
    customs = snapshot.events[-1]
    assert (customs.code, customs.status) == ("held_at_customs", OrderStatus.IN_TRANSIT)
    assert customs.location == "NEWARK, NJ, US"
    assert any("held_at_customs" in record.getMessage() for record in caplog.records)


def test_failure_detail_lost_and_case_insensitive() -> None:
    assert map_status("failure", "lost") is OrderStatus.LOST
    assert map_status("failure", "delivery_exception") is OrderStatus.EXCEPTION
    assert map_status("DELIVERED") is OrderStatus.DELIVERED
    assert map_status(None) is OrderStatus.IN_TRANSIT


# -- the HTTP contract ----------------------------------------------------------------------------


async def test_request_shape_and_basic_auth(fake: tuple[FakeEasyPost, str], carrier: EasyPostCarrier) -> None:
    server, _ = fake
    await carrier.track("9400110200884444444444")
    assert server.requests[-1] == {"tracker": {"tracking_code": "9400110200884444444444"}}


async def test_bad_api_key_is_auth_error(fake: tuple[FakeEasyPost, str]) -> None:
    adapter = EasyPostCarrier(fake[1], "EZTK_wrong", SECRET)
    try:
        with pytest.raises(CarrierAuthError, match=r"401.*APIKEY\.INACTIVE"):
            await adapter.track("9400110200884444444444")
    finally:
        await adapter.aclose()


async def test_unknown_number_is_not_found(carrier: EasyPostCarrier) -> None:
    with pytest.raises(TrackingNotFound, match="404"):
        await carrier.track("EZ000NOSUCH")


async def test_rate_limit_carries_retry_after(carrier: EasyPostCarrier) -> None:
    with pytest.raises(CarrierRateLimited) as caught:
        await carrier.track("EZ429RATELIMIT")
    assert caught.value.retry_after == timedelta(seconds=7)


async def test_server_error_and_timeout_are_unavailable(carrier: EasyPostCarrier) -> None:
    with pytest.raises(CarrierUnavailable, match="500"):
        await carrier.track("EZ500DOWN")
    with pytest.raises(CarrierUnavailable, match="did not answer"):
        await carrier.track("EZSLOW")


async def test_unreachable_is_unavailable() -> None:
    adapter = EasyPostCarrier(f"http://127.0.0.1:{free_port()}", API_KEY, SECRET)
    try:
        with pytest.raises(CarrierUnavailable, match="cannot reach"):
            await adapter.track("9400110200884444444444")
    finally:
        await adapter.aclose()


@pytest.mark.parametrize("code", ["EZMALFORMED", "EZWRONGSHAPE", "EZSOMEONEELSE"])
async def test_bad_bodies_are_payload_errors(code: str, carrier: EasyPostCarrier) -> None:
    with pytest.raises(CarrierPayloadError):
        await carrier.track(code)


# -- webhooks -------------------------------------------------------------------------------------


def test_webhook_signed_event_parses() -> None:
    adapter = EasyPostCarrier("http://unused", API_KEY, SECRET)
    body = body_of("webhook_tracker_updated.json")
    headers = {"x-hmac-signature": sign(body)["X-Hmac-Signature"]}  # header names are case-insensitive
    [snapshot] = adapter.parse_webhook(headers, body)
    assert snapshot.carrier == "easypost"
    assert snapshot.tracking_number == "9400110200884444444444"
    assert snapshot.status is OrderStatus.DELIVERED
    assert snapshot.events[-1].message == "Delivered, In/At Mailbox"
    assert adapter.tracking_url("9400110200884444444444") == "https://track.easypost.com/djE6trk_3dlv"


def test_webhook_non_tracker_event_is_empty() -> None:
    adapter = EasyPostCarrier("http://unused", API_KEY, SECRET)
    body = body_of("webhook_batch_created.json")
    assert adapter.parse_webhook(sign(body), body) == []


@pytest.mark.parametrize(
    "case", ["tampered body", "wrong secret", "missing header", "empty header", "bare hex", "no secret"]
)
def test_webhook_signature_rejected(case: str) -> None:
    body = body_of("webhook_tracker_updated.json")
    adapter = EasyPostCarrier("http://unused", API_KEY, None if case == "no secret" else SECRET)
    headers = sign(body)
    if case == "tampered body":
        body = body.replace(b'"delivered"', b'"return_to_sender"', 1)
    elif case == "wrong secret":
        headers = sign(body, "whsec_other")
    elif case == "missing header":
        headers = {"Content-Type": "application/json"}
    elif case == "empty header":
        headers = {"X-Hmac-Signature": ""}
    elif case == "bare hex":
        headers = {"X-Hmac-Signature": headers["X-Hmac-Signature"].removeprefix("hmac-sha256-hex=")}
    with pytest.raises(WebhookAuthError):
        adapter.parse_webhook(headers, body)
    assert issubclass(WebhookAuthError, CarrierError)
    assert WebhookAuthError is base.WebhookAuthError


@pytest.mark.parametrize(
    "body",
    [
        b'{"object": "Event", "description": "tracker.updated", "result": ',
        b"[]",
        b'{"object": "Tracker", "description": "tracker.updated"}',
        b'{"object": "Event", "description": "tracker.updated"}',
        b'{"object": "Event", "description": "tracker.updated", "result": {"object": "Batch"}}',
        b'{"object": "Event", "description": "tracker.updated", "result": {"object": "Tracker",'
        b' "tracking_code": "bad code with spaces!", "status": "delivered"}}',
    ],
)
def test_webhook_malformed_is_payload_error(body: bytes) -> None:
    adapter = EasyPostCarrier("http://unused", API_KEY, SECRET)
    with pytest.raises(CarrierPayloadError):
        adapter.parse_webhook(sign(body), body)
