"""The customer's tracking page (`GET /t/{token}`) and the lost-link lookup (`GET`/`POST /t`).

A tracking link is a capability URL: whoever holds it sees the order. So every response here
carries headers that keep the link out of referrers, search engines, shared caches and frames; a
miss does the same work as a hit, so timing does not tell a near-valid token from a wrong one; and
the lookup by order number and email is rate limited. Pages read only the read model, never
Temporal, so the ~60 visits per order cost the workflows nothing.

The tracking page is rendered once per change of the order and kept (`ordertrack.web.readcache`);
a view costs one indexed lookup (`Store.tracking_stamp`) and sends kept bytes, with an ETag, so a
browser revisiting an unchanged order gets a 304 without a body. It is a plain ASGI app on the
app's fast lane (`App.add_fast_lane`), past the framework's middleware and dependency injection.

Every word is a gettext message, here (`N_`) or in `templates/page/`, translated from the catalogs
the emails use; `make messages` keeps them in step.
"""

import contextlib
import hashlib
import hmac
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from ordertrack.carriers.registry import CarrierRegistry
from ordertrack.contact import SupportContact
from ordertrack.domain.progress import DelayKind
from ordertrack.domain.statuses import MAIN_LINE, OrderStatus
from ordertrack.domain.timeline import EntryKind, TimelineEntry
from ordertrack.locales import negotiate
from ordertrack.locales.translations import N_
from ordertrack.store.repository import Store, StoredOrder
from ordertrack.store.stamps import Stamp
from ordertrack.templating import environment
from ordertrack.web.deps import Resources, get_store
from ordertrack.web.locales import PageLocale
from ordertrack.web.readcache import Headers, Rendered

# Sent with every page, hits and misses alike.
PAGE_HEADERS: Mapping[str, str] = {
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}
# The tracking page itself may be kept by the customer's browser, never by a shared cache, and is
# revalidated on every visit (its ETag): a revisit of an unchanged order is a 304 without a body.
TRACKING_PAGE_HEADERS: Mapping[str, str] = {**PAGE_HEADERS, "Cache-Control": "private, no-cache"}
TRACKING_PATH = "/t/{token:path}"
MAX_TOKEN_LENGTH = 128  # issued tokens are 32 characters; longer ones are not sent to the database
MAX_FORM_BYTES = 4096
# Lookups of these never match (tokens and order ids are never empty), so a miss or an absurd
# input still costs the same queries as a hit.
_NO_MATCH = ""
_DECOY_EMAIL = "nobody@invalid.example"

# The step bar runs up to delivered; `completed` is delivered plus the review request.
STEPS: tuple[OrderStatus, ...] = MAIN_LINE[: MAIN_LINE.index(OrderStatus.DELIVERED) + 1]
# Side states: shown as a banner; the step bar stays at the last main-line step reached.
SIDE_STATES = frozenset(OrderStatus) - frozenset(MAIN_LINE)
HALTED = frozenset({OrderStatus.RETURNED, OrderStatus.LOST, OrderStatus.CANCELLED})
# What the customer sees of the timeline; operator, address, link and carrier-error entries are for ops.
SHOWN_KINDS = frozenset({EntryKind.STATUS, EntryKind.SCAN, EntryKind.DELAY, EntryKind.ESTIMATE})
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

