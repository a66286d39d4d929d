"""The carrier report's figures, pure: percentiles, on time against the first estimate, weeks."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from ordertrack.domain.carrier_report import (
    Shipment,
    WeekRate,
    carrier_report,
    percentile,
    report_window,
    week_of,
)

MONDAY = datetime(2026, 11, 2, 9, tzinfo=UTC)
DAY = timedelta(days=1)


def test_percentiles_interpolate_between_the_nearest_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5  # order of the input does not matter
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    # rank (10 - 1) * 0.9 = 8.1: 9 + 0.1 * (10 - 9)
    assert percentile([float(n) for n in range(1, 11)], 0.9) == pytest.approx(9.1)
    assert percentile([1.0, 2.0], 1.0) == 2.0 and percentile([1.0, 2.0], 0.0) == 1.0


def test_on_time_means_delivered_before_the_first_estimate_passed() -> None:
    promised = MONDAY + 3 * DAY
    assert Shipment("dhl", MONDAY, promised, promised - timedelta(seconds=1)).on_time is True
    assert Shipment("dhl", MONDAY, promised, promised).on_time is False  # the deadline itself is late
    assert Shipment("dhl", MONDAY, None, promised).on_time is None  # no estimate: not judged
    assert Shipment("dhl", MONDAY, promised, None).on_time is None  # not delivered
    assert Shipment("dhl", MONDAY, None, MONDAY + DAY / 2).days_in_transit == 0.5


def test_weeks_start_on_monday_in_utc() -> None:
    assert week_of(datetime(2026, 11, 8, 23, 59, tzinfo=UTC)) == date(2026, 11, 2)  # Sunday
    assert week_of(datetime(2026, 11, 9, 0, 0, tzinfo=UTC)) == date(2026, 11, 9)
    tokyo_monday = datetime(2026, 11, 9, 3, 0, tzinfo=timezone(timedelta(hours=9)))
    assert week_of(tokyo_monday) == date(2026, 11, 2)  # still Sunday in UTC


def test_figures_per_carrier() -> None:
    promised = MONDAY + 3 * DAY
    shipments = [
        Shipment("ups", MONDAY, promised, MONDAY + 2 * DAY),  # on time, week of Nov 2
        Shipment("ups", MONDAY, promised, MONDAY + 4 * DAY),  # late, same week
        Shipment("ups", MONDAY, promised, MONDAY + 8 * DAY),  # late, week of Nov 9
        Shipment("ups", MONDAY, None, MONDAY + 1 * DAY),  # no estimate
        Shipment("ups", MONDAY, promised, None, failed_attempts=2, exceptions=1),
        Shipment("ups", MONDAY, None, None, exceptions=1, lost=True),
        Shipment("dhl", MONDAY, promised, MONDAY + DAY),
    ]
    report = carrier_report(shipments, MONDAY - 30 * DAY, MONDAY + 10 * DAY)

    assert [figures.carrier for figures in report.carriers] == ["dhl", "ups"]
    ups = report.carriers[1]
    assert (ups.shipped, ups.delivered, ups.on_time, ups.late, ups.without_estimate) == (6, 4, 1, 2, 1)
    assert ups.on_time_rate == pytest.approx(1 / 3)
    assert ups.median_days == 3.0  # 1, 2, 4, 8
    assert ups.p90_days == 6.8  # rank 2.7: 4 + 0.7 * (8 - 4)
    assert (ups.failed_attempts, ups.exceptions, ups.lost) == (2, 2, 1)
    assert ups.weeks == (
        WeekRate(week=date(2026, 11, 2), on_time=1, late=1),
        WeekRate(week=date(2026, 11, 9), on_time=0, late=1),
    )
    assert ups.weeks[0].rate == 0.5


def test_a_carrier_with_nothing_delivered_has_no_rates() -> None:
    report = carrier_report([Shipment("dhl", MONDAY, None, None, lost=True)], MONDAY - DAY, MONDAY + DAY)
    (dhl,) = report.carriers
    assert (dhl.on_time_rate, dhl.median_days, dhl.p90_days, dhl.weeks) == (None, None, None, ())
    assert carrier_report([], MONDAY - DAY, MONDAY).carriers == ()


def test_the_window_is_checked() -> None:
    assert report_window(MONDAY - DAY, MONDAY) == (MONDAY - DAY, MONDAY)
    with pytest.raises(ValueError, match="is not before now"):
        report_window(MONDAY + DAY, MONDAY)
    with pytest.raises(ValueError, match="a report covers a year at most"):
        report_window(MONDAY - 367 * DAY, MONDAY)
