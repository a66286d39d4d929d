"""Workflow-level carrier tests: real orders on the dev server, driven by carriers speaking HTTP.

The app runs in-process (ASGI) with an in-process worker on its own task queue (`running_api`),
mail goes to the SMTP sink. EasyPost is a fake served on loopback whose tracker the test advances
step by step, built from the adapter tests' fixtures; the simulated carrier runs in-process with
faults switched on through its `/_sim/config`.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import unicodedata
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from temporalio.testing import WorkflowEnvironment

from ordertrack.carriers import registry
from ordertrack.carriers.simulated import SimulatedCarrier
from ordertrack.carriers.simulator import FaultConfig, serve_simulator
from ordertrack.domain.statuses import OrderStatus
from ordertrack.domain.view import OrderView
from ordertrack.mail.sink import MailSink
from ordertrack.settings import Settings
from tests.conftest import free_port, serving, until_listening
from tests.e2e.test_end_to_end import JOURNEY_MAILS, kind_of, mails_to
from tests.web.conftest import Api, api_settings, running_api, statuses_of

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).parents[1] / "carriers" / "fixtures" / "easypost"
API_KEY = "EZTK_e2e_" + secrets.token_hex(8)
WEBHOOK_SECRET = "whsec_e2e_" + secrets.token_hex(8)
# The fixtures' newest scan (delivery), which `Tracker.step` moves to just before the test began.
FIXTURE_DELIVERED_AT = datetime(2024, 8, 13, 19, 31, tzinfo=UTC)
STEPS = {
    "in_transit": "tracker_in_transit.json",
    "out_for_delivery": "tracker_out_for_delivery.json",
    "delivered": "tracker_delivered.json",
}
FINISH_TIMEOUT = 45.0


def _shift(value: Any, by: timedelta) -> Any:
    """Every ISO timestamp in a fixture (any depth) moved by `by`."""
    if isinstance(value, dict):
        return {key: _shift(item, by) for key, item in value.items()}
    if isinstance(value, list):
        return [_shift(item, by) for item in value]
    if isinstance(value, str) and len(value) == 20 and value[4] == "-" and value.endswith("Z"):
        try:
            moved = datetime.fromisoformat(value) + by
        except ValueError:
            return value
        return moved.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


class Tracker:
    """One EasyPost tracker for one tracking code, at the step the test has moved it to.

    Its scans are the fixtures' (kept in the fixtures' order and spacing, the delivery one minute
    before the test started); its `est_delivery_date` is two days ahead, the same at every step, so
    the order is on time throughout.
    """

    def __init__(self, tracking_code: str) -> None:
        self.tracking_code = tracking_code
        self.started = datetime.now(UTC)
        self.shift = self.started - timedelta(minutes=1) - FIXTURE_DELIVERED_AT
        self.estimate = (self.started + timedelta(days=2)).strftime("%Y-%m-%dT00:00:00Z")
        self.step = "in_transit"

    def body(self, step: str | None = None) -> dict[str, Any]:
        raw = json.loads((FIXTURES / STEPS[step or self.step]).read_text())
        tracker: dict[str, Any] = _shift(raw, self.shift)
        tracker["tracking_code"] = self.tracking_code
        tracker["est_delivery_date"] = self.estimate
        return tracker


class FakeEasyPost:
    """`POST /v2/trackers` (create-or-get, basic auth with the API key) answering the tracker's step."""

    def __init__(self) -> None:
        self.trackers: dict[str, Tracker] = {}
        self.polls: list[str] = []
        self.app = FastAPI()
        self.app.post("/v2/trackers")(self.create_tracker)

    def add(self, tracking_code: str) -> Tracker:
        tracker = self.trackers[tracking_code] = Tracker(tracking_code)
        return tracker

    async def create_tracker(self, request: Request) -> Response:
        expected = "Basic " + base64.b64encode(f"{API_KEY}:".encode()).decode()
        if request.headers.get("authorization") != expected:
            return JSONResponse({"error": {"code": "APIKEY.INACTIVE", "message": "bad key"}}, 401)
        code = (await request.json())["tracker"]["tracking_code"]
        self.polls.append(code)
        tracker = self.trackers.get(code)
        if tracker is None:
            return JSONResponse({"error": {"code": "NOT_FOUND", "message": "no such tracker"}}, 404)
        return JSONResponse(tracker.body(), status_code=201)


@pytest.fixture
async def easypost() -> AsyncIterator[tuple[FakeEasyPost, str]]:
    fake = FakeEasyPost()
    async with serving(fake.app) as url:
        yield fake, url


def easypost_settings(tmp_path: Path, mail: MailSink, url: str, **changes: Any) -> Settings:
    return api_settings(
        tmp_path,
        mail.port,
        easypost_api_key=API_KEY,
        easypost_base_url=url,
        easypost_webhook_secret=WEBHOOK_SECRET,
        **{"review_request_delay": timedelta(seconds=1), **changes},
    )


