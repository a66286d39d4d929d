"""Temporal for request handlers: the client, connected on first use, and the one answer for a
server that cannot be reached, 503 `temporal_unavailable`, which the caller may retry.

An outage shows in two ways, and both end in `temporal_unavailable()`: the connection fails
(`get_temporal`), or a call finds the server unavailable or out of time (`outage_as_503`).
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from ordertrack.connection import connect
from ordertrack.web.deps import resources
from ordertrack.web.errors import ApiError

log = logging.getLogger("ordertrack.web.temporal")

OUTAGE = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED})


def temporal_unavailable() -> ApiError:
    return ApiError(503, "temporal_unavailable", "the order service is unavailable; retry later")


async def get_temporal(request: Request) -> Client:
    """The Temporal client, connected on first use (the pages and reads run without Temporal)."""
    res = resources(request)
    if res.temporal is None:
        try:
            res.temporal = await connect(res.settings)
        except Exception:
            log.exception("cannot connect to Temporal")
            raise temporal_unavailable() from None
    return res.temporal


@contextmanager
def outage_as_503(what: str) -> Iterator[None]:
    """Around calls to Temporal (`what` they are for, in the log): a server that is unavailable or
    did not answer in time is a 503; any other error goes on."""
    try:
        yield
    except RPCError as err:
        if err.status not in OUTAGE:
            raise
        log.warning("Temporal unavailable %s: %s", what, err)
        raise temporal_unavailable() from None
