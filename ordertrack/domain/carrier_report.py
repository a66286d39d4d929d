"""Carrier performance: the figures per carrier over the orders shipped in a window, from one row
per shipment. Pure, so the figures are checked against hand-computed values without a database.

- **shipped**: orders first shipped within the window (`since` <= shipped < `until`).
- **delivered**: those delivered now (status `delivered`, or `completed` after a delivery); the
  time is the last delivery the order recorded.
- **on time / late**: delivered before / after the order's *first* estimate counted as missed, the
  same deadline that raises the delay flag (a date-only estimate lasts its whole day); a delivery
  without any estimate is neither, and is counted apart.
- **median / p90 days**: from shipped to delivered, over the delivered orders, interpolated
  between the two nearest ranks (as `numpy.percentile` and `statistics.quantiles(method="inclusive")`).
- **failed attempts / exceptions**: how many times the orders entered `delivery_failed` /
  `exception`; **lost**: orders lost now.
- **weeks**: the on-time rate per ISO week (Monday, UTC) of delivery.
"""

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict

SECONDS_PER_DAY = 86_400.0
MAX_WINDOW = timedelta(days=366)  # a year is what one report reads


@dataclass(frozen=True)
class Shipment:
    """One shipped order as the read model holds it."""

    carrier: str
    shipped_at: datetime
    promised_by: datetime | None  # when its first estimate counted as missed
    delivered_at: datetime | None  # None unless delivered now
    failed_attempts: int = 0
    exceptions: int = 0
    lost: bool = False

    @property
    def on_time(self) -> bool | None:
        """None when there is nothing to judge by: not delivered, or never given an estimate."""
        if self.delivered_at is None or self.promised_by is None:
            return None
        return self.delivered_at < self.promised_by

    @property
    def days_in_transit(self) -> float | None:
        if self.delivered_at is None:
            return None
        return (self.delivered_at - self.shipped_at).total_seconds() / SECONDS_PER_DAY


class _Figures(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WeekRate(_Figures):
    """Deliveries judged on time or late in one ISO week (starting `week`, a Monday in UTC)."""

    week: date
    on_time: int
    late: int

    @property
    def rate(self) -> float:
        return self.on_time / (self.on_time + self.late)


class CarrierFigures(_Figures):
    carrier: str
    shipped: int
    delivered: int
    on_time: int
    late: int
    without_estimate: int  # delivered, but never given an estimate to judge by
    on_time_rate: float | None  # on_time / (on_time + late); None when none was judged
    median_days: float | None  # shipped to delivered; None when none was delivered
    p90_days: float | None
    failed_attempts: int
    exceptions: int
    lost: int
    weeks: tuple[WeekRate, ...]  # oldest first; only weeks with a judged delivery


class CarrierReport(_Figures):
    since: AwareDatetime
    until: AwareDatetime
    carriers: tuple[CarrierFigures, ...]  # by carrier name


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The `fraction` (0..1) percentile, interpolated between the two nearest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def week_of(moment: datetime) -> date:
    """The Monday (UTC) starting the ISO week of `moment`."""
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def report_window(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """The window checked: raises ValueError, saying why, for one that is empty or over a year long."""
    if since >= until:
        raise ValueError(f"{since.isoformat()} is not before now ({until.isoformat()})")
    if until - since > MAX_WINDOW:
        raise ValueError(f"reaches back more than {MAX_WINDOW.days} days; a report covers a year at most")
    return since, until


def carrier_report(shipments: Iterable[Shipment], since: datetime, until: datetime) -> CarrierReport:
    by_carrier: dict[str, list[Shipment]] = defaultdict(list)
    for shipment in shipments:
        by_carrier[shipment.carrier].append(shipment)
    return CarrierReport(
        since=since,
        until=until,
        carriers=tuple(carrier_figures(name, by_carrier[name]) for name in sorted(by_carrier)),
    )


def carrier_figures(carrier: str, shipments: Sequence[Shipment]) -> CarrierFigures:
    delivered = [s for s in shipments if s.delivered_at is not None]
    days = [d for s in delivered if (d := s.days_in_transit) is not None]
    on_time = sum(1 for s in delivered if s.on_time is True)
    late = sum(1 for s in delivered if s.on_time is False)
    return CarrierFigures(
        carrier=carrier,
        shipped=len(shipments),
        delivered=len(delivered),
        on_time=on_time,
        late=late,
        without_estimate=len(delivered) - on_time - late,
        on_time_rate=on_time / (on_time + late) if on_time + late else None,
        median_days=_rounded(percentile(days, 0.5)),
        p90_days=_rounded(percentile(days, 0.9)),
        failed_attempts=sum(s.failed_attempts for s in shipments),
        exceptions=sum(s.exceptions for s in shipments),
        lost=sum(1 for s in shipments if s.lost),
        weeks=_weeks(delivered),
    )


def _weeks(delivered: Sequence[Shipment]) -> tuple[WeekRate, ...]:
    counts: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for shipment in delivered:
        if shipment.on_time is not None and shipment.delivered_at is not None:
            counts[week_of(shipment.delivered_at)][0 if shipment.on_time else 1] += 1
    return tuple(WeekRate(week=week, on_time=n[0], late=n[1]) for week, n in sorted(counts.items()))


def _rounded(days: float | None) -> float | None:
    return None if days is None else round(days, 2)
