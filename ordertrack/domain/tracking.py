"""What a carrier tells us about a shipment, in canonical terms (any adapter, poll or push)."""

import hashlib
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from ordertrack.domain.statuses import CARRIER_STATUSES, OrderStatus

TrackingNumber = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=3, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    ),
]
CarrierName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, min_length=2, max_length=32, pattern=r"^[a-z0-9_-]+$"
    ),
]


def _carrier_status(value: OrderStatus) -> OrderStatus:
    if value not in CARRIER_STATUSES:
        allowed = ", ".join(sorted(CARRIER_STATUSES))
        raise ValueError(f"{value.value!r} is not a carrier status; expected one of {allowed}")
    return value


class TrackingEvent(BaseModel):
    """One carrier scan; `code` keeps the carrier's raw code beside the canonical status."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: AwareDatetime
    status: OrderStatus
    message: Annotated[str, Field(max_length=500)]
    location: Annotated[str, Field(max_length=200)] | None = None
    code: Annotated[str, Field(max_length=64)] | None = None

    _check_status = field_validator("status")(_carrier_status)

    @property
    def key(self) -> str:
        """Identity used to deduplicate the same scan seen in several polls or pushes."""
        return f"{self.at.isoformat()}|{self.code or self.status.value}|{self.location or ''}|{self.message}"


class TrackingSnapshot(BaseModel):
    """The carrier's whole picture of one shipment: the poll result and the `carrier_update` signal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    carrier: CarrierName
    tracking_number: TrackingNumber
    status: OrderStatus
    events: Annotated[list[TrackingEvent], Field(max_length=1000)] = []
    estimated_delivery: AwareDatetime | None = None

    _check_status = field_validator("status")(_carrier_status)

    @property
    def latest_event_at(self) -> datetime | None:
        return max((event.at for event in self.events), default=None)

    def fingerprint(self) -> str:
        """Equal for two snapshots that would change nothing on the order: the poll's no-change test."""
        parts = [self.status.value, self.estimated_delivery.isoformat() if self.estimated_delivery else ""]
        parts += sorted(event.key for event in self.events)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]