# The customer's words for what the page shows by code: gettext msgids, translated where shown.
# `completed` is delivered plus the review request, so it reads as delivered.
STATUS_LABELS: Mapping[OrderStatus, str] = {
    OrderStatus.RECEIVED: N_("Order received"),
    OrderStatus.CONFIRMED: N_("Confirmed"),
    OrderStatus.PICKING: N_("Being prepared"),
    OrderStatus.PACKED: N_("Packed"),
    OrderStatus.SHIPPED: N_("Shipped"),
    OrderStatus.IN_TRANSIT: N_("In transit"),
    OrderStatus.OUT_FOR_DELIVERY: N_("Out for delivery"),
    OrderStatus.DELIVERED: N_("Delivered"),
    OrderStatus.COMPLETED: N_("Delivered"),
    OrderStatus.AVAILABLE_FOR_PICKUP: N_("Ready for pickup"),
    OrderStatus.DELIVERY_FAILED: N_("Delivery attempt failed"),
    OrderStatus.EXCEPTION: N_("Delivery problem"),
    OrderStatus.RETURNED: N_("Returned to sender"),
    OrderStatus.LOST: N_("Lost in transit"),
    OrderStatus.CANCELLED: N_("Cancelled"),
}
SIDE_TEXTS: Mapping[OrderStatus, str] = {
    OrderStatus.EXCEPTION: N_("The carrier reported a problem with your parcel. It may still be delivered."),
    OrderStatus.DELIVERY_FAILED: N_("The carrier could not deliver your parcel. They may try again."),
    OrderStatus.AVAILABLE_FOR_PICKUP: N_("Your parcel is waiting for you at a pickup point."),
    OrderStatus.LOST: N_("The carrier has not seen your parcel for a while. We are looking into it."),
    OrderStatus.RETURNED: N_("Your parcel was returned to the sender."),
    OrderStatus.CANCELLED: N_("This order was cancelled."),
}
DELAY_TEXTS: Mapping[str, str] = {
    DelayKind.SHIP_BY: N_("It was not handed to the carrier on time."),
    DelayKind.ESTIMATE_MOVED: N_("The carrier moved the estimated delivery."),
    DelayKind.ESTIMATE_MISSED: N_("The estimated delivery date has passed."),
}

StoreDep = Annotated[Store, Depends(get_store)]

if TYPE_CHECKING:
    from ordertrack.web.app import App


@dataclass(frozen=True)
class RateLimit:
    """At most `attempts` lookups per client IP within `window_seconds`."""

    attempts: int = 5
    window_seconds: float = 600.0


LOOKUP_LIMIT = RateLimit()


