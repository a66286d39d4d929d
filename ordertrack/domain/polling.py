"""When to ask the carrier next: the polling cadence, decided from the order's tracking state, the
timing policy and the time, and nothing else.

Seldom while nothing the customer waits for can happen; while they wait at the door, often enough
that they hear of what the carrier reports within `carrier_poll_interval`. Days and nights are the
destination's (the order's time zone); carriers deliver between `CARRIER_DAY`'s two times.

- out for delivery: the interval;
- on its estimated day: the interval, the night included;
- past its estimated day: the interval by day; at night, until the morning;
- before its estimated day: half the time left until that day's first poll, within the bounds, or
  all of it when half would be under the shortest wait; the longest wait at night;
- after a failed attempt before its estimated day: the longest wait until the next day begins;
- no estimate yet: the shortest wait by day, the longest at night;
- lost: the longest wait.

"The interval" is `carrier_poll_interval` less a lead (`FRESHNESS_LEAD`) for the answer's way to
the order. The bounds are `TimingPolicy.carrier_poll_bounds`. While a carrier pushes webhooks for
the order, every wait is `PUSH_SLOWDOWN` times longer, until the pushes stop.
"""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict

from ordertrack.domain.machine import is_whole_day
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.state import OrderState
from ordertrack.domain.statuses import OrderStatus

# Carriers deliver between these local times; outside them nothing the customer waits for happens.
CARRIER_DAY = (time(7, 0), time(21, 0))
# Polls that keep the customer informed come this much sooner than `carrier_poll_interval` (a 60th
# of it, at most 30 s), so that an answer, once it has reached the order, is within the interval.
FRESHNESS_LEAD = timedelta(seconds=30)
# While a carrier pushes webhooks for an order, poll it this many times less often; the pushes count
# as stopped `carrier_poll_interval * PUSH_SLOWDOWN` after the last one.
PUSH_SLOWDOWN = 4


class PollState(BaseModel):
    """What the cadence depends on: a few fields of the order, small enough to go with every poll."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: OrderStatus
    status_since: AwareDatetime
    estimated_delivery: AwareDatetime | None = None
    last_scan_at: AwareDatetime | None = None
    time_zone: str = "UTC"
    answered_at: AwareDatetime | None = None  # the carrier's last answer that reached the order
    pushed_at: AwareDatetime | None = None  # its last webhook push

    @classmethod
    def of(
        cls, state: OrderState, time_zone: str, answered_at: datetime | None, pushed_at: datetime | None
    ) -> "PollState":
        return cls(
            status=state.status,
            status_since=state.status_since,
            estimated_delivery=state.estimated_delivery,
            last_scan_at=state.last_scan_at,
            time_zone=time_zone,
            answered_at=answered_at,
            pushed_at=pushed_at,
        )


def next_poll(poll: PollState, policy: TimingPolicy, now: datetime) -> datetime:
    """When to ask the carrier next, after asking it at `now`."""
    cadence = _Cadence(poll, policy)
    if poll.status == OrderStatus.OUT_FOR_DELIVERY:
        wake = now + cadence.fast
    elif poll.status == OrderStatus.LOST:
        wake = now + cadence.longest
    elif (resume := cadence.resumes_after_failed_attempt(now)) is not None:
        wake = min(now + cadence.longest, cadence.by_estimate(resume))
    else:
        wake = cadence.by_estimate(now)
    return max(cadence.slowed_by_pushes(now, wake), now + cadence.fast)


def first_poll(poll: PollState, policy: TimingPolicy) -> datetime | None:
    """When a new poll first asks the carrier: on the cadence from its last answer, or at once
    (None) when it has not answered yet."""
    return next_poll(poll, policy, poll.answered_at) if poll.answered_at else None


def estimated_day(estimate: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The destination's day the carrier promised, from its midnight to the next: a date-only
    estimate names its date, one with a time of day the date it falls on there."""
    day = estimate.date() if is_whole_day(estimate) else estimate.astimezone(zone).date()
    return _midnight(day, zone), _midnight(day + timedelta(days=1), zone)


def pushes_quiet_at(pushed_at: datetime | None, policy: TimingPolicy) -> datetime | None:
    """When a carrier that pushed at `pushed_at` counts as no longer pushing."""
    return pushed_at + policy.carrier_poll_interval * PUSH_SLOWDOWN if pushed_at else None


class _Cadence:
    """One order's cadence: its state and policy, with the local days they imply."""

    def __init__(self, poll: PollState, policy: TimingPolicy) -> None:
        self.poll, self.policy = poll, policy
        self.zone = ZoneInfo(poll.time_zone)
        interval = policy.carrier_poll_interval
        self.fast = interval - min(interval / 60, FRESHNESS_LEAD)
        self.shortest, self.longest = policy.carrier_poll_bounds
        estimate = poll.estimated_delivery
        self.day = estimated_day(estimate, self.zone) if estimate else None

    def by_estimate(self, now: datetime) -> datetime:
        """The next poll after one at `now`, from where `now` stands against the estimated day."""
        night = self.is_night(now)
        if self.day is None:
            return now + (self.longest if night else self.shortest)
        starts, ends = self.day
        if now < starts:
            left = starts + self.fast - now  # until the estimated day's first poll
            wait = self.longest if night else (left if left / 2 < self.shortest else left / 2)
            return now + min(wait, self.longest, left)
        if now < ends or not night:
            return now + self.fast
        return min(now + self.longest, self.morning_after(now) + self.fast)

    def resumes_after_failed_attempt(self, now: datetime) -> datetime | None:
        """After a failed attempt before the estimated day, when the next day begins (None: not
        waiting for it). The attempt's scan counts, not when it reached the order."""
        if self.poll.status != OrderStatus.DELIVERY_FAILED or (self.day and now >= self.day[0]):
            return None
        attempted_at = (self.poll.last_scan_at or self.poll.status_since).astimezone(self.zone)
        resume = _midnight(attempted_at.date() + timedelta(days=1), self.zone)
        return resume if now < resume else None

    def slowed_by_pushes(self, now: datetime, wake: datetime) -> datetime:
        quiet_at = pushes_quiet_at(self.poll.pushed_at, self.policy)
        if quiet_at is None or now >= quiet_at:
            return wake
        return min(now + (wake - now) * PUSH_SLOWDOWN, max(quiet_at, wake))

    def is_night(self, moment: datetime) -> bool:
        starts, ends = CARRIER_DAY
        return not starts <= moment.astimezone(self.zone).time() < ends

    def morning_after(self, moment: datetime) -> datetime:
        local = moment.astimezone(self.zone)
        day = local.date() if local.time() < CARRIER_DAY[0] else local.date() + timedelta(days=1)
        return datetime.combine(day, CARRIER_DAY[0], self.zone)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone)
