"""The adapter for EasyPost's Tracker API (https://docs.easypost.com/docs/trackers) and its webhooks.

Polling creates-or-gets a tracker with `POST /v2/trackers` (EasyPost answers with the existing
tracker when one was already made for the same code) and maps the `Tracker` object to a snapshot.
Pushes arrive as `Event` objects (`tracker.created` / `tracker.updated`, `result` a `Tracker`),
signed with `X-Hmac-Signature: hmac-sha256-hex=<HMAC-SHA256 of the raw body, keyed by the
NFKD-normalised webhook secret>`, which is what EasyPost's own client libraries verify.

The mapping table below follows karrio's per-carrier `units.py`: EasyPost's status words on the
left, the canonical `OrderStatus` carrier values on the right. Choices worth knowing:

- `pre_transit` (label created, not yet scanned) and `unknown` (no scan yet) map to `in_transit`:
  the canonical set has no "label only" state, and the order already is `shipped`. The raw code is
  kept on each event.
- `failure` maps to `exception`, not `delivery_failed`: EasyPost uses it when the carrier gave up
  on the shipment (undeliverable, damaged, lost), whereas a failed delivery *attempt* that the
  carrier will retry keeps `in_transit`/`out_for_delivery` with a `status_detail` such as
  `delivery_exception`. A `failure` whose `status_detail` is `lost` maps to `lost`.
- `return_to_sender` -> `returned`; `cancelled` and `error` (the carrier rejected the tracker,
  e.g. an invalid number) -> `exception`, so an operator looks at them.
- Anything else maps to `in_transit` with the raw code kept and a warning logged.
"""

import hashlib
import hmac
import json
import logging
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ordertrack.carriers.base import (
    CarrierPayloadError,
    WebhookAuthError,
    error_for_status,
    unavailable_when_unreachable,
)
from ordertrack.domain.statuses import OrderStatus
from ordertrack.domain.tracking import TrackingEvent, TrackingSnapshot

__all__ = ["STATUSES", "STATUS_DETAILS", "EasyPostCarrier", "WebhookAuthError", "map_status"]

log = logging.getLogger(__name__)

# EasyPost tracker / tracking-detail `status` -> canonical carrier status.
STATUSES: dict[str, OrderStatus] = {
    "unknown": OrderStatus.IN_TRANSIT,
    "pre_transit": OrderStatus.IN_TRANSIT,
    "in_transit": OrderStatus.IN_TRANSIT,
    "out_for_delivery": OrderStatus.OUT_FOR_DELIVERY,
    "delivered": OrderStatus.DELIVERED,
    "available_for_pickup": OrderStatus.AVAILABLE_FOR_PICKUP,
    "return_to_sender": OrderStatus.RETURNED,
    "failure": OrderStatus.EXCEPTION,
    "cancelled": OrderStatus.EXCEPTION,
    "error": OrderStatus.EXCEPTION,
}

# (`status`, `status_detail`) pairs that say more than the status alone.
STATUS_DETAILS: dict[tuple[str, str], OrderStatus] = {
    ("failure", "lost"): OrderStatus.LOST,
    ("in_transit", "lost"): OrderStatus.LOST,
}

# A delivered scan outranks any of these, even when they come later (a stray hub scan after delivery).
_BELOW_DELIVERED = frozenset(
    {
        OrderStatus.IN_TRANSIT,
        OrderStatus.OUT_FOR_DELIVERY,
        OrderStatus.AVAILABLE_FOR_PICKUP,
        OrderStatus.DELIVERY_FAILED,
        OrderStatus.EXCEPTION,
    }
)

SIGNATURE_HEADER = "X-Hmac-Signature"
SIGNATURE_PREFIX = "hmac-sha256-hex="
_URL_CACHE_SIZE = 10_000
_MESSAGE_MAX, _LOCATION_MAX, _CODE_MAX = 500, 200, 64


