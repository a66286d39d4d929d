"""The carrier poll activity: one tracking request per attempt, with retries doing the waiting.

"Nothing changed" is a benign failure, so the server retries and the workflow history grows only
when the carrier has something new. A request with a cadence paces itself: each benign failure
carries the wait until the next attempt (`next_retry_delay`), decided by `ordertrack.domain.polling`
from the order's tracking state, so the pace follows the journey without a workflow event; the
first attempt of a poll started right after an answer only says when to ask. Without a cadence
(orders started before adaptive polling) the retry policy's fixed interval sets the pace.

An order's carrier with no adapter of its own (`ups` tracked through an aggregator) is polled through
the registry's default adapter, and the snapshot is reported under the order's carrier name so the
order accepts it. Calls to one adapter are bounded per worker (`carrier_max_concurrent_calls`).
"""

import time
from collections.abc import Awaitable
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from functools import cached_property

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from ordertrack.carriers.base import (
    CarrierAuthError,
    CarrierError,
    CarrierPayloadError,
    CarrierRateLimited,
    CarrierUnavailable,
    TrackingNotFound,
)
from ordertrack.carriers.registry import CarrierRegistry, UnknownCarrierError
from ordertrack.counters import CARRIER_CALLS, activity_meter
from ordertrack.domain.polling import first_poll, next_poll
from ordertrack.domain.records import PollRequest
from ordertrack.domain.tracking import TrackingSnapshot
from ordertrack.names import (
    CARRIER_AUTH_FAILED_ERROR,
    POLL_CARRIER,
    TRACKING_NOT_FOUND_ERROR,
    UNKNOWN_CARRIER_ERROR,
)


class CarrierActivities:
    """Activities that talk to carriers through the registry's adapters."""

    def __init__(self, registry: CarrierRegistry) -> None:
        self._registry = registry

    @activity.defn(name=POLL_CARRIER)
    async def poll_carrier(self, request: PollRequest) -> TrackingSnapshot:
        """The carrier's snapshot when it differs from `known_fingerprint`; otherwise a benign NoChange."""
        what = f"{request.carrier} {request.tracking_number}" + (
            f" (order {request.order_id})" if request.order_id else ""
        )
        clock = _AttemptClock()
        if (due := _first_call_at(request)) and due > clock.now():
            raise ApplicationError(
                f"next poll of {what} at {due:%Y-%m-%d %H:%M:%S} UTC",
                type="NoChange",
                category=ApplicationErrorCategory.BENIGN,
                next_retry_delay=due - clock.now(),
            )
        try:
            adapter = self._registry.resolve(request.carrier)
        except UnknownCarrierError as exc:
            raise ApplicationError(
                f"cannot track {what}: {exc}; configure an adapter or correct the carrier on the order",
                type=UNKNOWN_CARRIER_ERROR,
                non_retryable=True,
            ) from exc
        try:
            async with AsyncExitStack() as slot:
                if (semaphore := self._registry.call_slot(adapter)) is not None:
                    await slot.enter_async_context(semaphore)
                snapshot = await _counted(adapter.track(request.tracking_number), request.carrier)
        except CarrierRateLimited as exc:
            activity.logger.warning("Carrier rate-limited polling %s, retry after %s", what, exc.retry_after)
            raise ApplicationError(
                f"rate-limited polling {what}: {exc}",
                type="CarrierRateLimited",
                next_retry_delay=exc.retry_after,
            ) from exc
        except CarrierUnavailable as exc:
            activity.logger.warning("Carrier unavailable polling %s: %s", what, exc)
            raise ApplicationError(
                f"carrier unavailable polling {what}: {exc}",
                type="CarrierUnavailable",
                next_retry_delay=_wait(request, clock),
            ) from exc
        except CarrierPayloadError as exc:
            activity.logger.warning("Carrier sent an invalid payload polling %s: %s", what, exc)
            raise ApplicationError(
                f"invalid carrier payload for {what}: {exc}",
                type="CarrierPayloadInvalid",
                next_retry_delay=_wait(request, clock),
            ) from exc
        except TrackingNotFound as exc:
            raise ApplicationError(
                f"the carrier does not know {what}: {exc}; check the order's tracking number and carrier",
                type=TRACKING_NOT_FOUND_ERROR,
                non_retryable=True,
            ) from exc
        except CarrierAuthError as exc:
            raise ApplicationError(
                f"the carrier refused our credentials polling {what}: {exc}; fix the carrier's API key",
                type=CARRIER_AUTH_FAILED_ERROR,
                non_retryable=True,
            ) from exc
        except CarrierError as exc:
            raise ApplicationError(
                f"the carrier rejected the request for {what}: {exc}",
                type="CarrierRequestRejected",
                non_retryable=True,
            ) from exc
        if snapshot.carrier != request.carrier:
            snapshot = snapshot.model_copy(update={"carrier": request.carrier})
        unchanged = snapshot.fingerprint() == request.known_fingerprint
        CARRIER_CALLS.add(
            activity_meter(), carrier=request.carrier, outcome="unchanged" if unchanged else "changed"
        )
        if unchanged:
            raise ApplicationError(
                f"no change for {what} since the last poll",
                type="NoChange",
                category=ApplicationErrorCategory.BENIGN,
                next_retry_delay=_wait(request, clock),
            )
        return snapshot


async def _counted(call: Awaitable[TrackingSnapshot], carrier: str) -> TrackingSnapshot:
    """The carrier's answer; a call that fails is counted here, one that answers by the caller."""
    try:
        return await call
    except Exception:
        CARRIER_CALLS.add(activity_meter(), carrier=carrier, outcome="error")
        raise


class _AttemptClock:
    """The Temporal server's time during this attempt: when the server started it, plus the time
    spent since (the server's clock, not the worker's, which a time-skipping test server leaves behind)."""

    def __init__(self) -> None:
        self._began = time.monotonic()

    @cached_property
    def started(self) -> datetime:  # read only for a cadence: a request without one needs no clock
        return activity.info().started_time

    def now(self) -> datetime:
        return self.started + timedelta(seconds=time.monotonic() - self._began)


def _first_call_at(request: PollRequest) -> datetime | None:
    """When a poll's first attempt should ask the carrier; None: now (later attempts always ask)."""
    if request.cadence is None or activity.info().attempt > 1:
        return None
    return first_poll(request.cadence.state, request.cadence.policy)


def _wait(request: PollRequest, clock: _AttemptClock) -> timedelta | None:
    """How long until the next attempt: the cadence's, or None for the retry policy's interval.

    The cadence counts from this attempt's start, so a slow carrier does not stretch it."""
    if request.cadence is None:
        return None
    next_at = next_poll(request.cadence.state, request.cadence.policy, clock.started)
    return max(next_at - clock.now(), timedelta(0))
