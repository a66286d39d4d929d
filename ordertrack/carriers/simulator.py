"""The simulated carrier as an HTTP service: a stand-in tracking API for development, demos and tests.

It speaks its own wire format (not the domain model), so `SimulatedCarrier` maps it the way a
real adapter maps EasyPost or AfterShip, and it can be told at runtime to misbehave like a real
carrier API does. State (first sight of each number, speed, faults) lives in memory only.
"""

import asyncio
import html
import random
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ordertrack.carriers.journeys import UnknownTrackingNumber, snapshot_at
from ordertrack.domain.statuses import OrderStatus
from ordertrack.domain.tracking import TrackingSnapshot
from ordertrack.serving import serve_app

FaultKind = Literal["5xx", "429", "timeout", "malformed"]

# Longest a "timeout" fault hangs: past any sane client timeout, short enough for tests to end.
MAX_HANG_SECONDS = 15.0

# The simulator's own status vocabulary on the wire.
WIRE_STATUS: dict[OrderStatus, str] = {
    OrderStatus.IN_TRANSIT: "TRANSIT",
    OrderStatus.OUT_FOR_DELIVERY: "OUT_FOR_DELIVERY",
    OrderStatus.DELIVERED: "DELIVERED",
    OrderStatus.AVAILABLE_FOR_PICKUP: "READY_FOR_PICKUP",
    OrderStatus.DELIVERY_FAILED: "ATTEMPT_FAILED",
    OrderStatus.EXCEPTION: "EXCEPTION",
    OrderStatus.RETURNED: "RETURNED_TO_SENDER",
    OrderStatus.LOST: "LOST",
}


class FaultConfig(BaseModel):
    """With probability `rate`, a tracking request answers one of `kinds` instead of the truth."""

    model_config = ConfigDict(extra="forbid")

    rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    kinds: list[FaultKind] = ["5xx", "429", "timeout", "malformed"]
    retry_after_seconds: Annotated[int, Field(ge=0)] = 5

    @model_validator(mode="after")
    def _kinds_when_faulty(self) -> "FaultConfig":
        if self.rate > 0 and not self.kinds:
            raise ValueError("a fault rate above 0 needs at least one fault kind")
        return self


class SimConfig(BaseModel):
    """The runtime knobs behind `/_sim/config`."""

    model_config = ConfigDict(extra="forbid")

    speed: Annotated[float, Field(gt=0)]
    faults: FaultConfig


class SimConfigUpdate(BaseModel):
    """A partial `PUT /_sim/config`: fields left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    speed: Annotated[float, Field(gt=0)] | None = None
    faults: FaultConfig | None = None


class _Simulator:
    """The service's memory: when each number was first seen, and the current knobs.

    Changing `speed` rescales each journey's whole clock (events move in real time too),
    which is what a demo wants: faster from now on, without re-registering numbers.
    """

    def __init__(self, speed: float, faults: FaultConfig, seed: int | None) -> None:
        self.config = SimConfig(speed=speed, faults=faults)
        self.first_seen: dict[str, datetime] = {}
        self.rng = random.Random(seed)

    def snapshot(self, tracking_number: str) -> TrackingSnapshot:
        now = datetime.now(UTC)
        first_seen = self.first_seen.get(tracking_number, now)
        snapshot = snapshot_at(tracking_number, first_seen, now, self.config.speed)
        self.first_seen.setdefault(tracking_number, first_seen)  # only numbers that exist
        return snapshot

    def fault(self) -> FaultKind | None:
        faults = self.config.faults
        if faults.rate > 0 and self.rng.random() < faults.rate:
            return self.rng.choice(faults.kinds)
        return None


def _wire(snapshot: TrackingSnapshot) -> dict[str, Any]:
    """The simulator's JSON for a tracker: newest event first, its own status words."""
    return {
        "tracking_number": snapshot.tracking_number,
        "status": WIRE_STATUS[snapshot.status],
        "estimated_delivery": snapshot.estimated_delivery.isoformat()
        if snapshot.estimated_delivery
        else None,
        "events": [
            {
                "occurred_at": event.at.isoformat(),
                "status": WIRE_STATUS[event.status],
                "code": event.code,
                "description": event.message,
                "location": event.location,
            }
            for event in reversed(snapshot.events)
        ],
    }


