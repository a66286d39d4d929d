"""The order's state as the workflow holds it (and carries across continue-as-new)."""

from datetime import datetime

from pydantic import AwareDatetime, ConfigDict

from ordertrack.domain.models import Address
from ordertrack.domain.progress import OrderProgress
from ordertrack.domain.timeline import TimelineEntry


class OrderState(OrderProgress):
    """The order's progress and what the workflow keeps to decide its next change."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    received_at: AwareDatetime
    shipping_address: Address
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
