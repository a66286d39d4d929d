"""The polling cadence, without Temporal: when the carrier is asked next, for each kind of moment."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.polling import (
    PUSH_SLOWDOWN,
    PollState,
    estimated_day,
    first_poll,
    next_poll,
)
from ordertrack.domain.statuses import TRACKED, OrderStatus

H = timedelta(hours=1)
POLICY = TimingPolicy()  # polls every 30 minutes at the door, waits 4h to 16h far from it
FAST = timedelta(minutes=29, seconds=30)  # the interval less the answer's way to the order
SHORTEST, LONGEST = 4 * H, 16 * H
# The estimate is 17:00 on Thursday 3 December (UTC, the orders' default time zone): that day, from
# midnight, is the estimated day.
ESTIMATE = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)
DAY_STARTS = datetime(2026, 12, 3, tzinfo=UTC)


def at(day: int, hour: float, zone: str = "UTC") -> datetime:
    """`hour` o'clock on the `day`th of December 2026 in `zone`."""
    return datetime(2026, 12, day, tzinfo=ZoneInfo(zone)) + hour * H


def poll(status: OrderStatus = OrderStatus.IN_TRANSIT, **changes: object) -> PollState:
    fields: dict[str, object] = {"status": status, "status_since": at(1, 9), "estimated_delivery": ESTIMATE}
    return PollState.model_validate({**fields, **changes})


def wait(state: PollState, now: datetime, policy: TimingPolicy = POLICY) -> timedelta:
    return next_poll(state, policy, now) - now


# -- the bounds ------------------------------------------------------------------------------------


def test_bounds_default_to_multiples_of_the_interval_so_a_scaled_down_policy_scales_them():
    assert POLICY.carrier_poll_bounds == (SHORTEST, LONGEST)
    demo = TimingPolicy(carrier_poll_interval=timedelta(seconds=2))
    assert demo.carrier_poll_bounds == (timedelta(seconds=16), timedelta(seconds=64))


def test_bounds_are_never_below_the_interval_nor_the_longest_below_the_shortest():
    assert TimingPolicy(carrier_poll_min=2 * H, carrier_poll_max=8 * H).carrier_poll_bounds == (2 * H, 8 * H)
    slow = TimingPolicy(carrier_poll_interval=6 * H, carrier_poll_min=H, carrier_poll_max=2 * H)
    assert slow.carrier_poll_bounds == (6 * H, 6 * H)
    assert TimingPolicy(carrier_poll_min=20 * H).carrier_poll_bounds == (20 * H, 20 * H)


def test_a_policy_captured_before_the_bounds_existed_still_loads():
    old = '{"carrier_poll_interval": "30m", "ship_by": "2d"}'
    assert TimingPolicy.model_validate_json(old).carrier_poll_bounds == (SHORTEST, LONGEST)


# -- at the door -----------------------------------------------------------------------------------


@pytest.mark.parametrize("now", [at(1, 10), at(3, 3), at(5, 23)], ids=["early", "night", "late"])
def test_out_for_delivery_polls_at_the_interval_whatever_the_day_or_hour(now: datetime):
    assert wait(poll(OrderStatus.OUT_FOR_DELIVERY), now) == FAST


@pytest.mark.parametrize("hour", [0, 3, 9, 17, 23.9])
def test_the_estimated_day_polls_at_the_interval_night_included(hour: float):
    assert wait(poll(), at(3, hour)) == FAST


def test_past_the_estimated_day_it_polls_at_the_interval_by_day_and_waits_for_the_morning_at_night():
    assert wait(poll(), at(4, 7)) == FAST
    assert wait(poll(), at(4, 20.5)) == FAST
    assert next_poll(poll(), POLICY, at(4, 22)) == at(5, 7) + FAST
    assert next_poll(poll(), POLICY, at(5, 2)) == at(5, 7) + FAST


