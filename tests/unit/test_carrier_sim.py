"""The simulator served by uvicorn on loopback, the httpx adapter over it, and the poll activity."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.carrier import CarrierActivities
from ordertrack.carriers.base import (
    CarrierError,
    CarrierPayloadError,
    CarrierRateLimited,
    CarrierUnavailable,
    TrackingNotFound,
)
from ordertrack.carriers.links import carrier_link
from ordertrack.carriers.registry import CarrierRegistry, UnknownCarrierError, build_registry
from ordertrack.carriers.simulated import SimulatedCarrier
from ordertrack.carriers.simulator import FaultConfig, serve_simulator
from ordertrack.domain.records import PollRequest
from ordertrack.domain.statuses import OrderStatus
from ordertrack.settings import Settings
from tests.conftest import free_port
from tests.metering import MeteredEnvironment


def number(prefix: str = "SIM-ONTIME-") -> str:
    return prefix + uuid.uuid4().hex[:10]


async def start(stop: asyncio.Event | None = None) -> tuple[str, asyncio.Task[None]]:
    port = free_port()
    task = asyncio.create_task(serve_simulator("127.0.0.1", port, 1.0, FaultConfig(), stop=stop, seed=7))
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(100):
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return url, task
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError("simulator did not start")


@pytest_asyncio.fixture(scope="module")
async def sim_url() -> AsyncIterator[str]:
    stop = asyncio.Event()
    url, task = await start(stop)
    yield url
    stop.set()
    await asyncio.wait_for(task, 10)


@pytest_asyncio.fixture
async def admin(sim_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim_url) as client:
        yield client
        await client.put("/_sim/config", json={"speed": 1.0, "faults": {"rate": 0.0}})


@pytest_asyncio.fixture
async def carrier(sim_url: str) -> AsyncIterator[SimulatedCarrier]:
    adapter = SimulatedCarrier(sim_url, timeout=5.0)
    yield adapter
    await adapter.aclose()


async def set_faults(admin: httpx.AsyncClient, kind: str) -> None:
    faults = {"rate": 1.0, "kinds": [kind], "retry_after_seconds": 7}
    response = await admin.put("/_sim/config", json={"faults": faults})
    response.raise_for_status()


async def test_adapter_maps_the_simulator_wire_format(
    carrier: SimulatedCarrier, admin: httpx.AsyncClient
) -> None:
    tracking_number = number()
    first = await carrier.track(tracking_number)
    assert (first.carrier, first.tracking_number, first.status) == (
        "simulated",
        tracking_number,
        "in_transit",
    )
    assert [(e.code, e.status, e.location) for e in first.events] == [
        ("SIM_ACCEPTED", OrderStatus.IN_TRANSIT, "Origin sorting center")
    ]
    assert first.estimated_delivery == first.events[0].at + timedelta(hours=80)
    assert (await carrier.track(tracking_number)).fingerprint() == first.fingerprint()

    await admin.put("/_sim/config", json={"speed": 1e9})  # 72 simulated hours in 0.26 ms
    await asyncio.sleep(0.01)
    done = await carrier.track(tracking_number)
    assert done.status == OrderStatus.DELIVERED
    assert [e.code for e in done.events] == [
        "SIM_ACCEPTED",
        "SIM_DEPARTED",
        "SIM_ARRIVED",
        "SIM_OUT_FOR_DELIVERY",
        "SIM_DELIVERED",
    ]


async def test_unknown_prefix_is_tracking_not_found(carrier: SimulatedCarrier) -> None:
    with pytest.raises(TrackingNotFound, match="404"):
        await carrier.track("1Z999AA10123456784")


@pytest.mark.parametrize(
    ("kind", "error"),
    [("5xx", CarrierUnavailable), ("429", CarrierRateLimited), ("malformed", CarrierPayloadError)],
)
async def test_faults_become_typed_errors(
    carrier: SimulatedCarrier, admin: httpx.AsyncClient, kind: str, error: type[CarrierError]
) -> None:
    await set_faults(admin, kind)
    with pytest.raises(error) as raised:
        await carrier.track(number())
    if isinstance(raised.value, CarrierRateLimited):
        assert raised.value.retry_after == timedelta(seconds=7)


async def test_timeout_fault_is_carrier_unavailable(sim_url: str, admin: httpx.AsyncClient) -> None:
    await set_faults(admin, "timeout")
    impatient = SimulatedCarrier(sim_url, timeout=0.3)
    try:
        with pytest.raises(CarrierUnavailable, match=r"within 0\.3s"):
            await impatient.track(number())
    finally:
        await impatient.aclose()


async def test_unreachable_carrier_is_unavailable() -> None:
    adapter = SimulatedCarrier(f"http://127.0.0.1:{free_port()}", timeout=1.0)
    try:
        with pytest.raises(CarrierUnavailable, match="cannot reach"):
            await adapter.track(number())
    finally:
        await adapter.aclose()


async def test_admin_config_reads_and_changes_speed(admin: httpx.AsyncClient) -> None:
    assert (await admin.get("/_sim/config")).json()["speed"] == 1.0
    response = await admin.put("/_sim/config", json={"speed": 3600})
    assert response.status_code == 200
    assert response.json()["speed"] == 3600
    assert (await admin.get("/_sim/config")).json()["faults"]["rate"] == 0.0
    assert (await admin.put("/_sim/config", json={"speed": -1})).status_code == 422


async def test_tracking_page_and_registry(sim_url: str, admin: httpx.AsyncClient) -> None:
    registry = build_registry(Settings(simulated_carrier_url=sim_url + "/"))
    try:
        tracking_number = number("SIM-DELAYED-")
        url = registry.carrier_url("Simulated", tracking_number)
        assert url == f"{sim_url}/track/{tracking_number}"
        page = await admin.get(url)
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        assert tracking_number in page.text
        assert (await admin.get("/track/NOPE-1")).status_code == 404
        assert registry.carrier_url("acme-freight", tracking_number) is None  # no adapter, no template
        assert registry.carrier_url("ups", "1Z999") == carrier_link("ups", "1Z999")  # the public template
        with pytest.raises(UnknownCarrierError, match="known carriers: simulated"):
            registry.get("ups")
    finally:
        await registry.aclose()


async def test_poll_activity_returns_changes_and_fails_benignly_without(carrier: SimulatedCarrier) -> None:
    activities = CarrierActivities(CarrierRegistry([carrier]))
    env = MeteredEnvironment()
    request = PollRequest(carrier="simulated", tracking_number=number(), order_id="1001")

    snapshot = await env.run(activities.poll_carrier, request)
    assert snapshot.status == OrderStatus.IN_TRANSIT

    unchanged = request.model_copy(update={"known_fingerprint": snapshot.fingerprint()})
    with pytest.raises(ApplicationError) as raised:
        await env.run(activities.poll_carrier, unchanged)
    assert raised.value.type == "NoChange"
    assert raised.value.category == ApplicationErrorCategory.BENIGN
    assert not raised.value.non_retryable

    stale = request.model_copy(update={"known_fingerprint": "something-older"})
    assert await env.run(activities.poll_carrier, stale) == snapshot
    calls = [(c["carrier"], c["outcome"]) for c in env.counted("ordertrack_carrier_calls_total")]
    assert calls == [("simulated", "changed"), ("simulated", "unchanged"), ("simulated", "changed")]


@pytest.mark.parametrize(
    ("fault", "carrier_name", "prefix", "error_type", "non_retryable"),
    [
        ("429", "simulated", "SIM-ONTIME-", "CarrierRateLimited", False),
        ("5xx", "simulated", "SIM-ONTIME-", "CarrierUnavailable", False),
        ("malformed", "simulated", "SIM-ONTIME-", "CarrierPayloadInvalid", False),
        (None, "simulated", "UNKNOWN-", "TrackingNotFound", True),
        (None, "ups", "SIM-ONTIME-", "UnknownCarrier", True),
    ],
)
async def test_poll_activity_classifies_failures(
    carrier: SimulatedCarrier,
    admin: httpx.AsyncClient,
    fault: str | None,
    carrier_name: str,
    prefix: str,
    error_type: str,
    non_retryable: bool,
) -> None:
    if fault:
        await set_faults(admin, fault)
    activities = CarrierActivities(CarrierRegistry([carrier]))
    request = PollRequest(carrier=carrier_name, tracking_number=number(prefix))
    env = MeteredEnvironment()
    with pytest.raises(ApplicationError) as raised:
        await env.run(activities.poll_carrier, request)
    assert raised.value.type == error_type
    assert raised.value.non_retryable is non_retryable
    # A carrier without an adapter is never called.
    called = [] if error_type == "UnknownCarrier" else [{"carrier": carrier_name, "outcome": "error"}]
    assert [
        {k: c[k] for k in ("carrier", "outcome")} for c in env.counted("ordertrack_carrier_calls_total")
    ] == called
    if fault == "429":
        assert raised.value.next_retry_delay == timedelta(seconds=7)


async def test_serve_simulator_stops_when_cancelled() -> None:
    url, task = await start()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(url + "/healthz")
