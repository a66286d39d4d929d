"""The simulated carrier's scripted journeys, and what it knows of one at a given moment.

Pure data and arithmetic, no I/O: the simulator service plays these back, and tests check them
without a server. A journey is picked by the tracking number's prefix and runs on a clock that
starts at the carrier's first sight of the number, scaled by `speed` (simulated seconds per real
second). Offsets below are simulated time; everything in a snapshot is real time.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ordertrack.domain.statuses import OrderStatus
from ordertrack.domain.tracking import TrackingEvent, TrackingSnapshot

CARRIER = "simulated"

_H = timedelta(hours=1)
# Carriers promise a day, not a minute: the estimate is the evening of the third day, so a parcel
# delivered on schedule (at 72 h) is never reported late by a poll that sees it a little after.
ETA = 80 * _H
_ORIGIN = "Origin sorting center"
_HUB = "Regional hub"
_DESTINATION = "Destination facility"
_STATION = "Local delivery station"
_DOORSTEP = "Recipient address"


class UnknownTrackingNumber(ValueError):
    """The number matches no journey prefix; the simulator answers 404 as a real carrier would."""


@dataclass(frozen=True, slots=True)
class Step:
    """One scan, `after` simulated time from first sight; `code` is the simulator's raw event code."""

    after: timedelta
    status: OrderStatus
    code: str
    message: str
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Journey:
    """A scripted shipment; from step `eta_moves_at` on, the estimate is `eta + eta_delay`."""

    prefix: str
    steps: tuple[Step, ...]
    eta: timedelta
    eta_moves_at: int | None = None
    eta_delay: timedelta = timedelta(0)

    def eta_after(self, reached: int) -> timedelta:
        """The estimated delivery offset the carrier states once `reached` steps have happened."""
        if self.eta_moves_at is not None and reached > self.eta_moves_at:
            return self.eta + self.eta_delay
        return self.eta


def _accepted() -> Step:
    return Step(0 * _H, OrderStatus.IN_TRANSIT, "SIM_ACCEPTED", "Shipment accepted by carrier", _ORIGIN)


def _departed() -> Step:
    return Step(20 * _H, OrderStatus.IN_TRANSIT, "SIM_DEPARTED", "Departed facility", _ORIGIN)


def _arrived(after: timedelta) -> Step:
    return Step(after, OrderStatus.IN_TRANSIT, "SIM_ARRIVED", "Arrived at destination facility", _DESTINATION)


def _out_for_delivery(after: timedelta) -> Step:
    return Step(after, OrderStatus.OUT_FOR_DELIVERY, "SIM_OUT_FOR_DELIVERY", "Out for delivery", _STATION)


def _delivered(after: timedelta) -> Step:
    return Step(after, OrderStatus.DELIVERED, "SIM_DELIVERED", "Delivered", _DOORSTEP)


JOURNEYS: tuple[Journey, ...] = (
    Journey(
        "SIM-ONTIME-",
        (_accepted(), _departed(), _arrived(40 * _H), _out_for_delivery(66 * _H), _delivered(72 * _H)),
        eta=ETA,
    ),
    Journey(
        "SIM-DELAYED-",
        (
            _accepted(),
            _departed(),
            Step(
                40 * _H,
                OrderStatus.IN_TRANSIT,
                "SIM_DELAYED",
                "Delayed in transit: missed connection, delivery expected one day later",
                _HUB,
            ),
            _arrived(64 * _H),
            _out_for_delivery(90 * _H),
            _delivered(96 * _H),
        ),
        eta=ETA,
        eta_moves_at=2,
        eta_delay=24 * _H,
    ),
    Journey(
        "SIM-EXCEPTION-",
        (
            _accepted(),
            _departed(),
            Step(30 * _H, OrderStatus.EXCEPTION, "SIM_EXCEPTION", "Held at hub: damaged label", _HUB),
            Step(38 * _H, OrderStatus.IN_TRANSIT, "SIM_RECOVERED", "Relabelled, back in transit", _HUB),
            _arrived(48 * _H),
            _out_for_delivery(66 * _H),
            _delivered(72 * _H),
        ),
        eta=ETA,
    ),
    Journey(
        "SIM-FAILED-",
        (
            _accepted(),
            _departed(),
            _arrived(40 * _H),
            _out_for_delivery(46 * _H),
            Step(
                52 * _H,
                OrderStatus.DELIVERY_FAILED,
                "SIM_ATTEMPT_FAILED",
                "Delivery attempted: recipient not available, will try again",
                _DOORSTEP,
            ),
            _out_for_delivery(66 * _H),
            _delivered(72 * _H),
        ),
        eta=ETA,
    ),
    Journey("SIM-LOST-", (_accepted(),), eta=ETA),
    Journey(
        "SIM-RETURNED-",
        (
            _accepted(),
            _departed(),
            _arrived(40 * _H),
            Step(46 * _H, OrderStatus.EXCEPTION, "SIM_ADDRESS_NOT_FOUND", "Address not found", _STATION),
            Step(70 * _H, OrderStatus.RETURNED, "SIM_RETURNED", "Returned to sender", _ORIGIN),
        ),
        eta=ETA,
    ),
)


def journey_for(tracking_number: str, journeys: Sequence[Journey] = JOURNEYS) -> Journey:
    """The journey a number's prefix selects (case-insensitive) among `journeys`."""
    number = tracking_number.strip().upper()
    for journey in journeys:
        if number.startswith(journey.prefix):
            return journey
    prefixes = ", ".join(journey.prefix for journey in journeys)
    raise UnknownTrackingNumber(
        f"unknown tracking number {tracking_number!r}; simulated numbers start {prefixes}"
    )


def snapshot_at(
    tracking_number: str,
    first_seen: datetime,
    now: datetime,
    speed: float,
    journeys: Sequence[Journey] = JOURNEYS,
) -> TrackingSnapshot:
    """What the carrier knows at real time `now`, with real-time timestamps and estimate."""
    if speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    journey = journey_for(tracking_number, journeys)
    elapsed = max(now - first_seen, timedelta(0)) * speed
    reached = [step for step in journey.steps if step.after <= elapsed]
    events = [
        TrackingEvent(
            at=first_seen + step.after / speed,
            status=step.status,
            message=step.message,
            location=step.location,
            code=step.code,
        )
        for step in reached
    ]
    return TrackingSnapshot(
        carrier=CARRIER,
        tracking_number=tracking_number,
        status=reached[-1].status,
        events=events,
        estimated_delivery=first_seen + journey.eta_after(len(reached)) / speed,
    )
