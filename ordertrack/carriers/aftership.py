"""The AfterShip Tracking API adapter (API version 2024-10, the one `aftership_base_url` points at).

Wire shapes follow AfterShip's public documentation for `2024-10`:

- every response is the envelope `{"meta": {"code", "message", "type"}, "data": ...}`;
- `GET /trackings?tracking_numbers=<n>` answers `data: {"pagination": {...}, "trackings": [tracking]}`;
  an empty list means AfterShip is not tracking the number yet, so `track` registers it with
  `POST /trackings {"tracking_number": n}` (AfterShip detects the courier) and maps the created
  tracking (`data` is the tracking itself); AfterShip fetches the courier's scans asynchronously, so
  the first snapshot is usually `Pending` without checkpoints and later polls fill in;
- a tracking has `tag`, `subtag`, `checkpoints[]` (`checkpoint_time`, `tag`, `subtag`, `message`,
  `location`, `city`, `state`, `country_region`, `country_region_name`) and three estimates:
  `custom_estimated_delivery_date` (`type`, `datetime`, `datetime_min`, `datetime_max`),
  `courier_estimated_delivery_date` and `aftership_estimated_delivery_date` (`estimated_delivery_date`,
  `estimated_delivery_date_min`, `estimated_delivery_date_max`);
- webhooks POST `{"event", "event_id", "is_tracking_first_tag", "msg": tracking, "ts"}` signed with
  `aftership-hmac-sha256`: base64 of HMAC-SHA256 over the raw body, keyed by the webhook secret.

Authentication is the `as-api-key` header on one shared, pooled client.
"""

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from enum import Enum
from typing import Annotated, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ordertrack.carriers.base import (
    CarrierPayloadError,
    CarrierUnavailable,
    TrackingNotFound,
    WebhookAuthError,
    error_for_status,
    unavailable_when_unreachable,
)
from ordertrack.domain.statuses import TRACKED, OrderStatus
from ordertrack.domain.tracking import TrackingEvent, TrackingSnapshot

log = logging.getLogger(__name__)

NAME = "aftership"
SIGNATURE_HEADER = "aftership-hmac-sha256"
API_KEY_HEADER = "as-api-key"

# Business error codes in `meta.code` that mean "AfterShip cannot track this number".
_NOT_TRACKABLE_CODES = frozenset({4004, 4012})  # tracking does not exist; cannot detect courier
_ALREADY_EXISTS_CODE = 4003


# --- The mapping table (karrio `units.py` style) ---------------------------------------------------
# Each canonical status lists the AfterShip tags and subtags that mean it. A checkpoint's or
# tracking's subtag is looked up first, then its tag; an unknown subtag of a known tag takes the
# tag's status; an unknown tag is `in_transit`. The raw code (subtag, else tag) is always kept on
# the event. Choices worth knowing:
# - Pending / InfoReceived (label created, no scan yet) are `in_transit`: we only track shipped orders.
# - Expired (no update from the courier for 30 days) is `exception`: someone should look at it.
# - Exception_010 "returning to sender" stays `exception` (the parcel still moves; `returned` is
#   final for an order), Exception_011 "returned to sender" is `returned`, Exception_013 "shipment
#   lost" is `lost`; the other Exception subtags (customs, refused, damaged, address...) `exception`.
class TrackingStatus(Enum):
    in_transit = [
        "Pending",
        "Pending_001",  # no information yet
        "Pending_002",  # courier not yet detected / ready to be shipped
        "Pending_003",  # label created, awaiting courier scan
        "Pending_004",
        "Pending_005",
        "Pending_006",
        "InfoReceived",
        "InfoReceived_001",  # the courier received the shipment information
        "InTransit",
        "InTransit_001",  # in transit
        "InTransit_002",  # acceptance scan
        "InTransit_003",  # arrival scan
        "InTransit_004",  # arrived at the destination country
        "InTransit_005",  # customs clearance completed
        "InTransit_006",  # customs clearance started
        "InTransit_007",  # departure scan
        "InTransit_008",  # problem resolved
        "InTransit_009",  # forwarded to a different delivery address
    ]
    out_for_delivery = [
        "OutForDelivery",
        "OutForDelivery_001",  # out for delivery
        "OutForDelivery_003",  # customer contacted
        "OutForDelivery_004",  # delivery appointment scheduled
    ]
    delivery_failed = [
        "AttemptFail",
        "AttemptFail_001",  # failed attempt
        "AttemptFail_002",  # addressee not available
        "AttemptFail_003",  # business closed
    ]
    delivered = [
        "Delivered",
        "Delivered_001",  # delivered
        "Delivered_002",  # picked up by the customer
        "Delivered_003",  # signed by the customer
        "Delivered_004",  # delivered and cash collected on delivery
    ]
    available_for_pickup = [
        "AvailableForPickup",
        "AvailableForPickup_001",  # arrived at a pickup point
    ]
    exception = [
        "Exception",
        "Exception_001",  # exception
        "Exception_002",  # customer moved
        "Exception_003",  # customer refused delivery
        "Exception_004",  # delayed (customs clearance)
        "Exception_005",  # delayed (external factors)
        "Exception_006",  # held for payment
        "Exception_007",  # incorrect address
        "Exception_008",  # pickup missed
        "Exception_009",  # rejected by carrier
        "Exception_010",  # returning to sender
        "Exception_012",  # shipment damaged
        "Expired",
        "Expired_001",  # no further updates
    ]
    returned = [
        "Exception_011",  # returned to sender
    ]
    lost = [
        "Exception_013",  # shipment lost
    ]