async def ship(api: Api, order_id: str, carrier: str, number: str) -> None:
    url = f"/api/orders/{order_id}/fulfillment"
    for event in (
        {"event": "picking_started"},
        {"event": "packed", "carrier": carrier, "tracking_number": number},
        {"event": "shipped"},
    ):
        response = await api.http.post(url, json=event, headers=api.shop)
        assert response.status_code == 200, response.text


async def start_and_ship(api: Api, carrier: str, number: str) -> tuple[str, str]:
    """A new order for a new customer, shipped with `carrier`; returns (order id, email)."""
    order_id = f"carrier-e2e-{secrets.token_hex(5)}"
    email = f"{order_id}@example.com"
    _, response = await api.start(
        order_id=order_id, customer={"name": "Ana Souza", "email": email, "locale": "en"}
    )
    assert response.status_code in (200, 201, 202), response.text
    await ship(api, order_id, carrier, number)
    return order_id, email


async def finish(env: WorkflowEnvironment, order_id: str) -> OrderView:
    handle = env.client.get_workflow_handle(f"order-{order_id}", result_type=OrderView)
    try:
        return await asyncio.wait_for(handle.result(), timeout=FINISH_TIMEOUT)
    except TimeoutError:
        view = await handle.query("status", result_type=OrderView)
        raise AssertionError(f"order {order_id} did not finish; it is {view.status}") from None


def sign(body: bytes) -> dict[str, str]:
    key = unicodedata.normalize("NFKD", WEBHOOK_SECRET).encode()
    return {
        "Content-Type": "application/json",
        "X-Hmac-Signature": "hmac-sha256-hex=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
    }


def tracker_updated(tracker: Tracker, step: str) -> bytes:
    """EasyPost's `tracker.updated` Event (the fixture's envelope) carrying the tracker at `step`."""
    event = json.loads((FIXTURES / "webhook_tracker_updated.json").read_text())
    event = _shift(event, tracker.shift)
    event["id"] = "evt_" + secrets.token_hex(10)
    event["result"] = tracker.body(step)
    return json.dumps(event).encode()


def assert_mails_once_each(sink: MailSink, email: str, expected: list[str]) -> list[str]:
    mails = mails_to(sink, email)
    kinds = [kind_of(mail) for mail in mails]
    assert kinds == expected, kinds
    assert len({mail["Message-ID"] for mail in mails}) == len(mails), "a Message-ID repeats"
    return kinds


def scan_messages(order: dict[str, Any]) -> list[str]:
    return [entry["message"] for entry in order["timeline"] if entry["kind"] == "scan"]


# -- EasyPost by polling --------------------------------------------------------------------------


async def test_easypost_order_is_delivered_by_polling(
    dev_env: WorkflowEnvironment,
    tmp_path: Path,
    mail_sink: MailSink,
    easypost: tuple[FakeEasyPost, str],
) -> None:
    fake, url = easypost
    number = "EZ" + secrets.token_hex(8).upper()
    tracker = fake.add(number)
    settings = easypost_settings(
        tmp_path,
        mail_sink,
        url,
        carrier_poll_interval=timedelta(seconds=1),
        # One pace: the fixtures' estimate is long past, and past its estimated day the adaptive pace
        # waits for the morning at night.
        carrier_poll_min=timedelta(seconds=1),
        carrier_poll_max=timedelta(seconds=1),
    )
    async with running_api(dev_env.client, settings, mail_sink) as api:
        order_id, email = await start_and_ship(api, "easypost", number)

        await api.read(order_id, until="in_transit")
        tracker.step = "out_for_delivery"
        await api.read(order_id, until="out_for_delivery")
        tracker.step = "delivered"
        result = await finish(dev_env, order_id)

        assert result.status is OrderStatus.COMPLETED and not result.delayed
        assert result.carrier == "easypost" and result.tracking_number == number
        order = await api.read(order_id, until="completed")
    statuses = statuses_of(order)
    for step in ("in_transit", "out_for_delivery", "delivered", "completed"):
        assert statuses.count(step) == 1, statuses
    scans = scan_messages(order)
    assert scans[-1] == "Delivered, In/At Mailbox" and len(scans) == len(set(scans)) == 7
    assert set(fake.polls) == {number} and len(fake.polls) >= 3
    assert_mails_once_each(mail_sink, email, JOURNEY_MAILS)


# -- EasyPost by webhook push alone ---------------------------------------------------------------