def test_a_long_night_past_the_estimated_day_still_waits_no_longer_than_the_longest_wait():
    short = TimingPolicy(carrier_poll_min=H, carrier_poll_max=3 * H)
    assert wait(poll(), at(4, 22), short) == 3 * H


def test_a_lead_under_the_interval_leaves_the_answer_time_to_reach_the_order():
    assert wait(poll(OrderStatus.OUT_FOR_DELIVERY), at(3, 9), TimingPolicy(carrier_poll_interval=H)) == (
        H - timedelta(seconds=30)
    )
    second = timedelta(seconds=1)
    assert wait(poll(OrderStatus.OUT_FOR_DELIVERY), at(3, 9), TimingPolicy(carrier_poll_interval=second)) == (
        second * 59 / 60
    )


# -- far from the door -----------------------------------------------------------------------------


def test_early_in_transit_it_waits_the_longest():
    assert wait(poll(), at(1, 9)) == LONGEST
    assert wait(poll(), at(2, 1)) == LONGEST  # a night, too


def test_the_waits_tighten_as_the_estimated_day_approaches_and_never_run_into_it():
    first_of_the_day = DAY_STARTS + FAST
    assert next_poll(poll(), POLICY, at(2, 8)) == at(2, 8) + (first_of_the_day - at(2, 8)) / 2
    # Half of what is left would be under the shortest wait: all of it, to the day's first poll.
    assert next_poll(poll(), POLICY, at(2, 17)) == first_of_the_day
    # At night the longest wait, but not past the day's first poll either.
    assert next_poll(poll(), POLICY, at(2, 22)) == first_of_the_day


def test_a_whole_schedule_before_the_estimated_day_is_sparse_and_then_dense():
    moments, now = [], datetime(2026, 11, 30, 9, tzinfo=UTC)
    while now < DAY_STARTS:
        moments.append(now)
        now = next_poll(poll(), POLICY, now)
    assert now == DAY_STARTS + FAST
    gaps = [later - earlier for earlier, later in zip(moments, [*moments[1:], now], strict=True)]
    assert len(moments) == 5 and gaps[0] == LONGEST and gaps == sorted(gaps, reverse=True)


def test_with_no_estimate_yet_it_waits_the_shortest_by_day_and_the_longest_at_night():
    assert wait(poll(estimated_delivery=None), at(1, 12)) == SHORTEST
    assert wait(poll(estimated_delivery=None), at(1, 23)) == LONGEST


def test_a_lost_parcel_is_watched_at_the_longest_wait():
    assert wait(poll(OrderStatus.LOST), at(3, 12)) == LONGEST


def in_transit(state: PollState) -> PollState:
    return state.model_copy(update={"status": OrderStatus.IN_TRANSIT})


def test_after_a_failed_attempt_before_the_estimated_day_it_waits_for_the_next_day():
    failed = poll(OrderStatus.DELIVERY_FAILED, last_scan_at=at(2, 13), status_since=at(2, 13))
    # The next day is the estimated day: its first poll.
    assert next_poll(failed, POLICY, at(2, 13)) == DAY_STARTS + FAST
    assert next_poll(in_transit(failed), POLICY, at(2, 13)) < DAY_STARTS
    later = failed.model_copy(update={"estimated_delivery": ESTIMATE + timedelta(days=2)})
    assert next_poll(later, POLICY, at(2, 13)) == at(2, 13) + LONGEST  # the next day is far off
    assert next_poll(later, POLICY, at(3, 8)) == next_poll(in_transit(later), POLICY, at(3, 8))


def test_the_day_after_a_failed_attempt_counts_from_the_attempt_not_from_when_it_was_seen():
    seen_late = poll(OrderStatus.DELIVERY_FAILED, last_scan_at=at(1, 15), status_since=at(2, 1))
    # The 2nd began after the attempt (on the 1st): the usual rule, not a wait for the 3rd.
    assert next_poll(seen_late, POLICY, at(2, 10)) == next_poll(in_transit(seen_late), POLICY, at(2, 10))
    assert next_poll(seen_late, POLICY, at(2, 10)) < DAY_STARTS