STATUS_BY_CODE: dict[str, OrderStatus] = {
    code: OrderStatus(member.name) for member in TrackingStatus for code in member.value
}


def canonical_status(tag: str | None, subtag: str | None = None) -> OrderStatus:
    """AfterShip's tag/subtag as a canonical status; unknown codes are `in_transit`, with a warning."""
    if subtag and subtag in STATUS_BY_CODE:
        return STATUS_BY_CODE[subtag]
    family = tag or (subtag.split("_", 1)[0] if subtag else None)
    if family and family in STATUS_BY_CODE:
        if subtag:
            log.warning("aftership: unknown subtag %r of tag %r; using the tag's status", subtag, family)
        return STATUS_BY_CODE[family]
    log.warning("aftership: unknown tag %r (subtag %r); treated as in_transit", tag, subtag)
    return OrderStatus.IN_TRANSIT


# --- The private wire model -------------------------------------------------------------------------
def _moment(value: str | None) -> datetime | None:
    """AfterShip's times: `YYYY-MM-DD`, `YYYY-MM-DDTHH:mm:ss` (courier-local, no zone) or with an
    offset/`Z`. A date is taken as midnight UTC and a time without a zone as UTC: AfterShip does not
    say which zone such couriers mean, and an event must be timezone-aware."""
    if value is None or not (value := value.strip()):
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an ISO 8601 date or time: {value!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Checkpoint(_Wire):
    checkpoint_time: datetime
    tag: str
    subtag: str | None = None
    message: str | None = None
    location: str | None = None
    city: str | None = None
    state: str | None = None
    country_region: str | None = None
    country_region_name: str | None = None

    @field_validator("checkpoint_time", mode="before")
    @classmethod
    def _aware(cls, value: Any) -> Any:
        return _moment(value) if isinstance(value, str) else value

    def where(self) -> str | None:
        if self.location and self.location.strip():
            return self.location.strip()[:200]
        country = self.country_region_name or self.country_region
        parts = [part.strip() for part in (self.city, self.state, country) if part and part.strip()]
        return ", ".join(parts)[:200] or None


class _CourierEstimate(_Wire):
    """`courier_estimated_delivery_date` and `aftership_estimated_delivery_date`."""

    estimated_delivery_date: str | None = None
    estimated_delivery_date_min: str | None = None
    estimated_delivery_date_max: str | None = None

    def when(self) -> datetime | None:  # a range counts by its end: the date we promise "by"
        return _moment(self.estimated_delivery_date) or _moment(self.estimated_delivery_date_max)


class _CustomEstimate(_Wire):
    """`custom_estimated_delivery_date`: `type` is `specific` (`datetime`) or `range` (min/max)."""

    type: str | None = None
    specific: str | None = Field(None, alias="datetime")
    datetime_min: str | None = None
    datetime_max: str | None = None

    def when(self) -> datetime | None:
        return _moment(self.specific) or _moment(self.datetime_max)


class _Tracking(_Wire):
    id: str | None = None
    tracking_number: str
    slug: str | None = None
    tag: str
    subtag: str | None = None
    updated_at: str | None = None
    checkpoints: Annotated[list[_Checkpoint], Field(max_length=1000)] = []
    custom_estimated_delivery_date: _CustomEstimate | None = None
    courier_estimated_delivery_date: _CourierEstimate | None = None
    aftership_estimated_delivery_date: _CourierEstimate | None = None

    def estimated_delivery(self) -> datetime | None:
        """The shop's own estimate first, then the courier's, then AfterShip's prediction."""
        for estimate in (
            self.custom_estimated_delivery_date,
            self.courier_estimated_delivery_date,
            self.aftership_estimated_delivery_date,
        ):
            if estimate is not None and (when := estimate.when()) is not None:
                return when
        return None


class _Meta(_Wire):
    code: int
    message: str | None = None
    type: str | None = None


class _TrackingList(_Wire):
    trackings: Annotated[list[_Tracking], Field(max_length=100)]


class _ListEnvelope(_Wire):
    meta: _Meta
    data: _TrackingList


class _OneEnvelope(_Wire):
    meta: _Meta
    data: _Tracking


class _Webhook(_Wire):
    event: str | None = None
    event_id: str | None = None
    ts: int | None = None
    msg: dict[str, Any] | None = None


# Webhook events whose `msg` is a tracking we act on; others (and pings) yield no snapshot.
_TRACKING_EVENTS = frozenset({"tracking_update", "edd_revise"})


def snapshot_from_tracking(tracking: Any) -> TrackingSnapshot:
    """A canonical snapshot of one validated AfterShip tracking (exposed for the tests)."""
    wire = tracking if isinstance(tracking, _Tracking) else _Tracking.model_validate(tracking)
    seen: dict[str, TrackingEvent] = {}
    for checkpoint in wire.checkpoints:
        event = TrackingEvent(
            at=checkpoint.checkpoint_time,
            status=canonical_status(checkpoint.tag, checkpoint.subtag),
            message=(checkpoint.message or checkpoint.subtag or checkpoint.tag).strip()[:500],
            location=checkpoint.where(),
            code=(checkpoint.subtag or checkpoint.tag)[:64],
        )
        seen.setdefault(event.key, event)
    events = sorted(seen.values(), key=lambda event: event.at)
    status = canonical_status(wire.tag, wire.subtag)
    # Delivered wins over a later lower-status scan (a stray transit or exception scan after the
    # doorstep); a return after delivery is real and stays.
    if (
        status != OrderStatus.DELIVERED
        and status in TRACKED
        and any(event.status == OrderStatus.DELIVERED for event in events)
    ):
        status = OrderStatus.DELIVERED
    return TrackingSnapshot(
        carrier=NAME,
        tracking_number=wire.tracking_number,
        status=status,
        events=events,
        estimated_delivery=wire.estimated_delivery(),
    )


def _invalid(what: str, exc: ValidationError) -> CarrierPayloadError:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return CarrierPayloadError(
        f"aftership sent an invalid {what}: {exc.error_count()} error(s), first at {where}: {first['msg']}"
    )


class AfterShipCarrier:
    """`CarrierAdapter` for AfterShip; one pooled client with explicit timeouts for all polls."""

    name = NAME
    display_name = "AfterShip"

    def __init__(
        self, base_url: str, api_key: str, webhook_secret: str | None, timeout: float = 10.0
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._webhook_secret = webhook_secret
        self._client = httpx.AsyncClient(
            base_url=self._base_url,
            timeout=httpx.Timeout(timeout),
            headers={
                API_KEY_HEADER: api_key,
                "Accept": "application/json",
                "User-Agent": "ordertrack",
            },
        )

    async def track(self, tracking_number: str) -> TrackingSnapshot:
        response = await self._call("GET", "/trackings", params={"tracking_numbers": tracking_number})
        self._raise_for(response, tracking_number)
        try:
            trackings = _ListEnvelope.model_validate_json(response.content).data.trackings
        except ValidationError as exc:
            raise _invalid(f"tracking list for {tracking_number!r}", exc) from exc
        matches = [t for t in trackings if t.tracking_number == tracking_number]
        if not matches:
            return await self._create(tracking_number)
        if len(matches) > 1:
            log.warning(
                "aftership: %d trackings for %r (slugs %s); using the latest updated",
                len(matches),
                tracking_number,
                [t.slug for t in matches],
            )
        chosen = max(matches, key=lambda t: _moment(t.updated_at) or datetime.min.replace(tzinfo=UTC))
        return self._snapshot(chosen, tracking_number)

    async def _create(self, tracking_number: str) -> TrackingSnapshot:
        """Register an untracked number; AfterShip detects the courier and starts fetching scans."""
        response = await self._call("POST", "/trackings", json={"tracking_number": tracking_number})
        if response.status_code >= 400 and response.status_code not in (401, 403, 408, 429):
            code = self._meta(response)
            if code in _NOT_TRACKABLE_CODES:
                raise TrackingNotFound(
                    f"aftership cannot track {tracking_number!r} (meta.code {code}): {response.text[:200]}"
                )
            if code == _ALREADY_EXISTS_CODE:  # created by a concurrent poll since our GET
                raise CarrierUnavailable(f"aftership tracking {tracking_number!r} was created meanwhile")
        self._raise_for(response, tracking_number)
        try:
            tracking = _OneEnvelope.model_validate_json(response.content).data
        except ValidationError as exc:
            raise _invalid(f"created tracking for {tracking_number!r}", exc) from exc
        return self._snapshot(tracking, tracking_number)

    def _snapshot(self, tracking: _Tracking, tracking_number: str) -> TrackingSnapshot:
        if tracking.tracking_number != tracking_number:
            raise CarrierPayloadError(
                f"asked aftership for {tracking_number!r}, got {tracking.tracking_number!r}"
            )
        try:
            return snapshot_from_tracking(tracking)
        except ValidationError as exc:
            raise _invalid(f"tracking {tracking_number!r}", exc) from exc

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with unavailable_when_unreachable(self.name, self._base_url, self._timeout):
            return await self._client.request(method, path, **kwargs)

    @staticmethod
    def _meta(response: httpx.Response) -> int | None:
        try:
            return _Meta.model_validate(response.json().get("meta")).code
        except (ValueError, AttributeError, ValidationError):
            return None

    @staticmethod
    def _raise_for(response: httpx.Response, tracking_number: str) -> None:
        retry_after = response.headers.get("Retry-After")
        if retry_after is None and (reset := response.headers.get("X-RateLimit-Reset", "")).isdigit():
            # AfterShip documents X-RateLimit-Reset (unix time the window resets) on 429s.
            wait = int(reset) - int(datetime.now(UTC).timestamp())
            retry_after = str(max(wait, 0))
        error = error_for_status(
            NAME, response.status_code, f"{tracking_number}: {response.text[:200]}", retry_after
        )
        if error is not None:
            raise error

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[TrackingSnapshot]:
        """Verify `aftership-hmac-sha256` over the raw body, then map `msg` (one tracking) of a
        `tracking_update` or `edd_revise` event; other events give an empty list."""
        self.verify_signature(headers, body)
        try:
            webhook = _Webhook.model_validate_json(body)
        except ValidationError as exc:
            raise _invalid("webhook body", exc) from exc
        if webhook.event not in _TRACKING_EVENTS or webhook.msg is None:
            log.info("aftership: ignoring webhook event %r (%s)", webhook.event, webhook.event_id)
            return []
        try:
            return [snapshot_from_tracking(webhook.msg)]
        except ValidationError as exc:
            raise _invalid(f"tracking in webhook {webhook.event_id or ''}", exc) from exc

    def verify_signature(self, headers: Mapping[str, str], body: bytes) -> None:
        if not self._webhook_secret:
            raise WebhookAuthError("aftership webhook secret is not configured; refusing webhooks")
        lowered = {key.lower(): value for key, value in headers.items()}
        given = lowered.get(SIGNATURE_HEADER)
        if not given:
            raise WebhookAuthError(f"aftership webhook without the {SIGNATURE_HEADER} header")
        expected = base64.b64encode(
            hmac.new(self._webhook_secret.encode(), body, hashlib.sha256).digest()
        ).decode()
        if not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise WebhookAuthError("aftership webhook signature does not match the body")

    def tracking_url(self, tracking_number: str) -> str | None:
        return None  # AfterShip's branded pages are per shop (configured there), not per number

    async def aclose(self) -> None:
        await self._client.aclose()


__all__ = [
    "STATUS_BY_CODE",
    "AfterShipCarrier",
    "TrackingStatus",
    "WebhookAuthError",
    "canonical_status",
    "snapshot_from_tracking",
]
