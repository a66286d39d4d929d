"""The AfterShip adapter: its mapping table over documented fixtures, against a local fake AfterShip
(FastAPI on loopback, `as-api-key`, `GET`/`POST /trackings` under `/tracking/2024-10`), and its
webhook signature check."""

import base64
import copy
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ordertrack.carriers.aftership import (
    STATUS_BY_CODE,
    AfterShipCarrier,
    WebhookAuthError,
    canonical_status,
    snapshot_from_tracking,
)
from ordertrack.carriers.base import (
    CarrierAuthError,
    CarrierPayloadError,
    CarrierRateLimited,
    CarrierUnavailable,
    TrackingNotFound,
)
from ordertrack.domain.statuses import CARRIER_STATUSES, OrderStatus
from tests.conftest import free_port, serving

FIXTURES = Path(__file__).parent / "fixtures" / "aftership"
API_KEY = "asat_0123456789abcdef0123456789abcdef"
SECRET = "aftership-webhook-secret-3f9a"
PREFIX = "/tracking/2024-10"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def tracking(name: str) -> dict[str, Any]:
    return fixture(name)["data"]["trackings"][0]


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def adapter(base_url: str = "http://127.0.0.1:9", secret: str | None = SECRET) -> AfterShipCarrier:
    return AfterShipCarrier(base_url, API_KEY, secret)


# --- Mapping -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("info_received", OrderStatus.IN_TRANSIT, "InfoReceived_001"),
        ("in_transit", OrderStatus.IN_TRANSIT, "InTransit_003"),
        ("out_for_delivery", OrderStatus.OUT_FOR_DELIVERY, "OutForDelivery_001"),
        ("attempt_fail", OrderStatus.DELIVERY_FAILED, "AttemptFail_002"),
        ("delivered", OrderStatus.DELIVERED, "Delivered_001"),
        ("available_for_pickup", OrderStatus.AVAILABLE_FOR_PICKUP, "AvailableForPickup_001"),
        ("exception_customs", OrderStatus.EXCEPTION, "Exception_004"),
        ("exception_returned", OrderStatus.RETURNED, "Exception_011"),
        ("exception_lost", OrderStatus.LOST, "Exception_013"),
        ("expired", OrderStatus.EXCEPTION, None),  # the lone checkpoint is InfoReceived
    ],
)
def test_fixture_maps_to_canonical_status(name: str, status: OrderStatus, code: str | None) -> None:
    snapshot = snapshot_from_tracking(tracking(name))
    assert snapshot.carrier == "aftership"
    assert snapshot.tracking_number == tracking(name)["tracking_number"]
    assert snapshot.status == status
    if code is not None:
        assert snapshot.events[-1].code == code
        assert snapshot.events[-1].status == status


def test_pending_tracking_from_creation_maps_to_in_transit() -> None:
    snapshot = snapshot_from_tracking(fixture("created_pending")["data"])
    assert snapshot.status == OrderStatus.IN_TRANSIT
    assert snapshot.events == []


@pytest.mark.parametrize(
    ("tag", "subtag", "status"),
    [
        ("Pending", "Pending_001", OrderStatus.IN_TRANSIT),
        ("InfoReceived", "InfoReceived_001", OrderStatus.IN_TRANSIT),
        ("InTransit", "InTransit_007", OrderStatus.IN_TRANSIT),
        ("OutForDelivery", "OutForDelivery_004", OrderStatus.OUT_FOR_DELIVERY),
        ("AttemptFail", "AttemptFail_001", OrderStatus.DELIVERY_FAILED),
        ("Delivered", "Delivered_002", OrderStatus.DELIVERED),
        ("AvailableForPickup", "AvailableForPickup_001", OrderStatus.AVAILABLE_FOR_PICKUP),
        ("Exception", "Exception_010", OrderStatus.EXCEPTION),  # returning: not yet back
        ("Exception", "Exception_011", OrderStatus.RETURNED),
        ("Exception", "Exception_012", OrderStatus.EXCEPTION),
        ("Exception", "Exception_013", OrderStatus.LOST),
        ("Expired", "Expired_001", OrderStatus.EXCEPTION),
        ("Delivered", None, OrderStatus.DELIVERED),
    ],
)
def test_tag_and_subtag_table(tag: str, subtag: str | None, status: OrderStatus) -> None:
    assert canonical_status(tag, subtag) == status


