"""The `deliver_shop_event` activity: one signed POST of one order event to the shop's webhook.

Each attempt signs anew (Standard Webhooks: `webhook-id` is the event id, the same on every retry;
`webhook-timestamp` is this attempt's time). Temporal's retry policy does the waiting:

- 2xx: delivered.
- 4xx other than 408 and 429: the receiver rejects the event; retrying cannot help (non-retryable).
- 429: retried, not before its `Retry-After` when it gives one.
- 408, 5xx, 3xx, timeouts and connection errors: retried with the workflow's backoff.

Which orders send events at all is decided when each order starts (`OrderInput.shop_webhooks`);
a worker with no URL configured logs the event and returns, so such orders are not held up.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from ordertrack.carriers.base import parse_retry_after
from ordertrack.counters import SHOP_WEBHOOK_DELIVERIES, activity_meter
from ordertrack.domain.records import ShopEvent
from ordertrack.names import DELIVER_SHOP_EVENT, SHOP_WEBHOOK_REJECTED_ERROR
from ordertrack.webhooks import secret_key, signature_headers

WEBHOOK_TIMEOUT = 10.0  # seconds, for the whole request


def _user_agent() -> str:
    try:
        return f"ordertrack/{version('ordertrack')}"
    except PackageNotFoundError:
        return "ordertrack"


USER_AGENT = _user_agent()


class ShopEventDelivery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str
    status: Literal["delivered", "skipped"]
    status_code: int | None = None


class ShopWebhookActivities:
    """Delivers to `url`, signed with `secret` (`whsec_<base64>` or a raw string), over one shared client.

    Without a URL there is nothing to deliver to: events are logged and dropped. A URL without a
    secret is a configuration error (unsigned events could be forged), raised here, at worker start.
    """

    def __init__(
        self,
        url: str | None,
        secret: str | None,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = WEBHOOK_TIMEOUT,
    ) -> None:
        self._url = url or None
        self._secret = secret
        self._http: httpx.AsyncClient | None = None
        self._owns_http = False
        if self._url is None:
            return
        if not secret:
            raise ValueError(
                "ORDERTRACK_SHOP_WEBHOOK_SECRET is required when ORDERTRACK_SHOP_WEBHOOK_URL is set"
            )
        secret_key(secret)  # fail at start on a malformed whsec_ secret, not on the first event
        if http is None:
            http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
            self._owns_http = True
        self._http = http

    async def aclose(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()

    @activity.defn(name=DELIVER_SHOP_EVENT)
    async def deliver_shop_event(self, event: ShopEvent) -> ShopEventDelivery:
        log = activity.logger
        what = f"{event.event_id} ({event.status.value}, seq {event.seq})"
        if self._url is None or self._http is None or not self._secret:
            log.info("shop webhook not configured, event %s not sent", what)
            return ShopEventDelivery(event_id=event.event_id, status="skipped")

        body = event.model_dump_json().encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **signature_headers(self._secret, event.event_id, body),
        }
        try:
            response = await self._http.post(self._url, content=body, headers=headers)
        except httpx.TransportError as exc:  # connect errors and timeouts: the receiver may be back soon
            SHOP_WEBHOOK_DELIVERIES.add(activity_meter(), outcome="failed")
            log.warning("shop webhook unreachable for %s: %s", what, exc.__class__.__name__)
            raise ApplicationError(
                f"shop webhook unreachable for {what}: {exc.__class__.__name__}: {exc}",
                type="ShopWebhookUnavailable",
            ) from exc

        code = response.status_code
        outcome = "delivered" if 200 <= code < 300 else "rejected" if _rejects(code) else "failed"
        SHOP_WEBHOOK_DELIVERIES.add(activity_meter(), outcome=outcome)
        if 200 <= code < 300:
            log.info("shop webhook accepted %s: HTTP %s", what, code)
            return ShopEventDelivery(event_id=event.event_id, status="delivered", status_code=code)
        detail = f"shop webhook answered HTTP {code} for {what}: {response.text[:200]}"
        if code == 429:
            delay = parse_retry_after(response.headers.get("Retry-After"))
            log.warning("shop webhook rate-limited %s, retry after %s", what, delay)
            raise ApplicationError(detail, type="ShopWebhookRateLimited", next_retry_delay=delay)
        if _rejects(code):
            log.warning("shop webhook rejected %s: HTTP %s", what, code)
            raise ApplicationError(detail, type=SHOP_WEBHOOK_REJECTED_ERROR, non_retryable=True)
        log.warning("shop webhook failed for %s: HTTP %s, will retry", what, code)
        raise ApplicationError(detail, type="ShopWebhookUnavailable")


def _rejects(code: int) -> bool:
    """The receiver refuses the event itself: retrying cannot help."""
    return 400 <= code < 500 and code not in (408, 429)
