"""The HTTP API for shop backends and operators (`/api/...`), `/healthz` and `/metrics`.

A thin layer over `ordertrack.orders`, so the API, the CLI and the Python client behave the same:
starts and updates go to Temporal, reads come from the read model only. Request bodies are
validated strictly (JSON types are not coerced; money is a decimal string), errors have one
structured shape (`ordertrack.web.errors`), and `ApiMiddleware` gives every request an id, a size
limit, a catch-all that never leaks a stack trace, and its line in the HTTP metrics.
"""

import asyncio
import json
import logging
import re
import secrets
import time
import types
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from fastapi import APIRouter, Body, Depends, FastAPI, Path, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

from ordertrack import orders
from ordertrack.domain.messages import (
    AddressChangeRequest,
    CancelRequest,
    CorrectionRequest,
    FulfillmentUpdate,
    Reason,
)
from ordertrack.domain.models import Address, Order
from ordertrack.domain.statuses import OrderStatus
from ordertrack.domain.timeline import TimelineEntry
from ordertrack.domain.view import OrderView
from ordertrack.settings import Settings
from ordertrack.store.repository import NotificationRow
from ordertrack.tracking_link import tracking_url
from ordertrack.web import errors
from ordertrack.web.auth import OperatorCaller, ShopCaller
from ordertrack.web.deps import Resources, resources
from ordertrack.web.errors import ApiError, FieldError
from ordertrack.web.metrics import UNMATCHED_ROUTE, HttpMetrics
from ordertrack.web.temporal import get_temporal, outage_as_503

log = logging.getLogger("ordertrack.web.api")

T = TypeVar("T")

MAX_BODY_BYTES = 64 * 1024
# How long a request waits for the order's workflow (an update's answer, a retried start's query).
WORKFLOW_TIMEOUT = 30.0
ORDER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"  # as `ordertrack.domain.models.OrderId`
MONEY_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,2})?$"  # documented; validation is the domain's
_DECIMAL_STRING = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")

# The contract's sample order: the example in /docs (and the fuzzer's first, valid, case).
SAMPLE_ORDER: dict[str, Any] = {
    "order_id": "1001",
    "placed_at": "2026-11-20T14:03:00Z",
    "customer": {
        "name": "Ana Souza",
        "email": "ana@example.com",
        "phone": "+5511999990000",
        "locale": "pt-BR",
        "time_zone": "America/Sao_Paulo",
    },
    "shipping_address": {
        "name": "Ana Souza",
        "line1": "Rua Augusta 1500",
        "line2": "apto 12",
        "city": "São Paulo",
        "region": "SP",
        "postal_code": "01304-001",
        "country": "BR",
    },
    "items": [{"sku": "TSHIRT-M", "name": "T-shirt M", "quantity": 2, "unit_price": "39.90"}],
    "currency": "BRL",
    "total": "79.80",
    "payment": {"status": "paid", "method": "pix"},
    "notify": {"email": True, "sms": False},
}


def _example(summary: str, value: dict[str, Any]) -> Any:
    return Body(openapi_examples={"example": {"summary": summary, "value": value}})


OrderIdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=ORDER_ID_PATTERN,
        description="The shop's order id, as in the Order JSON",
        examples=["1001"],
    ),
]


# -- request and response bodies --------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _OperatorChange(_Body):
    """An operator's change: why, and whether the customer gets the message it deserves."""

    reason: Reason
    notify_customer: bool = True


class StatusCorrection(_OperatorChange):
    """Set the status by hand (operators); audited with the key's name and the reason."""

    status: OrderStatus


class Cancellation(_OperatorChange):
    """Cancel the order (operators); only before it is shipped."""


class ShippingAddressChange(_OperatorChange):
    """Fix the shipping address (operators); only before the order is shipped."""

    address: Address


class TrackingLinkRotation(_Body):
    """Replace the customer's tracking link (operators); the old link stops working."""

    reason: Reason


class StartedOrderOut(BaseModel):
    order_id: str
    workflow_id: str
    tracking_url: str