def test_table_covers_every_tag_and_only_carrier_statuses() -> None:
    tags = {"Pending", "InfoReceived", "InTransit", "OutForDelivery", "AttemptFail", "Delivered"}
    tags |= {"AvailableForPickup", "Exception", "Expired"}
    assert tags <= set(STATUS_BY_CODE)
    assert set(STATUS_BY_CODE.values()) <= CARRIER_STATUSES
    assert set(STATUS_BY_CODE.values()) == CARRIER_STATUSES  # every canonical status is reachable


def test_unknown_tag_is_in_transit_with_raw_code_and_warning(caplog: pytest.LogCaptureFixture) -> None:
    raw = tracking("in_transit")
    raw["tag"], raw["subtag"] = "Teleported", "Teleported_042"
    raw["checkpoints"][-1].update(tag="Teleported", subtag="Teleported_042")
    with caplog.at_level(logging.WARNING, logger="ordertrack.carriers.aftership"):
        snapshot = snapshot_from_tracking(raw)
    assert snapshot.status == OrderStatus.IN_TRANSIT
    assert snapshot.events[-1].status == OrderStatus.IN_TRANSIT
    assert snapshot.events[-1].code == "Teleported_042"
    assert "Teleported" in caplog.text


def test_unknown_subtag_of_known_tag_takes_the_tag(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ordertrack.carriers.aftership"):
        assert canonical_status("Exception", "Exception_099") == OrderStatus.EXCEPTION
    assert "Exception_099" in caplog.text


def test_events_keep_offsets_location_and_message() -> None:
    snapshot = snapshot_from_tracking(tracking("in_transit"))
    first = snapshot.events[0]
    assert first.at == datetime(2024, 10, 15, 1, 2, tzinfo=UTC)  # 18:02 -07:00
    assert first.at.utcoffset() == timedelta(hours=-7)
    assert first.location == "United States"
    assert snapshot.events[1].location == "Los Angeles, CA, United States"
    assert snapshot.events[1].message == "Pickup Scan"
    pickup = snapshot_from_tracking(tracking("available_for_pickup")).events[-1]
    assert pickup.location == "THE UPS STORE 1234, NEW YORK, NY, US"  # `location` wins when given


def test_out_of_order_and_duplicate_checkpoints_are_sorted_and_deduplicated() -> None:
    raw = tracking("out_for_delivery")
    ordered = snapshot_from_tracking(raw).events
    shuffled = [*reversed(raw["checkpoints"]), copy.deepcopy(raw["checkpoints"][2])]
    raw["checkpoints"] = shuffled
    events = snapshot_from_tracking(raw).events
    assert events == ordered
    assert [event.at for event in events] == sorted(event.at for event in events)
    assert len(events) == len(shuffled) - 1


def test_delivered_wins_over_a_later_lower_status_checkpoint() -> None:
    raw = tracking("delivered")
    stray = copy.deepcopy(raw["checkpoints"][-2])  # an "out for delivery" scan after the doorstep
    stray["checkpoint_time"] = "2024-10-20T08:00:00-04:00"
    raw["checkpoints"].append(stray)
    raw["tag"], raw["subtag"] = "OutForDelivery", "OutForDelivery_001"
    snapshot = snapshot_from_tracking(raw)
    assert snapshot.status == OrderStatus.DELIVERED
    assert snapshot.events[-1].status == OrderStatus.OUT_FOR_DELIVERY


def test_return_after_delivery_is_not_overridden() -> None:
    raw = tracking("delivered")
    raw["tag"], raw["subtag"] = "Exception", "Exception_011"
    assert snapshot_from_tracking(raw).status == OrderStatus.RETURNED


def test_estimated_delivery_prefers_custom_then_courier_then_aftership() -> None:
    custom = snapshot_from_tracking(tracking("exception_customs")).estimated_delivery
    assert custom == datetime(2024, 10, 10, 23, 59, 59, tzinfo=UTC) + timedelta(hours=-1)  # range end
    assert snapshot_from_tracking(tracking("exception_returned")).estimated_delivery == datetime(
        2024, 9, 6, 21, 0, tzinfo=UTC
    )
    courier = snapshot_from_tracking(tracking("in_transit")).estimated_delivery
    assert courier == datetime(2024, 10, 19, tzinfo=UTC)  # a bare date: midnight UTC
    raw = tracking("in_transit")
    raw["courier_estimated_delivery_date"] = None
    assert snapshot_from_tracking(raw).estimated_delivery == datetime(2024, 10, 20, tzinfo=UTC)
    raw["aftership_estimated_delivery_date"] = None
    assert snapshot_from_tracking(raw).estimated_delivery is None


# --- Webhooks ------------------------------------------------------------------------------------------
def webhook_body() -> bytes:
    return (FIXTURES / "webhook_tracking_update.json").read_bytes()


def test_webhook_with_valid_signature_gives_a_snapshot() -> None:
    body = webhook_body()
    [snapshot] = adapter().parse_webhook({"Aftership-Hmac-Sha256": sign(body)}, body)
    assert snapshot.carrier == "aftership"
    assert snapshot.tracking_number == "1Z999AA10123456784"
    assert snapshot.status == OrderStatus.OUT_FOR_DELIVERY


@pytest.mark.parametrize(
    "case", ["tampered body", "wrong secret", "missing header", "empty header", "no secret configured"]
)
def test_webhook_signature_rejected(case: str) -> None:
    body = webhook_body()
    headers = {"aftership-hmac-sha256": sign(body)}
    carrier = adapter()
    if case == "tampered body":
        body = body.replace(b'"OutForDelivery"', b'"Delivered"', 1)
    elif case == "wrong secret":
        headers = {"aftership-hmac-sha256": sign(body, "not-the-secret")}
    elif case == "missing header":
        headers = {}
    elif case == "empty header":
        headers = {"aftership-hmac-sha256": ""}
    else:
        carrier = adapter(secret=None)
    with pytest.raises(WebhookAuthError):
        carrier.parse_webhook(headers, body)


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"event": "tracking_update", "msg": {"tag": "InTransit"}}'],
    ids=["malformed", "not an object", "tracking without a number"],
)
def test_webhook_bad_payload_is_a_payload_error(body: bytes) -> None:
    with pytest.raises(CarrierPayloadError):
        adapter().parse_webhook({"aftership-hmac-sha256": sign(body)}, body)


