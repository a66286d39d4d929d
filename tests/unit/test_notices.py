"""Which channel may deliver a message when: quiet hours in the customer's time zone."""

from datetime import UTC, datetime, time

import pytest

from ordertrack.domain.notices import SMS_KINDS, Channel, MessageKind, next_daytime, waits_for_daytime

SEOUL = "Asia/Seoul"
SAO_PAULO = "America/Sao_Paulo"


@pytest.mark.parametrize(
    ("now", "zone", "expected"),
    [
        # 10:00 in Seoul is daytime: at once.
        (datetime(2026, 11, 23, 1, 0, tzinfo=UTC), SEOUL, datetime(2026, 11, 23, 1, 0, tzinfo=UTC)),
        # 22:30 in Seoul: the next morning at 08:00 there (23:00 UTC).
        (datetime(2026, 11, 23, 13, 30, tzinfo=UTC), SEOUL, datetime(2026, 11, 23, 23, 0, tzinfo=UTC)),
        # 05:00 in São Paulo: 08:00 the same day there (11:00 UTC).
        (datetime(2026, 11, 23, 8, 0, tzinfo=UTC), SAO_PAULO, datetime(2026, 11, 23, 11, 0, tzinfo=UTC)),
        # 20:00 sharp is already quiet.
        (datetime(2026, 11, 23, 23, 0, tzinfo=UTC), SAO_PAULO, datetime(2026, 11, 24, 11, 0, tzinfo=UTC)),
        # 08:00 sharp is daytime.
        (datetime(2026, 11, 23, 11, 0, tzinfo=UTC), SAO_PAULO, datetime(2026, 11, 23, 11, 0, tzinfo=UTC)),
    ],
)
def test_next_daytime(now: datetime, zone: str, expected: datetime) -> None:
    assert next_daytime(now, zone) == expected


def test_next_daytime_across_a_clock_change() -> None:
    """Berlin moves to summer time on 2026-03-29: 08:00 that morning is 06:00 UTC, not 07:00."""
    berlin = "Europe/Berlin"
    assert next_daytime(datetime(2026, 3, 28, 22, 0, tzinfo=UTC), berlin) == datetime(
        2026, 3, 29, 6, 0, tzinfo=UTC
    )


def test_only_texts_and_nudges_wait_for_daytime() -> None:
    waiting = {
        (kind, channel) for kind in MessageKind for channel in Channel if waits_for_daytime(kind, channel)
    }
    assert waiting == {(kind, Channel.SMS) for kind in MessageKind} | {
        (MessageKind.REVIEW_REQUEST, Channel.EMAIL),
        (MessageKind.PAYMENT_REMINDER, Channel.EMAIL),
    }
    assert MessageKind.REVIEW_REQUEST not in SMS_KINDS and MessageKind.CONFIRMATION not in SMS_KINDS


def test_equal_day_start_and_end_switch_quiet_hours_off() -> None:
    midnight = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 00:00 in Seoul
    assert next_daytime(midnight, SEOUL, time(0, 0), time(0, 0)) == midnight
    assert next_daytime(midnight, SEOUL, time(9, 0), time(17, 0)) == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
