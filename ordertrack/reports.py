"""Reports over the read model, shared by the CLI, the API and the operators' pages."""

from datetime import datetime

from ordertrack.domain.carrier_report import CarrierReport, carrier_report, report_window
from ordertrack.domain.durations import parse_since
from ordertrack.store.repository import Store

MAX_SINCE_LENGTH = 40  # far more than any duration or ISO date-time needs


async def carrier_report_since(store: Store, since: str, now: datetime) -> CarrierReport:
    """The carrier report over the orders shipped from `since` (`30d`, `12h` back from `now`, or an
    ISO date) until `now`; ValueError saying what is wrong with a `since` that cannot be read, lies
    ahead of `now` or reaches back more than a year."""
    if len(since) > MAX_SINCE_LENGTH:
        raise ValueError(f"{since[:MAX_SINCE_LENGTH]!r}... is longer than a duration or a date can be")
    start, end = report_window(parse_since(since, now), now)
    return carrier_report(await store.shipments(start, end), start, end)