def test_webhook_other_events_give_nothing() -> None:
    body = json.dumps({"event": "tracking_pending_time", "event_id": "x", "msg": None, "ts": 1}).encode()
    assert adapter().parse_webhook({"aftership-hmac-sha256": sign(body)}, body) == []


# --- Against a fake AfterShip ---------------------------------------------------------------------------
class FakeAfterShip:
    """Just enough of the 2024-10 Tracking API: envelope, `as-api-key`, list by number, create."""

    def __init__(self) -> None:
        self.trackings: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.app = FastAPI()
        self.app.add_api_route(f"{PREFIX}/trackings", self.list_trackings, methods=["GET"])
        self.app.add_api_route(f"{PREFIX}/trackings", self.create_tracking, methods=["POST"])
        self.app.add_api_route("/healthz", lambda: {"ok": True}, methods=["GET"])

    def _denied(self, request: Request) -> JSONResponse | None:
        if request.headers.get("as-api-key") != API_KEY:
            return JSONResponse(fixture("error_401"), status_code=401)
        return None

    async def list_trackings(self, request: Request) -> JSONResponse:
        number = request.query_params.get("tracking_numbers", "")
        self.requests.append(("GET", number))
        if (denied := self._denied(request)) is not None:
            return denied
        if number.startswith("RATELIMIT"):
            return JSONResponse(fixture("error_429"), status_code=429, headers={"Retry-After": "7"})
        if number.startswith("RESET"):
            reset = str(int(datetime.now(UTC).timestamp()) + 30)
            return JSONResponse(fixture("error_429"), status_code=429, headers={"X-RateLimit-Reset": reset})
        if number.startswith("GONE"):
            return JSONResponse(fixture("error_404"), status_code=404)
        if number.startswith("BROKEN"):
            return JSONResponse(content={"meta": {"code": 200}, "data": {"trackings": "nope"}})
        if number.startswith("DOWN"):
            return JSONResponse({"meta": {"code": 503}, "data": {}}, status_code=503)
        body = fixture("empty_list")
        if number in self.trackings:
            body["data"]["trackings"] = [self.trackings[number]]
            body["data"]["pagination"]["total"] = 1
        return JSONResponse(body)

    async def create_tracking(self, request: Request) -> JSONResponse:
        number = (await request.json())["tracking_number"]
        self.requests.append(("POST", number))
        if (denied := self._denied(request)) is not None:
            return denied
        if number.startswith("NOCOURIER"):
            return JSONResponse(fixture("error_4012"), status_code=400)
        created = fixture("created_pending")
        created["data"]["tracking_number"] = number
        self.trackings[number] = created["data"]
        return JSONResponse(created, status_code=201)