def map_status(code: str | None, detail: str | None = None) -> OrderStatus:
    """The canonical status for an EasyPost status word; unknown words are `in_transit`, logged."""
    raw = (code or "").strip().lower()
    if detail and (refined := STATUS_DETAILS.get((raw, detail.strip().lower()))):
        return refined
    try:
        return STATUSES[raw]
    except KeyError:
        log.warning("easypost: unknown status code %r mapped to in_transit", code)
        return OrderStatus.IN_TRANSIT


def _utc(value: datetime | None) -> datetime | None:
    # EasyPost documents its timestamps as UTC ISO 8601; tolerate one sent without the offset.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class _WireLocation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    city: str | None = None
    state: str | None = None
    country: str | None = None
    zip: str | None = None

    def text(self) -> str | None:
        parts = [part.strip() for part in (self.city, self.state, self.country) if part and part.strip()]
        return ", ".join(parts)[:_LOCATION_MAX] or None


class _WireDetail(BaseModel):
    """One `TrackingDetail` of a tracker."""

    model_config = ConfigDict(extra="ignore")

    at: datetime = Field(alias="datetime")
    status: str | None = None
    status_detail: str | None = None
    message: str | None = None
    description: str | None = None
    tracking_location: _WireLocation | None = None

    _aware = field_validator("at")(_utc)


class _WireTracker(BaseModel):
    """The documented `Tracker` object; unknown extra fields are tolerated."""

    model_config = ConfigDict(extra="ignore")

    object: str = "Tracker"
    id: str | None = None
    tracking_code: str
    status: str | None = None
    status_detail: str | None = None
    est_delivery_date: datetime | None = None
    public_url: str | None = None
    tracking_details: Annotated[list[_WireDetail], Field(max_length=1000)] = []

    _aware = field_validator("est_delivery_date")(_utc)

    @field_validator("object")
    @classmethod
    def _is_tracker(cls, value: str) -> str:
        if value != "Tracker":
            raise ValueError(f"expected a Tracker object, got {value!r}")
        return value


class _WireEvent(BaseModel):
    """The documented webhook `Event` object; `result` is checked once we know it is a tracker."""

    model_config = ConfigDict(extra="ignore")

    object: str
    id: str | None = None
    description: str
    result: dict[str, Any] | None = None


def _normalised(number: str) -> str:
    return "".join(number.split()).upper()