def _error(status_code: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code, headers=headers)


async def _hang(request: Request) -> None:
    """Stall like an overloaded carrier until the client gives up (or MAX_HANG_SECONDS pass)."""
    tick = 0.05
    for _ in range(int(MAX_HANG_SECONDS / tick)):
        if await request.is_disconnected():
            return
        await asyncio.sleep(tick)


def _tracking_page(tracking_number: str, snapshot: TrackingSnapshot | None) -> str:
    number = html.escape(tracking_number)
    if snapshot is None:
        body = "<p>We have no shipment with this tracking number.</p>"
    else:
        eta = (
            snapshot.estimated_delivery.strftime("%Y-%m-%d %H:%M UTC") if snapshot.estimated_delivery else "-"
        )
        rows = "".join(
            f"<tr><td>{event.at:%Y-%m-%d %H:%M:%S} UTC</td><td>{html.escape(event.message)}</td>"
            f"<td>{html.escape(event.location or '')}</td></tr>"
            for event in reversed(snapshot.events)
        )
        body = (
            f"<p>Status: <strong>{WIRE_STATUS[snapshot.status].replace('_', ' ').title()}</strong></p>"
            f"<p>Estimated delivery: {eta}</p><table>{rows}</table>"
        )
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Simulated Carrier - {number}</title></head>"
        f"<body><h1>Simulated Carrier</h1><p>Tracking number {number}</p>{body}</body></html>"
    )


def create_app(speed: float, faults: FaultConfig, *, seed: int | None = None) -> FastAPI:
    """The simulator app; `seed` makes the fault dice deterministic for tests."""
    sim = _Simulator(speed, faults, seed)
    app = FastAPI(title="ordertrack simulated carrier", docs_url=None, redoc_url=None)

    @app.get("/v1/trackers/{tracking_number}")
    async def get_tracker(tracking_number: str, request: Request) -> Response:
        fault = sim.fault()
        if fault == "5xx":
            return _error(503, "SERVICE_UNAVAILABLE", "simulated outage, try again later")
        if fault == "429":
            seconds = sim.config.faults.retry_after_seconds
            return _error(429, "RATE_LIMITED", "too many requests", {"Retry-After": str(seconds)})
        if fault == "malformed":
            garbage = f'{{"tracking_number": "{tracking_number}", "status": "TRANS'
            return Response(garbage, media_type="application/json")
        if fault == "timeout":
            await _hang(request)
        try:
            return JSONResponse(_wire(sim.snapshot(tracking_number)))
        except UnknownTrackingNumber as exc:
            return _error(404, "TRACKER_NOT_FOUND", str(exc))
        except ValidationError:
            return _error(404, "TRACKER_NOT_FOUND", f"{tracking_number!r} is not a valid tracking number")

    @app.get("/track/{tracking_number}", response_class=HTMLResponse)
    async def tracking_page(tracking_number: str) -> HTMLResponse:
        try:
            return HTMLResponse(_tracking_page(tracking_number, sim.snapshot(tracking_number)))
        except (UnknownTrackingNumber, ValidationError):
            return HTMLResponse(_tracking_page(tracking_number, None), status_code=404)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/_sim/config")
    async def get_config() -> SimConfig:
        return sim.config

    @app.put("/_sim/config")
    async def put_config(update: SimConfigUpdate) -> SimConfig:
        sim.config = SimConfig(
            speed=sim.config.speed if update.speed is None else update.speed,
            faults=sim.config.faults if update.faults is None else update.faults,
        )
        return sim.config

    return app


async def serve_simulator(
    host: str,
    port: int,
    speed: float,
    faults: FaultConfig,
    *,
    stop: asyncio.Event | None = None,
    seed: int | None = None,
    moved_by: str | None = None,
) -> None:
    """Run the simulator with uvicorn in the current event loop until stopped (a port that cannot
    be had is a `StartupError` naming `moved_by`, the flag or setting that moves it).

    Stops gracefully when `stop` is set, when the task running it is cancelled (the
    cancellation is re-raised after shutdown), or, when run in the main thread, on SIGINT/SIGTERM
    (uvicorn's own handling, which re-raises the signal once the server is down).
    """
    app = create_app(speed, faults, seed=seed)
    await serve_app(app, host, port, stop=stop, what="simulated carrier", moved_by=moved_by)