class LookupLimiter:
    """Counts lookups per client over a sliding window in the read model's database, so the limit
    holds across every `serve` process and restarts. The client's address is kept as a hash."""

    def __init__(
        self, limit: RateLimit, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.limit = limit
        self._clock = clock

    async def attempt(self, store: Store, client: str) -> float | None:
        """Record an attempt; None when allowed, else the seconds until the next one is."""
        key = hashlib.sha256(client.encode()).hexdigest()
        window = timedelta(seconds=self.limit.window_seconds)
        return await store.lookup_attempt(key, window, self.limit.attempts, self._clock())


# -- view model --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    label: str
    state: str  # "done", "current" or "todo"


@dataclass(frozen=True)
class Line:
    when: str
    when_iso: str
    title: str
    detail: str | None
    location: str | None


@dataclass(frozen=True)
class ItemLine:
    name: str
    quantity: int


def _reached(order: StoredOrder, timeline: list[TimelineEntry]) -> int:
    """Index in STEPS of the furthest step the order stands on (the last main-line status seen)."""
    if order.status == OrderStatus.COMPLETED:
        return len(STEPS) - 1
    if order.status in STEPS:
        return STEPS.index(order.status)
    for entry in sorted(timeline, key=lambda e: e.seq, reverse=True):
        if entry.status in STEPS:
            return STEPS.index(entry.status)
    return 0


def _steps(order: StoredOrder, timeline: list[TimelineEntry], loc: PageLocale) -> list[Step]:
    reached = _reached(order, timeline)
    finished = order.status in (OrderStatus.DELIVERED, OrderStatus.COMPLETED) or order.status in SIDE_STATES
    steps = []
    for index, status in enumerate(STEPS):
        if index < reached or (index == reached and finished):
            state = "done"
        elif index == reached:
            state = "current"
        else:
            state = "todo"
        steps.append(Step(loc.gettext(STATUS_LABELS[status]), state))
    return steps


def _delay_text(kind: str | None, reason: str | None, loc: PageLocale) -> str | None:
    """Why the order is late in the customer's words, from the delay's kind (a `DelayKind`)."""
    text = DELAY_TEXTS.get(kind or "")
    return loc.gettext(text) if text else reason  # an unknown kind: the English reason beats none


def _line(entry: TimelineEntry, loc: PageLocale) -> Line | None:
    if entry.kind not in SHOWN_KINDS:
        return None
    detail: str | None = None
    if entry.kind == EntryKind.STATUS:
        title = loc.gettext(STATUS_LABELS[entry.status])
    elif entry.kind == EntryKind.SCAN:
        title = entry.message  # the carrier's own words
    elif entry.kind == EntryKind.DELAY:
        title, detail = loc.gettext("Delay"), _delay_text(entry.code, entry.message, loc)
    else:
        title = loc.gettext("Estimated delivery updated")
        found = _ISO_DATE.search(entry.message)
        if found:
            detail = loc.date(datetime.fromisoformat(found.group()).replace(tzinfo=entry.at.tzinfo))
    return Line(loc.moment(entry.at), entry.at.isoformat(), title, detail, entry.location)


def _history(timeline: Iterable[TimelineEntry], loc: PageLocale) -> list[Line]:
    newest_first = sorted(timeline, key=lambda e: (e.at, e.seq), reverse=True)
    return [line for line in (_line(entry, loc) for entry in newest_first) if line is not None]


def _tone(order: StoredOrder) -> str:
    if order.status in (OrderStatus.DELIVERED, OrderStatus.COMPLETED):
        return "good"
    if order.status in (OrderStatus.EXCEPTION, OrderStatus.LOST, OrderStatus.DELIVERY_FAILED):
        return "bad"
    if order.status in HALTED:
        return "muted"
    return "warn" if order.delayed else "info"


def _carrier_url(carriers: CarrierRegistry, order: StoredOrder) -> str | None:
    if not (order.carrier and order.tracking_number):
        return None
    url = carriers.carrier_url(order.carrier, order.tracking_number)
    return url if url and url.startswith(("https://", "http://")) else None


def _delivered_at(order: StoredOrder, timeline: list[TimelineEntry]) -> datetime | None:
    if order.status not in (OrderStatus.DELIVERED, OrderStatus.COMPLETED):
        return None
    delivered = [e.at for e in timeline if e.kind == EntryKind.STATUS and e.status == OrderStatus.DELIVERED]
    return max(delivered, default=order.status_since)


def tracking_context(
    order: StoredOrder,
    timeline: list[TimelineEntry],
    carriers: CarrierRegistry,
    default_zone: str,
    contact: SupportContact,
) -> dict[str, Any]:
    """Everything `page/tracking.html` shows; nothing of the customer's street address, email or
    phone. The carrier by the name customers know it (`Correios`, not `correios`), and whom to ask.

    Times are shown in the order's zone; a row from before the read model kept one is shown in
    `default_zone` (the settings' `DEFAULT_TIME_ZONE`, the workflow's default too).
    """
    loc = PageLocale.for_order(order.locale, order.time_zone or default_zone)
    delivered_at = _delivered_at(order, timeline)
    estimate = order.estimated_delivery if delivered_at is None else None
    side = order.status if order.status in SIDE_STATES else None
    latest = max((e.at for e in timeline), default=order.status_since)
    return {
        "lang": loc.locale,
        "order_id": order.order_id,
        "status_label": loc.gettext(STATUS_LABELS[order.status]),
        "tone": _tone(order),
        "side_text": loc.gettext(SIDE_TEXTS[side]) if side else None,
        "side_status": side.value if side else None,
        "halted": order.status in HALTED,
        "steps": _steps(order, timeline, loc),
        "delayed": order.delayed,
        "delay_text": _delay_text(order.delay_kind, order.delay_reason, loc) if order.delayed else None,
        "new_date": loc.date(estimate) if order.delayed and estimate else None,
        "estimated_delivery": loc.date(estimate) if estimate else None,
        "delivered_on": loc.date(delivered_at) if delivered_at else None,
        "carrier": carriers.display_name(order.carrier) if order.carrier else None,
        "tracking_number": order.tracking_number,
        "carrier_url": _carrier_url(carriers, order),
        "history": _history(timeline, loc),
        "items": [ItemLine(item.name, item.quantity) for item in order.items],
        "total": loc.money(order.total, order.currency),
        "city": order.ship_city,
        "country": order.ship_country,
        "updated": loc.moment(latest),
        "zone_label": loc.zone_label,
        "contact": contact,
    }


# -- rendering ---------------------------------------------------------------------------------


def render(template: str, context: Mapping[str, Any]) -> str:
    """A page in the language its context names (`lang`, a supported locale), with the emails' catalogs."""
    return environment(context["lang"]).get_template(f"page/{template}").render(context)


def page(body: str, status_code: int = 200, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(body, status_code, headers={**PAGE_HEADERS, **(headers or {})})


def _form(
    accept_language: str | None,
    template: str,
    *,
    error: str | None = None,
    wait_minutes: int = 0,
    order_id: str = "",
    email: str = "",
) -> str:
    """The lookup form (alone, or under the not-found message) in the language the browser asks for.

    `error`: `not_found` (one message for any mismatch) or `too_many` (rate limited, `wait_minutes`).
    """
    return render(
        template,
        {
            "lang": negotiate(accept_language),
            "error": error,
            "wait_minutes": wait_minutes,
            "order_id": order_id,
            "email": email,
        },
    )


# -- lookup helpers ----------------------------------------------------------------------------


async def read_form(request: Request) -> dict[str, str]:
    """A small urlencoded body as {field: first value}; anything else reads as empty.

    Parsed here rather than with FastAPI's `Form`, which needs python-multipart for two fields.
    """
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    except ValueError:
        return {}
    return {name: values[0] for name, values in fields.items() if values}


def normalise_email(value: str) -> str:
    """Lowercase with the domain in IDNA form, as the order's email was stored."""
    local, at, domain = value.strip().rpartition("@")
    if not at:
        return value.strip().lower()
    with contextlib.suppress(UnicodeError):  # not IDNA-encodable: compared as typed, and so not equal
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}".lower()


def _client_key(request: Request) -> str:
    """The peer address; behind a proxy run uvicorn with `--proxy-headers` so this is the client."""
    return request.client.host if request.client else "unknown"


# -- the tracking page ---------------------------------------------------------------------------

_HTML = (b"content-type", b"text/html; charset=utf-8")


def _raw(headers: Mapping[str, str]) -> Headers:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


_TRACKING_HEADERS = [_HTML, *_raw(TRACKING_PAGE_HEADERS)]
_NOT_FOUND_HEADERS = [_HTML, *_raw(PAGE_HEADERS)]
_NOT_MODIFIED_DROPS = frozenset({b"content-type", b"content-length"})
_TOKEN_STARTS = TRACKING_PATH.index("{")


class TrackingPage:
    """`GET /t/{token}`, as a plain ASGI app.

    Every request makes one indexed lookup by token (`Store.tracking_stamp`), then:
    - found: the page kept for this token and stamp (rendered on the first view of each version
      of the order, from the order and its timeline), or a 304 when the browser has it;
    - not found: the not-found page in the browser's language, rendered once per language.

    Why this keeps a hit and a miss alike to whoever probes tokens: both make the same single
    lookup and one dictionary lookup, then send bytes already made, so a warm hit costs what a
    miss does (before the cache a hit cost more: a second query and a render). The one costlier
    answer, a page's first view after a change, can only be caused and seen by someone holding the
    valid token, who knows it exists. The cache is consulted only with the stamp the lookup found,
    so nothing kept is served for a token the database no longer knows (a rotated link 404s at
    once), and an unknown token can never reach it; a miss drops whatever the token had kept, so a
    rotated token's page does not linger in memory.
    """

    def __init__(self) -> None:
        self._not_found: dict[str, Rendered] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        res: Resources = scope["app"].state.resources
        token = scope["path"][_TOKEN_STARTS:]
        accept_language = if_none_match = None
        for name, value in scope["headers"]:
            if name == b"accept-language":
                accept_language = value
            elif name == b"if-none-match":
                if_none_match = value
        stamp = await res.store.tracking_stamp(token if len(token) <= MAX_TOKEN_LENGTH else _NO_MATCH)
        found = None if stamp is None else res.cache.get(("page", token), stamp)
        if found is None and stamp is not None:
            found = await self._render(res, token, stamp)
        if found is None:
            res.cache.discard(("page", token))
            status, answer = 404, self._not_found_page(accept_language)
            headers, body = answer.headers, answer.body
        elif found.matches(if_none_match):
            status, headers, body = 304, [h for h in found.headers if h[0] not in _NOT_MODIFIED_DROPS], b""
        else:
            status, headers, body = 200, found.headers, found.body
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _render(self, res: Resources, token: str, stamp: Stamp) -> Rendered | None:
        """The page for this version of the order, kept under the stamp the lookup found (a newer
        order read here is kept under an older stamp at worst, which only renders it once more)."""
        order, timeline = await res.store.get_tracking(token)
        if order is None:  # the link was rotated since the lookup
            return None
        settings = res.settings
        context = tracking_context(
            order, timeline, res.carriers, settings.default_time_zone, SupportContact.of(settings)
        )
        rendered = Rendered.of(render("tracking.html", context).encode(), _TRACKING_HEADERS, etag=True)
        res.cache.put(("page", token), stamp, rendered)
        return rendered

    def _not_found_page(self, accept_language: bytes | None) -> Rendered:
        lang = negotiate(accept_language.decode("latin-1") if accept_language else None)
        found = self._not_found.get(lang)
        if found is None:
            body = _form(lang, "not_found.html").encode()
            found = self._not_found[lang] = Rendered.of(body, _NOT_FOUND_HEADERS)
        return found


# -- routes ------------------------------------------------------------------------------------


def _router(limiter: LookupLimiter) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/t", response_class=HTMLResponse)
    async def lookup_form(request: Request) -> HTMLResponse:
        return page(_form(request.headers.get("accept-language"), "lookup.html"))

    @router.post("/t", response_class=HTMLResponse)
    async def lookup(request: Request, store: StoreDep) -> Response:
        """Order number + email -> 303 to the tracking page; one generic message for any mismatch."""
        languages = request.headers.get("accept-language")
        wait = await limiter.attempt(store, _client_key(request))
        if wait is not None:
            minutes = max(1, math.ceil(wait / 60))
            body = _form(languages, "lookup.html", error="too_many", wait_minutes=minutes)
            return page(body, 429, {"Retry-After": str(math.ceil(wait))})
        form = await read_form(request)
        order_id = form.get("order_id", "").strip().lstrip("#").strip()
        email = form.get("email", "")
        order = await store.get_order(order_id if 0 < len(order_id) <= 64 else _NO_MATCH)
        expected = normalise_email(order.customer_email if order else _DECOY_EMAIL)
        matches = hmac.compare_digest(expected.encode(), normalise_email(email).encode())
        if order is not None and matches:
            target = f"/t/{quote(order.tracking_token, safe='')}"
            return RedirectResponse(target, status_code=303, headers=dict(PAGE_HEADERS))
        body = _form(languages, "lookup.html", error="not_found", order_id=order_id[:64], email=email[:254])
        return page(body, 400)

    return router


def install(app: "App", *, lookup_limit: RateLimit = LOOKUP_LIMIT) -> None:
    """Add the tracking page and the lookup form, rate limited per client over the read model."""
    app.add_fast_lane(TRACKING_PATH, TrackingPage())
    app.include_router(_router(LookupLimiter(lookup_limit)))
