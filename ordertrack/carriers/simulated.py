"""The adapter for the simulated carrier's HTTP API, written the way a real carrier adapter would be."""

import hashlib
import hmac
from collections.abc import Mapping
from typing import Annotated
from urllib.parse import quote

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from ordertrack.carriers.base import (
    CarrierPayloadError,
    WebhookAuthError,
    error_for_status,
    unavailable_when_unreachable,
)
from ordertrack.domain.statuses import OrderStatus
from ordertrack.domain.tracking import TrackingEvent, TrackingSnapshot

# Webhook pushes to `POST /webhooks/carriers/simulated` carry `X-Sim-Signature`: the hex
# HMAC-SHA256 of the raw body keyed by this literal. DEVELOPMENT ONLY: the key is public, so a push
# to the simulated adapter proves nothing; the intake only delivers it to orders whose carrier is
# served by the simulated adapter, and production orders are not.
WEBHOOK_SECRET = b"simulated-webhook-secret"
SIGNATURE_HEADER = "X-Sim-Signature"


def sign_webhook(body: bytes) -> str:
    """The `X-Sim-Signature` value for `body` (for the simulator, tests and demos)."""
    return hmac.new(WEBHOOK_SECRET, body, hashlib.sha256).hexdigest()


# The simulator's status words, translated to canonical statuses.
_STATUSES: dict[str, OrderStatus] = {
    "TRANSIT": OrderStatus.IN_TRANSIT,
    "OUT_FOR_DELIVERY": OrderStatus.OUT_FOR_DELIVERY,
    "DELIVERED": OrderStatus.DELIVERED,
    "READY_FOR_PICKUP": OrderStatus.AVAILABLE_FOR_PICKUP,
    "ATTEMPT_FAILED": OrderStatus.DELIVERY_FAILED,
    "EXCEPTION": OrderStatus.EXCEPTION,
    "RETURNED_TO_SENDER": OrderStatus.RETURNED,
    "LOST": OrderStatus.LOST,
}


class _WireEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    occurred_at: AwareDatetime
    status: str
    code: str | None = None
    description: str
    location: str | None = None


class _WireTracker(BaseModel):
    """The documented shape of `GET /v1/trackers/{number}`; unknown extra fields are tolerated."""

    model_config = ConfigDict(extra="ignore")

    tracking_number: str
    status: str
    estimated_delivery: AwareDatetime | None = None
    events: Annotated[list[_WireEvent], Field(max_length=1000)]


def _status(word: str) -> OrderStatus:
    try:
        return _STATUSES[word]
    except KeyError:
        raise CarrierPayloadError(f"simulated carrier sent unknown status {word!r}") from None


class SimulatedCarrier:
    """`CarrierAdapter` for the simulator; one pooled client with explicit timeouts for all polls."""

    name = "simulated"
    display_name = "Simulated Carrier"

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._client = httpx.AsyncClient(
            base_url=self._base_url,
            timeout=httpx.Timeout(timeout),
            headers={"Accept": "application/json", "User-Agent": "ordertrack"},
        )

    async def track(self, tracking_number: str) -> TrackingSnapshot:
        with unavailable_when_unreachable("simulated carrier", self._base_url, self._timeout):
            response = await self._client.get(f"/v1/trackers/{quote(tracking_number, safe='')}")
        error = error_for_status(
            self.name, response.status_code, response.text[:200], response.headers.get("Retry-After")
        )
        if error is not None:
            raise error
        return self._snapshot(tracking_number, response.content)

    def _snapshot(self, tracking_number: str, body: bytes) -> TrackingSnapshot:
        try:
            wire = _WireTracker.model_validate_json(body)
            if wire.tracking_number != tracking_number:
                raise CarrierPayloadError(
                    f"asked the simulated carrier for {tracking_number!r}, got {wire.tracking_number!r}"
                )
            events = [
                TrackingEvent(
                    at=event.occurred_at,
                    status=_status(event.status),
                    message=event.description,
                    location=event.location,
                    code=event.code,
                )
                for event in sorted(wire.events, key=lambda event: event.occurred_at)
            ]
            return TrackingSnapshot(
                carrier=self.name,
                tracking_number=wire.tracking_number,
                status=_status(wire.status),
                events=events,
                estimated_delivery=wire.estimated_delivery,
            )
        except ValidationError as exc:
            raise CarrierPayloadError(
                f"simulated carrier sent an invalid tracker for {tracking_number!r}: {exc.error_count()} "
                f"error(s), first: {exc.errors()[0]['msg']}"
            ) from exc

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[TrackingSnapshot]:
        """A push of one tracker, shaped like `GET /v1/trackers/{number}`, signed with `X-Sim-Signature`."""
        wanted = SIGNATURE_HEADER.lower()
        given = next((value for key, value in headers.items() if key.lower() == wanted), None)
        if not given or not hmac.compare_digest(given.strip().lower().encode(), sign_webhook(body).encode()):
            raise WebhookAuthError(f"simulated carrier webhook without a valid {SIGNATURE_HEADER}")
        try:
            number = _WireTracker.model_validate_json(body).tracking_number
        except ValidationError as exc:
            raise CarrierPayloadError(
                f"simulated carrier webhook is not a tracker: {exc.error_count()} error(s), "
                f"first: {exc.errors()[0]['msg']}"
            ) from exc
        return [self._snapshot(number, body)]

    def tracking_url(self, tracking_number: str) -> str:
        return f"{self._base_url}/track/{quote(tracking_number, safe='')}"

    async def aclose(self) -> None:
        await self._client.aclose()
