"""The order's timeline: what happened, when, by whom and why (status changes, scans, operator actions)."""

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict

from ordertrack.domain.statuses import OrderStatus


class EntryKind(StrEnum):
    STATUS = "status"  # the order's status changed
    DELAY = "delay"  # a promised date was missed or moved
    SCAN = "scan"  # a carrier scan (location, message)
    ESTIMATE = "estimate"  # the carrier's estimated delivery changed
    ADDRESS = "address"  # an operator changed the shipping address
    TRACKING_LINK = "tracking_link"  # an operator replaced the customer's tracking link
    CARRIER_ERROR = "carrier_error"  # tracking could not be read; for ops
    MESSAGE = "message"  # a customer message refused for good, or a reminder sent; for ops
    REFUSED = "refused"  # a signalled request the order could not take, or a signal it ignored; for ops


class TimelineEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int  # 1-based position; the read model's idempotency key for the entry
    at: AwareDatetime
    kind: EntryKind
    status: OrderStatus  # the order's status after this entry
    message: str
    actor: str  # "system", "shop", "carrier" or the operator's name
    reason: str | None = None
    location: str | None = None
    code: str | None = None  # what kind of entry, beyond `kind`, for readers that translate (a DelayKind)