def test_a_failed_attempt_on_the_estimated_day_does_not_slow_polling():
    failed = poll(OrderStatus.DELIVERY_FAILED, last_scan_at=at(3, 11), status_since=at(3, 11))
    assert wait(failed, at(3, 11)) == FAST  # the carrier may still move the estimate today


# -- days are the destination's --------------------------------------------------------------------


def test_the_estimated_day_is_the_destinations():
    # 01:00 UTC on the 3rd is 22:00 on the 2nd in São Paulo: there, the 2nd is the estimated day.
    estimate = datetime(2026, 12, 3, 1, tzinfo=UTC)
    zone = ZoneInfo("America/Sao_Paulo")
    assert estimated_day(estimate, zone) == (at(2, 0, "America/Sao_Paulo"), at(3, 0, "America/Sao_Paulo"))
    sao_paulo = poll(estimated_delivery=estimate, time_zone="America/Sao_Paulo")
    assert wait(sao_paulo, at(2, 4, "America/Sao_Paulo")) == FAST


def test_a_date_only_estimate_names_its_own_date_in_any_time_zone():
    midnight = datetime(2026, 12, 3, tzinfo=UTC)
    zone = ZoneInfo("America/Los_Angeles")
    assert estimated_day(midnight, zone)[0] == at(3, 0, "America/Los_Angeles")


def test_night_is_the_destinations():
    seoul = poll(estimated_delivery=None, time_zone="Asia/Seoul")
    assert wait(seoul, at(1, 12, "Asia/Seoul")) == SHORTEST  # 03:00 UTC, but noon in Seoul
    assert wait(seoul, at(1, 23, "Asia/Seoul")) == LONGEST


# -- pushes and the first poll ---------------------------------------------------------------------


def test_while_the_carrier_pushes_polls_slow_down_and_speed_up_when_the_pushes_stop():
    hourly = TimingPolicy(carrier_poll_interval=H, carrier_poll_min=H, carrier_poll_max=H)
    pushed = poll(OrderStatus.OUT_FOR_DELIVERY, pushed_at=at(3, 9))
    lead = timedelta(seconds=30)
    assert wait(pushed, at(3, 9), hourly) == (H - lead) * PUSH_SLOWDOWN
    # The pushes count as stopped 4 hours after the last one: the slowed wait ends there.
    assert next_poll(pushed, hourly, at(3, 10)) == at(3, 9) + H * PUSH_SLOWDOWN
    assert wait(pushed, at(3, 13), hourly) == H - lead


def test_a_new_poll_asks_at_once_before_any_answer_and_on_the_cadence_after_one():
    assert first_poll(poll(), POLICY) is None
    answered = poll(answered_at=at(1, 9))
    assert first_poll(answered, POLICY) == at(1, 9) + LONGEST


MOMENTS = st.datetimes(
    min_value=datetime(2026, 11, 25), max_value=datetime(2026, 12, 12), timezones=st.just(UTC)
)


@given(
    status=st.sampled_from(sorted(TRACKED)),
    now=MOMENTS,
    estimate=st.none() | MOMENTS,
    zone=st.sampled_from(["UTC", "America/Sao_Paulo", "Asia/Seoul", "Europe/Lisbon"]),
)
def test_every_wait_is_within_the_interval_and_the_longest_wait(
    status: OrderStatus, now: datetime, estimate: datetime | None, zone: str
):
    state = poll(
        status, estimated_delivery=estimate, last_scan_at=now - H, status_since=now - H, time_zone=zone
    )
    assert FAST <= wait(state, now) <= LONGEST
    day = estimated_day(estimate, ZoneInfo(zone)) if estimate else None
    if day and day[0] <= now < day[1] and status != OrderStatus.LOST:
        assert wait(state, now) == FAST  # on the estimated day, whatever the status but lost
