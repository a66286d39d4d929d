"""Human durations (`90s`, `36h`, `7d`) as used by the timing-policy settings and `since` filters."""

import re
from datetime import UTC, datetime, timedelta

_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str) -> timedelta:
    """Parse `90s`, `36h`, `7d`, `1h30m` or `250ms`; raise ValueError naming the bad input."""
    compact = text.strip().lower().replace(" ", "")
    if not compact or _PART.sub("", compact):
        raise ValueError(
            f"invalid duration {text!r}: use a number and a unit (ms, s, m, h, d, w), e.g. 90s, 36h, 7d"
        )
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(compact))
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be longer than zero")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest exact `7d` / `36h` / `90s` spelling of a duration, for summaries and logs."""
    total_ms = round(value.total_seconds() * 1000)
    for unit in ("w", "d", "h", "m", "s"):
        unit_ms = round(_UNIT_SECONDS[unit] * 1000)
        if total_ms % unit_ms == 0:
            return f"{total_ms // unit_ms}{unit}"
    return f"{total_ms}ms"


def parse_since(text: str, now: datetime) -> datetime:
    """A `since` filter: a duration back from `now` (`7d`, `36h`) or an ISO date or date-time (UTC if
    naive); raise ValueError starting with the bad input and saying what is accepted."""
    value = text.strip()
    try:
        return now - parse_duration(value)
    except OverflowError:
        raise ValueError(f"{text!r} reaches back before the calendar starts") from None
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r}: use a duration (7d, 36h, 90m) or an ISO date (2026-11-20)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
