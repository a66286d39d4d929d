"""The on-time chart of `/ops/carriers` as plain geometry: the template draws it as inline SVG, so
the page needs no script and no file (its CSP allows neither)."""

from dataclasses import dataclass
from datetime import date, timedelta

from ordertrack.domain.carrier_report import CarrierReport

WIDTH, HEIGHT = 900, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 28, 12, 28  # margins for the axes' labels
# Told apart by people with the commonest colour blindness (Okabe and Ito's palette).
COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str  # the tooltip: week, rate and counts


@dataclass(frozen=True)
class Series:
    carrier: str
    colour: str
    segments: tuple[str, ...]  # SVG `points` of each run of consecutive weeks with deliveries
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot: tuple[float, float, float, float]  # left, top, right, bottom
    series: tuple[Series, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]


def on_time_chart(report: CarrierReport) -> Chart | None:
    """The on-time rate per week, one line per carrier over every week from the first to the last
    with a judged delivery; a week without one breaks that carrier's line. None with no such week."""
    seen = sorted({rate.week for figures in report.carriers for rate in figures.weeks})
    if not seen:
        return None
    weeks = _every_week(seen[0], seen[-1])
    left, top, right, bottom = LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM
    step = (right - left) / max(len(weeks) - 1, 1)

    def x(week: date) -> float:
        middle = (left + right) / 2 if len(weeks) == 1 else left + weeks.index(week) * step
        return round(middle, 1)

    def y(rate: float) -> float:
        return round(bottom - rate * (bottom - top), 1)

    series = []
    for n, figures in enumerate(report.carriers):
        points = tuple(
            Point(
                x(rate.week),
                y(rate.rate),
                f"{figures.carrier}, week of {rate.week:%Y-%m-%d}: {rate.rate:.0%} on time "
                f"({rate.on_time} of {rate.on_time + rate.late})",
            )
            for rate in figures.weeks
        )
        runs: list[list[Point]] = []
        previous: date | None = None
        for point, rate in zip(points, figures.weeks, strict=True):
            if previous is not None and rate.week - previous == timedelta(weeks=1):
                runs[-1].append(point)
            else:
                runs.append([point])
            previous = rate.week
        segments = tuple(" ".join(f"{p.x},{p.y}" for p in run) for run in runs)
        series.append(Series(figures.carrier, COLOURS[n % len(COLOURS)], segments, points))
    every = max(1, round(len(weeks) / 8))  # at most about eight labels under the axis
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        plot=(left, top, right, bottom),
        series=tuple(series),
        x_ticks=tuple(Tick(x(week), f"{week:%b} {week.day}") for week in weeks[::every]),
        y_ticks=tuple(Tick(y(share / 100), f"{share}%") for share in (0, 25, 50, 75, 100)),
    )


def _every_week(first: date, last: date) -> list[date]:
    count = (last - first).days // 7 + 1
    return [first + timedelta(weeks=n) for n in range(count)]
