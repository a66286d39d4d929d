"""The order's state as the workflow holds it (and carries across continue-as-new)."""

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict

from ordertrack.domain.models import Address
from ordertrack.domain.statuses import OrderStatus
from ordertrack.domain.timeline import TimelineEntry


class DelayKind(StrEnum):
    """Why an order is late, as a code: customers read it in their own language."""

    SHIP_BY = "ship_by"  # not handed to the carrier by the ship-by deadline
    ESTIMATE_MOVED = "estimate_moved"  # the carrier moved its estimate later
    ESTIMATE_MISSED = "estimate_missed"  # the carrier's estimate passed without delivery


class OrderState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    status: OrderStatus = OrderStatus.RECEIVED
    status_since: AwareDatetime
    received_at: AwareDatetime
    shipping_address: Address
    delayed: bool = False
    delay_reason: str | None = None  # for ops, in English
    delay_kind: DelayKind | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    estimated_delivery: AwareDatetime | None = None
    confirmed_at: AwareDatetime | None = None
    shipped_at: AwareDatetime | None = None
    delivered_at: AwareDatetime | None = None
    last_scan_at: AwareDatetime | None = None
    ship_by_missed: bool = False
    payment_reminded: bool = False
    # The estimate already reported as passed, so one missed date sends one delay notice.
    estimate_passed: AwareDatetime | None = None
    tracking_fingerprint: str | None = None
    # Delivery attempts that failed so far, and the one whose unresolved state got its reminder.
    failed_attempts: int = 0
    followed_up_attempt: int = 0
    seen_scans: tuple[str, ...] = ()
    timeline: tuple[TimelineEntry, ...] = ()

    @property
    def version(self) -> int:
        """Grows by one with every recorded change; the read model ignores writes older than it has."""
        return len(self.timeline)

    @property
    def tracking_since(self) -> datetime | None:
        """When the carrier last showed a sign of life (a scan, or the hand-over itself)."""
        return self.last_scan_at or self.shipped_at
