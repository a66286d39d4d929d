"""The carrier plugin interface and the typed errors every adapter raises.

Adapters (the simulator's, later EasyPost or AfterShip) translate their API into the domain's
`TrackingSnapshot` and their failures into these errors; the poll activity turns the errors into
Temporal retry decisions, so no adapter needs to know about Temporal.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol

import httpx

from ordertrack.domain.tracking import TrackingSnapshot


class CarrierAdapter(Protocol):
    """One carrier's tracking API; one instance is shared by all polls, so it owns a connection pool."""

    name: str  # the code orders, webhooks and search attributes use
    display_name: str  # what customers read in emails and on the tracking page

    async def track(self, tracking_number: str) -> TrackingSnapshot:
        """The carrier's current picture of the shipment; raises a `CarrierError` on failure."""
        ...

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[TrackingSnapshot]:
        """Verify and read one webhook push (raw body, request headers) into snapshots.

        Raises `WebhookAuthError` when the signature is missing, forged or stale (checked with a
        constant-time compare, before the body is trusted) and `CarrierPayloadError` when the body
        does not parse or does not fit the carrier's documented shape. A push about something that is
        not a tracking update (a test ping, another event type) returns an empty list.
        """
        ...

    def tracking_url(self, tracking_number: str) -> str | None:
        """The carrier's own public tracking page for customer emails, if it has one."""
        ...

    async def aclose(self) -> None:
        """Release connections; called once when the worker or server stops."""
        ...


class CarrierError(Exception):
    """A carrier call failed; the subclass says whether trying again can help."""


class CarrierUnavailable(CarrierError):
    """5xx, timeout or connection failure: transient, retry later."""


class CarrierRateLimited(CarrierError):
    """429: retry, but not before `retry_after` when the carrier said how long."""

    def __init__(self, message: str, retry_after: timedelta | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TrackingNotFound(CarrierError):
    """404: the carrier does not know this number; retrying the same number will not help."""


class CarrierAuthError(CarrierError):
    """401/403: our credentials are wrong or lack access; an operator must fix the configuration."""


class WebhookAuthError(CarrierError):
    """A webhook push whose signature is missing, forged or stale: reject it (401), trust nothing in it."""


class CarrierPayloadError(CarrierError):
    """The carrier answered with a body that does not parse or does not fit its documented shape."""


def parse_retry_after(value: str | None, now: datetime | None = None) -> timedelta | None:
    """Read a Retry-After header: delay seconds or an HTTP date; None when absent or unreadable."""
    if not value or not (value := value.strip()):
        return None
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; parsedate gives naive for "-0000"
        when = when.replace(tzinfo=UTC)
    return max(when - (now or datetime.now(UTC)), timedelta(0))


def error_for_status(
    carrier: str, status_code: int, detail: str = "", retry_after: str | None = None
) -> CarrierError | None:
    """Map an HTTP status to the typed error an adapter raises; None for 2xx.

    Shared by HTTP adapters so every carrier classifies failures the same way. Other 4xx
    (a request the carrier rejects) become a plain `CarrierError`: retrying it cannot help.
    """
    if 200 <= status_code < 300:
        return None
    what = f"{carrier} carrier answered HTTP {status_code}" + (f": {detail}" if detail else "")
    if status_code == 404:
        return TrackingNotFound(what)
    if status_code in (401, 403):
        return CarrierAuthError(what)
    if status_code == 429:
        return CarrierRateLimited(what, parse_retry_after(retry_after))
    if status_code >= 500 or status_code == 408:
        return CarrierUnavailable(what)
    return CarrierError(what)


@contextmanager
def unavailable_when_unreachable(carrier: str, base_url: str, timeout: float) -> Iterator[None]:
    """A carrier that does not answer, or cannot be reached, is unavailable: retry later."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise CarrierUnavailable(f"{carrier} at {base_url} did not answer within {timeout:g}s") from exc
    except httpx.TransportError as exc:
        raise CarrierUnavailable(f"cannot reach {carrier} at {base_url}: {exc!r}") from exc
