"""The simulated journeys: pure playback, no server."""

from datetime import UTC, datetime, timedelta

import pytest

from ordertrack.carriers.journeys import JOURNEYS, UnknownTrackingNumber, snapshot_at
from ordertrack.domain.statuses import OrderStatus as S

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=30)


def statuses(number: str, now: datetime = LATER, speed: float = 1.0) -> list[S]:
    return [event.status for event in snapshot_at(number, T0, now, speed).events]


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("SIM-ONTIME-1", [S.IN_TRANSIT, S.IN_TRANSIT, S.IN_TRANSIT, S.OUT_FOR_DELIVERY, S.DELIVERED]),
        (
            "SIM-DELAYED-1",
            [S.IN_TRANSIT, S.IN_TRANSIT, S.IN_TRANSIT, S.IN_TRANSIT, S.OUT_FOR_DELIVERY, S.DELIVERED],
        ),
        (
            "SIM-EXCEPTION-1",
            [
                S.IN_TRANSIT,
                S.IN_TRANSIT,
                S.EXCEPTION,
                S.IN_TRANSIT,
                S.IN_TRANSIT,
                S.OUT_FOR_DELIVERY,
                S.DELIVERED,
            ],
        ),
        (
            "SIM-FAILED-1",
            [
                S.IN_TRANSIT,
                S.IN_TRANSIT,
                S.IN_TRANSIT,
                S.OUT_FOR_DELIVERY,
                S.DELIVERY_FAILED,
                S.OUT_FOR_DELIVERY,
                S.DELIVERED,
            ],
        ),
        ("SIM-LOST-1", [S.IN_TRANSIT]),
        ("SIM-RETURNED-1", [S.IN_TRANSIT, S.IN_TRANSIT, S.IN_TRANSIT, S.EXCEPTION, S.RETURNED]),
    ],
)
def test_each_journey_runs_its_status_sequence(number: str, expected: list[S]) -> None:
    snapshot = snapshot_at(number, T0, LATER, 1.0)
    assert statuses(number) == expected
    assert snapshot.status == expected[-1]
    assert snapshot.carrier == "simulated"
    assert [event.at for event in snapshot.events] == sorted(event.at for event in snapshot.events)
    assert all(event.code and event.code.startswith("SIM_") for event in snapshot.events)


def test_first_sight_shows_the_accepted_scan_only() -> None:
    for journey in JOURNEYS:
        snapshot = snapshot_at(journey.prefix + "X", T0, T0, 1.0)
        assert [event.code for event in snapshot.events] == ["SIM_ACCEPTED"]
        assert snapshot.events[0].at == T0


def test_on_time_journey_is_delivered_about_three_days_after_first_sight() -> None:
    assert snapshot_at("SIM-ONTIME-1", T0, T0 + timedelta(hours=71), 1.0).status == S.OUT_FOR_DELIVERY
    snapshot = snapshot_at("SIM-ONTIME-1", T0, T0 + timedelta(hours=72), 1.0)
    assert snapshot.status == S.DELIVERED
    assert snapshot.events[-1].at == T0 + timedelta(hours=72)
    assert snapshot.estimated_delivery == T0 + timedelta(hours=80)


def test_speed_scales_the_journey_into_real_time() -> None:
    at_71s = snapshot_at("SIM-ONTIME-1", T0, T0 + timedelta(seconds=71), 3600)
    assert at_71s.status == S.OUT_FOR_DELIVERY
    snapshot = snapshot_at("SIM-ONTIME-1", T0, T0 + timedelta(seconds=72), 3600)
    assert snapshot.status == S.DELIVERED
    assert [event.at - T0 for event in snapshot.events] == [timedelta(seconds=s) for s in (0, 20, 40, 66, 72)]
    assert snapshot.estimated_delivery == T0 + timedelta(seconds=80)


def test_snapshots_are_stable_between_steps() -> None:
    early = snapshot_at("SIM-ONTIME-1", T0, T0 + timedelta(hours=21), 1.0)
    late = snapshot_at("SIM-ONTIME-1", T0, T0 + timedelta(hours=39), 1.0)
    assert early.fingerprint() == late.fingerprint()


def test_delayed_journey_moves_its_estimate_one_day_later_once() -> None:
    before = snapshot_at("SIM-DELAYED-1", T0, T0 + timedelta(hours=39), 1.0)
    after = snapshot_at("SIM-DELAYED-1", T0, T0 + timedelta(hours=40), 1.0)
    delivered = snapshot_at("SIM-DELAYED-1", T0, LATER, 1.0)
    assert before.estimated_delivery == T0 + timedelta(hours=80)
    assert after.estimated_delivery == T0 + timedelta(hours=104)
    assert after.events[-1].code == "SIM_DELAYED"
    assert delivered.estimated_delivery == T0 + timedelta(hours=104)
    assert delivered.status == S.DELIVERED
    assert delivered.events[-1].at == T0 + timedelta(hours=96)


def test_lost_journey_never_scans_after_acceptance() -> None:
    soon = snapshot_at("SIM-LOST-1", T0, T0 + timedelta(minutes=1), 1.0)
    never = snapshot_at("SIM-LOST-1", T0, T0 + timedelta(days=365), 1.0)
    assert soon == never
    assert never.status == S.IN_TRANSIT
    assert never.estimated_delivery == T0 + timedelta(hours=80)


def test_returned_journey_reports_address_not_found() -> None:
    snapshot = snapshot_at("SIM-RETURNED-1", T0, LATER, 1.0)
    assert [event.message for event in snapshot.events[-2:]] == ["Address not found", "Returned to sender"]


def test_prefix_is_case_insensitive() -> None:
    assert snapshot_at("sim-ontime-1", T0, LATER, 1.0).status == S.DELIVERED


def test_unknown_prefix_names_the_known_ones() -> None:
    with pytest.raises(UnknownTrackingNumber, match="SIM-ONTIME-"):
        snapshot_at("1Z999AA10123456784", T0, LATER, 1.0)


def test_speed_must_be_positive() -> None:
    with pytest.raises(ValueError, match="speed"):
        snapshot_at("SIM-ONTIME-1", T0, LATER, 0)
