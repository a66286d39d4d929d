"""The carrier poll activity: one tracking request per attempt, with retries doing the waiting.

The workflow runs `poll_carrier` with a retry policy whose initial interval is the poll interval
(backoff 1.0, unlimited attempts). "Nothing changed" is a benign failure, so the server retries
at that cadence and the workflow history grows only when the carrier has something new.

An order's carrier with no adapter of its own (`ups` tracked through an aggregator) is polled through
the registry's default adapter, and the snapshot is reported under the order's carrier name so the
order accepts it. Calls to one adapter are bounded per worker (`carrier_max_concurrent_calls`).
"""

from contextlib import AsyncExitStack

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
                snapshot = await adapter.track(request.tracking_number)
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
                f"carrier unavailable polling {what}: {exc}", type="CarrierUnavailable"
            ) from exc
        except CarrierPayloadError as exc:
            activity.logger.warning("Carrier sent an invalid payload polling %s: %s", what, exc)
            raise ApplicationError(
                f"invalid carrier payload for {what}: {exc}", type="CarrierPayloadInvalid"
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
        if snapshot.fingerprint() == request.known_fingerprint:
            raise ApplicationError(
                f"no change for {what} since the last poll",
                type="NoChange",
                category=ApplicationErrorCategory.BENIGN,
            )
        return snapshot