async def test_easypost_order_is_delivered_by_webhook_push_alone(
    dev_env: WorkflowEnvironment,
    tmp_path: Path,
    mail_sink: MailSink,
    easypost: tuple[FakeEasyPost, str],
) -> None:
    fake, url = easypost
    number = "EZ" + secrets.token_hex(8).upper()
    tracker = fake.add(number)  # polls keep answering in_transit: only the push can deliver
    settings = easypost_settings(
        tmp_path,
        mail_sink,
        url,
        carrier_poll_interval=timedelta(days=1),
    )
    async with running_api(dev_env.client, settings, mail_sink) as api:
        order_id, email = await start_and_ship(api, "easypost", number)
        await api.read(order_id, until="in_transit")
        push = tracker_updated(tracker, "delivered")

        first = await api.http.post("/webhooks/carriers/easypost", content=push, headers=sign(push))
        assert first.status_code == 200, first.text
        assert first.json() == {"accepted": 1}
        await api.read(order_id, reached="delivered")

        # Delivered again while the order is delivered or already completed: either way the workflow
        # has seen it all, so the timeline below holds each scan and status once.
        again = await api.http.post("/webhooks/carriers/easypost", content=push, headers=sign(push))
        assert again.status_code == 200, again.text
        assert again.json()["accepted"] in (0, 1)

        result = await finish(dev_env, order_id)
        assert result.status is OrderStatus.COMPLETED and not result.delayed
        completed = await api.read(order_id, until="completed")

        late = await api.http.post("/webhooks/carriers/easypost", content=push, headers=sign(push))
        assert late.status_code == 200 and late.json() == {"accepted": 0}  # the order is over
        after = await api.read(order_id, until="completed")
        assert after["version"] == completed["version"]
        # The tracker never left in_transit on the fake: one answer, one "no change", then a day's wait.
        assert len(fake.polls) <= 2, fake.polls

    scans = scan_messages(completed)
    assert scans.count("Delivered, In/At Mailbox") == 1 and scans.count("Out for Delivery") == 1
    statuses = statuses_of(completed)
    assert statuses.count("delivered") == 1, statuses
    assert_mails_once_each(mail_sink, email, ["confirmation", "shipped", "delivered", "review_request"])


# -- the simulated carrier misbehaving --------------------------------------------------------------

# A three-day journey in ~12 s with a poll a second. The fault dice are seeded: with this seed the
# first answer is true (the parcel is seen), then the next five include a 503, a 429 and a hang.
SIM_SPEED = 72 * 3600 / 12
FAULT_SEED = 26
ADAPTER_TIMEOUT = 1.0  # the simulator's hang lasts until the adapter gives up, so a timeout costs 1 s


@pytest.fixture
async def faulty_simulator(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve_simulator("127.0.0.1", port, SIM_SPEED, FaultConfig(), stop=stop, seed=FAULT_SEED)
    )
    url = f"http://127.0.0.1:{port}"
    await until_listening(url, task, "/healthz")
    async with httpx.AsyncClient(base_url=url) as client:
        config = {"faults": {"rate": 0.5, "kinds": ["5xx", "429", "timeout"], "retry_after_seconds": 1}}
        response = await client.put("/_sim/config", json=config)
        assert response.status_code == 200, response.text
    # The worker's simulated adapter, with a client timeout short enough for the hangs to be cheap.
    monkeypatch.setattr(
        registry,
        "build_simulated",
        lambda settings: SimulatedCarrier(settings.simulated_carrier_url, timeout=ADAPTER_TIMEOUT),
    )
    yield url
    stop.set()
    await task


async def test_simulated_carrier_faults_are_ridden_out_without_duplicate_mail(
    dev_env: WorkflowEnvironment,
    tmp_path: Path,
    mail_sink: MailSink,
    faulty_simulator: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    settings = api_settings(
        tmp_path,
        mail_sink.port,
        simulated_carrier_url=faulty_simulator,
        carrier_poll_interval=timedelta(seconds=1),
        carrier_poll_min=timedelta(seconds=1),  # one pace, whatever the real day and hour
        carrier_poll_max=timedelta(seconds=1),
        review_request_delay=timedelta(seconds=1),
    )
    async with running_api(dev_env.client, settings, mail_sink) as api:
        order_id, email = await start_and_ship(api, "simulated", f"SIM-ONTIME-{secrets.token_hex(5).upper()}")
        result = await finish(dev_env, order_id)
        order = await api.read(order_id, until="completed")

    assert result.status is OrderStatus.COMPLETED
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert any("rate-limited polling" in w for w in warnings), warnings
    assert any("unavailable polling" in w and "503" in w for w in warnings), warnings
    assert any("did not answer within" in w for w in warnings), warnings
    assert not any(entry["kind"] == "carrier_error" for entry in order["timeline"])

    mails = mails_to(mail_sink, email)
    kinds = [kind_of(mail) for mail in mails]
    # Faults may hold the delivery scan past the (scaled) estimate, which rightly adds one notice,
    # and may hide the one-second out-for-delivery window from every poll.
    optional = {"delayed", "out_for_delivery"}
    assert [kind for kind in kinds if kind not in optional] == [
        kind for kind in JOURNEY_MAILS if kind not in optional
    ], kinds
    assert len(set(kinds)) == len(kinds), kinds
    assert len({mail["Message-ID"] for mail in mails}) == len(mails), "a Message-ID repeats"
