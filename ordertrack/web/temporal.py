"""Temporal for request handlers: the client, connected in the background, and the one answer for a
server that cannot be reached, 503 `temporal_unavailable`, which the caller may retry.

The app starts without waiting for Temporal (`TemporalLink.run` connects with capped backoff while
the pages, reads and `/healthz` already answer). An outage shows in two ways, and both end in
`temporal_unavailable()`: no connection yet (`get_temporal`), or a call finds the server unavailable
or out of time (`outage_as_503`).
"""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from fastapi import Request
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from ordertrack.connection import ConnectFailure, ConnectionSettingsError, connect_options, connect_patiently
from ordertrack.settings import Settings
from ordertrack.web.deps import resources
from ordertrack.web.errors import ApiError

log = logging.getLogger("ordertrack.web.temporal")

OUTAGE = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED})


def is_outage(err: RPCError) -> bool:
    """The server is down, did not answer in time, or the connection broke mid-call (the client
    reports that as UNKNOWN "transport error"): worth retrying later, not a bug."""
    return err.status in OUTAGE or (
        err.status == RPCStatusCode.UNKNOWN and "transport" in err.message.lower()
    )


HEALTH_CHECK_TIMEOUT = timedelta(seconds=3)


def temporal_unavailable(message: str = "the order service is unavailable; retry later") -> ApiError:
    return ApiError(503, "temporal_unavailable", message)


class TemporalLink:
    """The app's way to Temporal: the client once connected (or given), and meanwhile why not."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self.settings = settings
        self.client = client
        self.address = client.service_client.config.target_host if client else settings.temporal_address
        self.problem: str | None = None  # the last failed attempt's reason
        self.refused: ConnectionSettingsError | None = None  # settings the server will never take

    async def run(self, on_refused: Callable[[ConnectionSettingsError], None] | None = None) -> None:
        """Connect in the background, retrying what may pass; a refusal for good is kept for
        `/healthz` and handed to `on_refused` (`ordertrack serve` stops and says it), else logged."""
        if self.client is not None:
            return
        try:
            self.address = connect_options(self.settings)["target_host"]
            self.client = await connect_patiently(self.settings, on_failure=self._failed)
        except ConnectionSettingsError as err:
            self.refused, self.problem = err, str(err)
            if on_refused is not None:
                on_refused(err)
            else:
                log.error("%s", err)

    def _failed(self, failure: ConnectFailure, attempt: int) -> None:
        self.problem = f"{failure.reason} (attempt {attempt})"

    def why_not(self) -> str:
        """Why there is no client, for a person reading a 503."""
        if self.refused is not None:
            return f"Temporal refuses this server's settings: {self.refused}"
        return (
            f"not connected to Temporal at {self.address} yet "
            f"({self.problem or 'connecting'}); connecting in the background, retry later"
        )

    async def check(self) -> None:
        """Raise `temporal_unavailable` unless connected and the server answers its health check."""
        if self.client is None:
            raise temporal_unavailable(self.why_not())
        try:
            serving = await self.client.service_client.check_health(timeout=HEALTH_CHECK_TIMEOUT)
        except (TimeoutError, RPCError, RuntimeError) as err:
            raise temporal_unavailable(f"Temporal at {self.address} does not answer: {err}") from None
        if not serving:
            raise temporal_unavailable(f"Temporal at {self.address} answers but is not serving yet")


async def get_temporal(request: Request) -> Client:
    """The Temporal client; a 503 saying why while it is not connected (the pages and reads run
    without Temporal)."""
    link = resources(request).temporal
    if link.client is None:
        raise temporal_unavailable()
    return link.client


@contextmanager
def outage_as_503(what: str) -> Iterator[None]:
    """Around calls to Temporal (`what` they are for, in the log): a server that is unavailable or
    did not answer in time is a 503; any other error goes on."""
    try:
        yield
    except RPCError as err:
        if not is_outage(err):
            raise
        log.warning("Temporal unavailable %s: %s", what, err)
        raise temporal_unavailable() from None