class EasyPostCarrier:
    """`CarrierAdapter` for EasyPost; one pooled client (basic auth, the API key as user) for all polls."""

    name = "easypost"
    display_name = "EasyPost"

    def __init__(
        self, base_url: str, api_key: str, webhook_secret: str | None, timeout: float = 10.0
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._webhook_secret = (
            unicodedata.normalize("NFKD", webhook_secret).encode() if webhook_secret else None
        )
        self._public_urls: OrderedDict[str, str] = OrderedDict()
        self._client = httpx.AsyncClient(
            base_url=self._base_url,
            timeout=httpx.Timeout(timeout),
            auth=httpx.BasicAuth(api_key, ""),
            headers={"Accept": "application/json", "User-Agent": "ordertrack"},
        )

    # -- polling ---------------------------------------------------------------------------------

    async def track(self, tracking_number: str) -> TrackingSnapshot:
        with unavailable_when_unreachable(self.name, self._base_url, self._timeout):
            response = await self._client.post(
                "/v2/trackers", json={"tracker": {"tracking_code": tracking_number}}
            )
        error = error_for_status(
            self.name,
            response.status_code,
            _error_detail(response),
            response.headers.get("Retry-After"),
        )
        if error is not None:
            raise error
        try:
            wire = _WireTracker.model_validate_json(response.content)
        except ValidationError as exc:
            raise _payload_error(f"an invalid tracker for {tracking_number!r}", exc) from exc
        if _normalised(wire.tracking_code) != _normalised(tracking_number):
            raise CarrierPayloadError(
                f"asked easypost for {tracking_number!r}, got a tracker for {wire.tracking_code!r}"
            )
        return self._snapshot(wire, tracking_number)

    def tracking_url(self, tracking_number: str) -> str | None:
        """EasyPost's public tracker page, once a poll or push has told us its `public_url`."""
        return self._public_urls.get(_normalised(tracking_number))

    # -- webhooks --------------------------------------------------------------------------------

    def verify_signature(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise `WebhookAuthError` unless `X-Hmac-Signature` is EasyPost's HMAC of `body`."""
        if self._webhook_secret is None:
            raise WebhookAuthError("easypost webhook secret is not configured; refusing unsigned pushes")
        wanted = SIGNATURE_HEADER.lower()
        given = next((value for key, value in headers.items() if key.lower() == wanted), None)
        if not given:
            raise WebhookAuthError(f"easypost webhook without the {SIGNATURE_HEADER} header")
        digest = hmac.new(self._webhook_secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest((SIGNATURE_PREFIX + digest).encode(), given.strip().encode()):
            raise WebhookAuthError("easypost webhook signature does not match the body")

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[TrackingSnapshot]:
        self.verify_signature(headers, body)
        try:
            event = _WireEvent.model_validate_json(body)
        except ValidationError as exc:
            raise _payload_error("an invalid webhook event", exc) from exc
        if event.object != "Event":
            raise CarrierPayloadError(f"easypost webhook is a {event.object!r}, not an Event")
        if not event.description.startswith("tracker."):
            return []
        if event.result is None:
            raise CarrierPayloadError(f"easypost {event.description} event {event.id} has no result")
        try:
            wire = _WireTracker.model_validate(event.result)
        except ValidationError as exc:
            raise _payload_error(f"an invalid tracker in event {event.id}", exc) from exc
        return [self._snapshot(wire, wire.tracking_code)]

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- mapping ---------------------------------------------------------------------------------

    def _snapshot(self, wire: _WireTracker, tracking_number: str) -> TrackingSnapshot:
        events = _events(wire.tracking_details)
        status = map_status(wire.status, wire.status_detail)
        if status in _BELOW_DELIVERED and any(e.status is OrderStatus.DELIVERED for e in events):
            status = OrderStatus.DELIVERED
        try:
            snapshot = TrackingSnapshot(
                carrier=self.name,
                tracking_number=tracking_number,
                status=status,
                events=events,
                estimated_delivery=wire.est_delivery_date,
            )
        except ValidationError as exc:
            raise _payload_error(f"a tracker we cannot record for {tracking_number!r}", exc) from exc
        if wire.public_url:
            self._remember_url(snapshot.tracking_number, wire.public_url)
        return snapshot

    def _remember_url(self, tracking_number: str, url: str) -> None:
        key = _normalised(tracking_number)
        self._public_urls[key] = url
        self._public_urls.move_to_end(key)
        while len(self._public_urls) > _URL_CACHE_SIZE:
            self._public_urls.popitem(last=False)


def _events(details: Iterable[_WireDetail]) -> list[TrackingEvent]:
    """Tracking details as events: ordered by time (stable for equal times), duplicates dropped."""
    seen: set[str] = set()
    events: list[TrackingEvent] = []
    for detail in sorted(details, key=lambda detail: detail.at):
        raw = (detail.status or "unknown").strip()
        event = TrackingEvent(
            at=detail.at,
            status=map_status(raw, detail.status_detail),
            message=(detail.message or detail.description or raw).strip()[:_MESSAGE_MAX],
            location=detail.tracking_location.text() if detail.tracking_location else None,
            code=raw[:_CODE_MAX],
        )
        if event.key not in seen:
            seen.add(event.key)
            events.append(event)
    return events


def _error_detail(response: httpx.Response) -> str:
    """EasyPost's `{"error": {"code", "message"}}` when present, else the start of the body."""
    try:
        error = json.loads(response.content)["error"]
        return f"{error.get('code', '')}: {error.get('message', '')}"[:200]
    except (ValueError, KeyError, TypeError, AttributeError):
        return response.text[:200]


def _payload_error(what: str, exc: ValidationError) -> CarrierPayloadError:
    return CarrierPayloadError(
        f"easypost sent {what}: {exc.error_count()} error(s), first: {exc.errors()[0]['msg']}"
    )
