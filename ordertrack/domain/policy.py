"""The timing policy: how long an order waits for each thing before acting."""

from datetime import time, timedelta
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

from ordertrack.domain.durations import format_duration, parse_duration
from ordertrack.domain.notices import DAY_ENDS, DAY_STARTS


def _to_timedelta(value: object) -> object:
    """Accept `36h`-style text besides what pydantic takes (ISO 8601 `P1D`, seconds)."""
    if isinstance(value, str) and not value.upper().startswith("P"):
        return parse_duration(value)
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(_to_timedelta),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]


def _off_to_none(value: object) -> object:
    """`0` or `off` switches the thing off (a zero duration would not round-trip as `36h`-style text)."""
    if isinstance(value, str) and value.strip().lower() in {"0", "off"}:
        return None
    return value


OptionalDuration = Annotated[Duration | None, BeforeValidator(_off_to_none)]


class TimingPolicy(BaseModel):
    """Captured into each order's input at start, so a running order keeps the policy it began with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    payment_timeout: Duration = timedelta(hours=72)
    # One reminder this long before the payment timeout; None (`0`, `off`), or a duration not
    # shorter than the timeout (the awaiting-payment message went out that recently), sends none.
    payment_reminder_before: OptionalDuration = timedelta(hours=24)
    ship_by: Duration = timedelta(hours=48)
    # How often to ask the carrier while the customer waits at the door (out for delivery, the
    # estimated day); the journey sets the pace before that, between the two bounds below
    # (ordertrack/domain/polling.py). Unset, they are 8 and 32 times the interval (4h and 16h by
    # default), so a policy scaled down for demos and tests scales them too; neither is ever
    # shorter than the interval.
    carrier_poll_interval: Duration = timedelta(minutes=30)
    carrier_poll_min: Duration | None = None
    carrier_poll_max: Duration | None = None
    stale_tracking_after: Duration = timedelta(days=7)
    review_request_delay: Duration = timedelta(days=7)
    # How much later a carrier's new estimate must be to count as a delay (a day is 24h; demos
    # and tests running the simulated carrier fast shrink it with the rest of the policy).
    estimate_slip: Duration = timedelta(hours=12)
    # A failed delivery attempt still unresolved this long later gets one reminder.
    failed_attempt_follow_up: Duration = timedelta(days=1)
    # With no delivery event ever, the review request goes this long after shipping.
    review_without_delivery_after: Duration = timedelta(days=30)
    # Texts and marketing mail go out only between these times where the customer lives (the
    # order's time zone, or the default); equal times switch quiet hours off.
    daytime_starts: time = DAY_STARTS
    daytime_ends: time = DAY_ENDS
    default_time_zone: str = "UTC"
    # How long one attempt at handing a message to the mail server or SMS provider may run before it
    # is retried (a worker killed mid-send is noticed this late), and one attempt at anything else
    # (a read-model write, a carrier poll, a shop webhook POST).
    message_send_timeout: Duration = timedelta(minutes=1)
    activity_timeout: Duration = timedelta(seconds=30)

    @property
    def carrier_poll_bounds(self) -> tuple[timedelta, timedelta]:
        """The shortest and longest wait between two polls while the parcel is far from the door."""
        interval = self.carrier_poll_interval
        shortest = max(self.carrier_poll_min or interval * 8, interval)
        return shortest, max(self.carrier_poll_max or interval * 32, shortest)