class OrderStatusOut(BaseModel):
    """The order's view: what an update answers, and the core of `GET /api/orders/{order_id}`."""

    order_id: str
    status: OrderStatus
    status_since: AwareDatetime
    delayed: bool
    delay_reason: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    carrier_tracking_url: str | None = None
    estimated_delivery: AwareDatetime | None = None
    tracking_url: str
    version: int
    timeline: list[TimelineEntry]


class ItemOut(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price: Decimal


class OrderOut(OrderStatusOut):
    """The order as the read model has it (no customer contact details, no full address)."""

    placed_at: AwareDatetime
    items: list[ItemOut]
    currency: str
    total: Decimal
    shipping_city: str
    shipping_country: str
    updated_at: AwareDatetime


class NotificationLog(BaseModel):
    order_id: str
    notifications: list[NotificationRow]


class Health(BaseModel):
    status: str


# -- strict JSON bodies -----------------------------------------------------------------------


class _JsonError(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _JsonError(f"duplicate key {key!r}")
        found[key] = value
    return found


def _no_constants(name: str) -> Any:
    raise _JsonError(f"{name} is not JSON")


def _unwrap(annotation: Any) -> list[Any]:
    """The types an annotation may hold: `Annotated[X, ...] | None` -> [X, NoneType]."""
    if get_origin(annotation) is Annotated:
        return _unwrap(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return [found for arg in get_args(annotation) for found in _unwrap(arg)]
    return [annotation]


def decimal_string_errors(
    model: type[BaseModel], data: Any, loc: tuple[int | str, ...] = ()
) -> list[FieldError]:
    """Money must arrive as a JSON string (`"39.90"`): a JSON number would be a binary float."""
    if not isinstance(data, dict):
        return []
    found: list[FieldError] = []
    for name, info in model.model_fields.items():
        if name in data:
            found += _value_decimal_errors(info.annotation, data[name], (*loc, name))
    return found


def _value_decimal_errors(annotation: Any, value: Any, loc: tuple[int | str, ...]) -> list[FieldError]:
    found: list[FieldError] = []
    for kind in _unwrap(annotation):
        if (
            kind is Decimal
            and value is not None
            and not (isinstance(value, str) and _DECIMAL_STRING.match(value))
        ):
            message = 'must be a decimal string like "39.90", not a JSON number'
            if isinstance(value, str):
                message = 'must be a plain decimal string like "39.90"'
            return [FieldError(field=errors.field_name(loc), message=message, type="decimal_string")]
        if get_origin(kind) in (list, tuple) and isinstance(value, list):
            (element, *_) = get_args(kind) or (Any,)
            for index, item in enumerate(value):
                found += _value_decimal_errors(element, item, (*loc, index))
        elif isinstance(kind, type) and issubclass(kind, BaseModel):
            found += decimal_string_errors(kind, value, loc)
    return found


def strict_body(model: type[BaseModel]) -> Callable[[Request], Awaitable[None]]:
    """A dependency that validates the raw body against `model` in strict JSON mode.

    FastAPI's own validation coerces (`"2"` -> 2); this one refuses, and reports every bad field.
    It is declared after the key's dependency, so an unauthenticated caller learns nothing more.
    """

    async def check(request: Request) -> None:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
            raise ApiError(
                415, "unsupported_media_type", "send the body as JSON, with Content-Type: application/json"
            )
        raw = await request.body()
        try:
            parsed = json.loads(raw, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
        except (ValueError, UnicodeDecodeError) as err:
            reason = str(err) if isinstance(err, _JsonError) else "not valid JSON"
            raise ApiError(
                422,
                "invalid_json",
                f"the body is not strict JSON: {reason}",
                fields=[FieldError(field="body", message=reason, type="json_invalid")],
            ) from None
        found = decimal_string_errors(model, parsed)
        try:
            model.model_validate_json(raw, strict=True)
        except ValidationError as err:
            bad = {error.field for error in found}
            found += [e for e in errors.field_errors(err.errors(include_url=False)) if e.field not in bad]
        if found:
            raise errors.invalid_request([_explain(error) for error in found])

    return check


def _explain(error: FieldError) -> FieldError:
    if error.field == "operator" and error.type == "extra_forbidden":
        return error.model_copy(
            update={"message": "unknown field: the operator is the API key's name, not part of the body"}
        )
    return error


def StrictBody(model: type[BaseModel]) -> Any:
    return Depends(strict_body(model))


# -- Temporal calls ---------------------------------------------------------------------------


async def _call(request: Request, order_id: str, work: Callable[[Client], Awaitable[T]]) -> T:
    """Run one client call, with the client's errors as the API's."""
    client = await get_temporal(request)
    try:
        with outage_as_503(f"for order {order_id}"):
            async with asyncio.timeout(WORKFLOW_TIMEOUT):
                return await work(client)
    except orders.OrderNotFound:
        raise _order_not_found(order_id) from None
    except orders.OrderConflict as err:
        raise ApiError(409, "order_conflict", str(err)) from None
    except orders.RequestRefused as err:
        raise ApiError(409, "request_refused", str(err)) from None
    except TimeoutError:
        raise ApiError(
            504,
            "workflow_timeout",
            f"order {order_id}'s workflow did not answer within {WORKFLOW_TIMEOUT:.0f}s; "
            "the request may still take effect, read the order before retrying",
        ) from None


def _order_not_found(order_id: str) -> ApiError:
    return ApiError(404, "order_not_found", f"order {order_id!r} not found")


def _status_out(view: OrderView, res: Resources) -> OrderStatusOut:
    carrier_url = (
        res.carriers.carrier_url(view.carrier, view.tracking_number)
        if view.carrier and view.tracking_number
        else None
    )
    return OrderStatusOut(
        order_id=view.order_id,
        status=view.status,
        status_since=view.status_since,
        delayed=view.delayed,
        delay_reason=view.delay_reason,
        carrier=view.carrier,
        tracking_number=view.tracking_number,
        carrier_tracking_url=carrier_url,
        estimated_delivery=view.estimated_delivery,
        tracking_url=tracking_url(res.settings.public_url, view.tracking_token),
        version=view.version,
        timeline=list(view.timeline),
    )


# -- routes -----------------------------------------------------------------------------------

router = APIRouter(prefix="/api", tags=["orders"])
_UPDATE_ERRORS = errors.responses(401, 403, 404, 409, 413, 415, 422)


@router.post(
    "/orders",
    status_code=201,
    responses={
        200: {"model": StartedOrderOut, "description": "The same order had been started before"},
        **errors.responses(401, 403, 409, 413, 415, 422),
    },
    summary="Start an order (idempotent on order_id)",
)
async def start_order(
    request: Request,
    response: Response,
    caller: ShopCaller,
    _strict: Annotated[None, StrictBody(Order)],
    order: Annotated[Order, _example("The contract's sample order", SAMPLE_ORDER)],
) -> StartedOrderOut:
    """Start the order's workflow. The same order again answers 200 with the same body; the same
    `order_id` with different contents is a 409."""
    settings: Settings = resources(request).settings

    async def start(client: Client) -> orders.StartedOrder:
        return await orders.start_order(
            client,
            order,
            settings.timing_policy(),
            settings.task_queue,
            shop_webhooks=bool(settings.shop_webhook_url),
        )

    started = await _call(request, order.order_id, start)
    if not started.created:
        response.status_code = 200
    return StartedOrderOut(
        order_id=started.order_id,
        workflow_id=started.workflow_id,
        tracking_url=tracking_url(settings.public_url, started.tracking_token),
    )


@router.get(
    "/orders/{order_id}",
    responses=errors.responses(401, 403, 404, 422),
    summary="Read an order (from the read model)",
)
async def get_order(request: Request, caller: ShopCaller, order_id: OrderIdPath) -> OrderOut:
    """The order's status, delay, tracking and timeline as the read model holds them (no Temporal
    call). A just-started order is 404 until the worker has saved it, usually within a second."""
    res = resources(request)
    stored, timeline = await res.store.get_order_with_timeline(order_id)
    if stored is None:
        raise _order_not_found(order_id)
    carrier_url = (
        res.carriers.carrier_url(stored.carrier, stored.tracking_number)
        if stored.carrier and stored.tracking_number
        else None
    )
    return OrderOut(
        order_id=stored.order_id,
        status=stored.status,
        status_since=stored.status_since,
        delayed=stored.delayed,
        delay_reason=stored.delay_reason,
        carrier=stored.carrier,
        tracking_number=stored.tracking_number,
        carrier_tracking_url=carrier_url,
        estimated_delivery=stored.estimated_delivery,
        tracking_url=tracking_url(res.settings.public_url, stored.tracking_token),
        version=stored.version,
        timeline=timeline,
        placed_at=stored.placed_at,
        items=[ItemOut(**item.model_dump()) for item in stored.items],
        currency=stored.currency,
        total=stored.total,
        shipping_city=stored.ship_city,
        shipping_country=stored.ship_country,
        updated_at=stored.updated_at,
    )


@router.get(
    "/orders/{order_id}/notifications",
    responses=errors.responses(401, 403, 404, 422),
    summary="The order's customer messages and how each went (from the read model)",
)
async def list_notifications(request: Request, caller: ShopCaller, order_id: OrderIdPath) -> NotificationLog:
    """Every email and text the order has claimed, in send order, with its status (`sent`,
    `unconfirmed`, `failed`, `suppressed`, ...), attempts and the provider's last answer."""
    store = resources(request).store
    log_rows = await store.list_notifications(order_id)
    if not log_rows and await store.get_order(order_id) is None:
        raise _order_not_found(order_id)
    return NotificationLog(order_id=order_id, notifications=log_rows)


@router.post(
    "/orders/{order_id}/fulfillment",
    responses=_UPDATE_ERRORS,
    summary="Report warehouse progress (record_fulfillment)",
)
async def record_fulfillment(
    request: Request,
    caller: ShopCaller,
    _strict: Annotated[None, StrictBody(FulfillmentUpdate)],
    order_id: OrderIdPath,
    update: Annotated[
        FulfillmentUpdate,
        _example(
            "Packed, with the label",
            {"event": "packed", "carrier": "simulated", "tracking_number": "SIM-ONTIME-1001"},
        ),
    ],
) -> OrderStatusOut:
    view = await _call(request, order_id, lambda c: orders.record_fulfillment(c, order_id, update))
    return _status_out(view, resources(request))


@router.post(
    "/orders/{order_id}/corrections",
    responses=_UPDATE_ERRORS,
    summary="Correct the status by hand (operators)",
)
async def correct_status(
    request: Request,
    caller: OperatorCaller,
    _strict: Annotated[None, StrictBody(StatusCorrection)],
    order_id: OrderIdPath,
    body: Annotated[
        StatusCorrection,
        _example("Delivered, confirmed by phone", {"status": "delivered", "reason": "customer confirmed"}),
    ],
) -> OrderStatusOut:
    correction = CorrectionRequest(
        status=body.status, reason=body.reason, operator=caller.name, notify_customer=body.notify_customer
    )
    view = await _call(request, order_id, lambda c: orders.correct_status(c, order_id, correction))
    return _status_out(view, resources(request))


@router.post(
    "/orders/{order_id}/cancel",
    responses=_UPDATE_ERRORS,
    summary="Cancel the order before it is shipped (operators)",
)
async def cancel_order(
    request: Request,
    caller: OperatorCaller,
    _strict: Annotated[None, StrictBody(Cancellation)],
    order_id: OrderIdPath,
    body: Annotated[Cancellation, _example("Customer asked", {"reason": "customer asked to cancel"})],
) -> OrderStatusOut:
    cancel = CancelRequest(reason=body.reason, operator=caller.name, notify_customer=body.notify_customer)
    view = await _call(request, order_id, lambda c: orders.cancel_order(c, order_id, cancel))
    return _status_out(view, resources(request))


@router.put(
    "/orders/{order_id}/shipping-address",
    responses=_UPDATE_ERRORS,
    summary="Fix the shipping address before the order is shipped (operators)",
)
async def change_shipping_address(
    request: Request,
    caller: OperatorCaller,
    _strict: Annotated[None, StrictBody(ShippingAddressChange)],
    order_id: OrderIdPath,
    body: Annotated[
        ShippingAddressChange,
        _example(
            "Customer moved",
            {"address": {**SAMPLE_ORDER["shipping_address"], "line2": "apto 14"}, "reason": "customer moved"},
        ),
    ],
) -> OrderStatusOut:
    change = AddressChangeRequest(
        address=body.address, reason=body.reason, operator=caller.name, notify_customer=body.notify_customer
    )
    view = await _call(request, order_id, lambda c: orders.change_shipping_address(c, order_id, change))
    return _status_out(view, resources(request))


@router.post(
    "/orders/{order_id}/tracking-token",
    responses=_UPDATE_ERRORS,
    summary="Replace the customer's tracking link (operators)",
)
async def rotate_tracking_token(
    request: Request,
    caller: OperatorCaller,
    _strict: Annotated[None, StrictBody(TrackingLinkRotation)],
    order_id: OrderIdPath,
    body: Annotated[TrackingLinkRotation, _example("Link leaked", {"reason": "link was forwarded"})],
) -> OrderStatusOut:
    """The answer carries the new `tracking_url`; the old link stops working once the read model
    has the change."""
    view = await _call(
        request, order_id, lambda c: orders.rotate_tracking_token(c, order_id, body.reason, caller.name)
    )
    return _status_out(view, resources(request))


ops_router = APIRouter(tags=["operations"])


@ops_router.get("/healthz", responses=errors.responses(503), summary="Liveness, with a database check")
async def healthz(request: Request) -> Health:
    try:
        await resources(request).store.ping()
    except Exception:
        log.exception("health check: the database did not answer")
        raise ApiError(503, "database_unavailable", "the database is not reachable") from None
    return Health(status="ok")


@ops_router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


# -- middleware -------------------------------------------------------------------------------


class ApiMiddleware:
    """Per request: an id (`X-Request-ID`), the body size limit (413), the HTTP metrics, and a
    catch-all that logs the traceback and answers a 500 with only the request id."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        request_id = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        too_large = ApiError(
            413, "payload_too_large", f"the request body is larger than {self.max_body_bytes} bytes"
        )
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise too_large
            return message

        try:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body_bytes:
                await errors.error_response(413, too_large.code, too_large.message)(
                    scope, receive, send_with_id
                )
            else:
                await self.app(scope, limited_receive, send_with_id)
        except Exception:
            log.exception(
                "unhandled error in %s %s (request id %s)", scope.get("method"), scope.get("path"), request_id
            )
            if not response_started:
                response = errors.error_response(
                    500,
                    "internal_error",
                    "something went wrong on our side; quote the request id when reporting it",
                    request_id=request_id,
                )
                await response(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED_ROUTE
            self.metrics.observe(
                str(scope.get("method", "")), template, status, time.perf_counter() - started_at
            )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


# -- OpenAPI ----------------------------------------------------------------------------------


def _money_as_strings(node: Any) -> None:
    """Document money as what the API accepts: a decimal string (pydantic says number | string)."""
    if isinstance(node, dict):
        variants = node.get("anyOf")
        if (
            isinstance(variants, list)
            and len(variants) == 2
            and {variant.get("type") for variant in variants if isinstance(variant, dict)}
            == {"number", "string"}
        ):
            node.pop("anyOf")
            node.update(type="string", pattern=MONEY_PATTERN, examples=["39.90"])
        for value in node.values():
            _money_as_strings(value)
    elif isinstance(node, list):
        for value in node:
            _money_as_strings(value)


def _install_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            _money_as_strings(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    """Add the API's routes, middleware, error handlers and metrics registry to `app`."""
    registry = CollectorRegistry()
    app.state.metrics_registry = registry
    app.include_router(router)
    app.include_router(ops_router)
    app.add_middleware(ApiMiddleware, metrics=HttpMetrics(registry))
    errors.install(app)
    _install_openapi(app)