@pytest_asyncio.fixture(scope="module")
async def fake() -> AsyncIterator[tuple[FakeAfterShip, str]]:
    server = FakeAfterShip()
    async with serving(server.app) as url:
        yield server, url + PREFIX


@pytest_asyncio.fixture
async def carrier(fake: tuple[FakeAfterShip, str]) -> AsyncIterator[AfterShipCarrier]:
    carrier = adapter(fake[1])
    yield carrier
    await carrier.aclose()


@pytest.mark.parametrize("name", ["in_transit", "delivered", "exception_returned", "exception_lost"])
async def test_track_known_number(
    fake: tuple[FakeAfterShip, str], carrier: AfterShipCarrier, name: str
) -> None:
    raw = tracking(name)
    fake[0].trackings[raw["tracking_number"]] = raw
    snapshot = await carrier.track(raw["tracking_number"])
    assert snapshot == snapshot_from_tracking(raw)
    assert fake[0].requests[-1] == ("GET", raw["tracking_number"])


async def test_unknown_number_is_created_then_listed(
    fake: tuple[FakeAfterShip, str], carrier: AfterShipCarrier
) -> None:
    number = "9261290100130435082136"
    fake[0].trackings.pop(number, None)
    first = await carrier.track(number)
    assert first.status == OrderStatus.IN_TRANSIT and first.events == []
    assert fake[0].requests[-2:] == [("GET", number), ("POST", number)]
    await carrier.track(number)
    assert fake[0].requests[-1] == ("GET", number)  # no second creation


async def test_uncreatable_number_is_not_found(carrier: AfterShipCarrier) -> None:
    with pytest.raises(TrackingNotFound, match="4012"):
        await carrier.track("NOCOURIER12345")


async def test_bad_api_key_is_auth_error(fake: tuple[FakeAfterShip, str]) -> None:
    carrier = AfterShipCarrier(fake[1], "wrong-key", SECRET)
    try:
        with pytest.raises(CarrierAuthError, match="401"):
            await carrier.track("1Z999AA10123456784")
    finally:
        await carrier.aclose()


async def test_404_is_tracking_not_found(carrier: AfterShipCarrier) -> None:
    with pytest.raises(TrackingNotFound):
        await carrier.track("GONE123456")


async def test_429_with_retry_after_is_rate_limited(carrier: AfterShipCarrier) -> None:
    with pytest.raises(CarrierRateLimited) as caught:
        await carrier.track("RATELIMIT123")
    assert caught.value.retry_after == timedelta(seconds=7)


async def test_429_with_ratelimit_reset_header(carrier: AfterShipCarrier) -> None:
    with pytest.raises(CarrierRateLimited) as caught:
        await carrier.track("RESET123456")
    assert caught.value.retry_after is not None
    assert timedelta(seconds=25) <= caught.value.retry_after <= timedelta(seconds=30)


async def test_5xx_and_unreachable_are_unavailable(carrier: AfterShipCarrier) -> None:
    with pytest.raises(CarrierUnavailable):
        await carrier.track("DOWN123456")
    closed = AfterShipCarrier(f"http://127.0.0.1:{free_port()}{PREFIX}", API_KEY, SECRET, timeout=1)
    try:
        with pytest.raises(CarrierUnavailable):
            await closed.track("1Z999AA10123456784")
    finally:
        await closed.aclose()


async def test_invalid_shape_is_payload_error(carrier: AfterShipCarrier) -> None:
    with pytest.raises(CarrierPayloadError, match="invalid"):
        await carrier.track("BROKEN123456")
