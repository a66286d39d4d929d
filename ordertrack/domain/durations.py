"""Human durations (`90s`, `36h`, `7d`) as used by the timing-policy settings."""

import re
from datetime import timedelta

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
