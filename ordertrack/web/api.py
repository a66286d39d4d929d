"""The shop API's order routes (`/api/orders/...`), for shop backends and operators.

A thin layer over `ordertrack.orders`, so the API, the CLI and the Python client behave the same:
starts and updates go to Temporal (`ordertrack.web.temporal`), reads come from the read model only.
Bodies are checked as strict JSON (`ordertrack.web.strict_json`) against `ordertrack.web.schemas`,
and errors have one structured shape (`ordertrack.web.errors`).
"""

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import AwareDatetime
from temporalio.client import Client

from ordertrack import orders
from ordertrack.domain.messages import (
    AddressChangeRequest,
    CancelRequest,
    CorrectionRequest,
    FulfillmentUpdate,
)
from ordertrack.domain.models import NewOrder, Order
from ordertrack.domain.statuses import OrderStatus
from ordertrack.domain.view import OrderView
from ordertrack.settings import Settings
from ordertrack.store.repository import OrderCursor, OrderFilter, StoredOrder
from ordertrack.store.stamps import Stamp
from ordertrack.tracking_link import tracking_url
from ordertrack.web import errors
from ordertrack.web.auth import OperatorCaller, ShopCaller
from ordertrack.web.deps import Resources, resources
from ordertrack.web.errors import ApiError, FieldError
from ordertrack.web.readcache import Rendered
from ordertrack.web.schemas import (
    SAMPLE_ORDER,
    Cancellation,
    IdempotencyKey,
    ItemOut,
    ListedOrderOut,
    NotificationLog,
    OrderIdPath,
    OrderOut,
    OrderPage,
    OrderStatusOut,
    ShippingAddressChange,
    StartedOrderOut,
    StatusCorrection,
    TrackingLinkRotation,
)
from ordertrack.web.strict_json import StrictBody
from ordertrack.web.temporal import get_temporal, outage_as_503

T = TypeVar("T")

# How long a request waits for the order's workflow (an update's answer, a retried start's query).
WORKFLOW_TIMEOUT = 30.0


def _example(summary: str, value: dict[str, Any]) -> Any:
    return Body(openapi_examples={"example": {"summary": summary, "value": value}})


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
    carrier_url = _carrier_link(res, view.carrier, view.tracking_number)
    return OrderStatusOut(
        order_id=view.order_id,
        **view.progress(),
        carrier_tracking_url=carrier_url,
        tracking_url=tracking_url(res.settings.public_url, view.tracking_token),
        version=view.version,
        timeline=list(view.timeline),
    )


def _carrier_link(res: Resources, carrier: str | None, tracking_number: str | None) -> str | None:
    return res.carriers.carrier_url(carrier, tracking_number) if carrier and tracking_number else None


def _listed_out(stored: StoredOrder, res: Resources) -> ListedOrderOut:
    return ListedOrderOut(
        **stored.model_dump(include=set(ListedOrderOut.model_fields)),
        carrier_tracking_url=_carrier_link(res, stored.carrier, stored.tracking_number),
        tracking_url=tracking_url(res.settings.public_url, stored.tracking_token),
    )


def _encode_cursor(cursor: OrderCursor) -> str:
    raw = json.dumps([cursor.created_at.isoformat(), cursor.order_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(text: str) -> OrderCursor:
    try:
        created_at, order_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return OrderCursor(datetime.fromisoformat(created_at), str(order_id))
    except (ValueError, TypeError):
        raise errors.invalid_request(
            [FieldError(field="cursor", message="not a cursor this API gave out", type="value_error")]
        ) from None


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
    order: Annotated[NewOrder, _example("The contract's sample order", SAMPLE_ORDER)],
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
    response_model=OrderOut,
    responses=errors.responses(401, 403, 404, 422),
    summary="Read an order (from the read model)",
)
async def get_order(request: Request, caller: ShopCaller, order_id: OrderIdPath) -> Response:
    """The order's status, delay, tracking and timeline as the read model holds them (no Temporal
    call). A just-started order is 404 until the worker has saved it, usually within a second."""
    res = resources(request)
    # One indexed lookup; the answer is serialized once per change of the order and kept.
    stamp = await res.store.order_stamp(order_id)
    answer = None if stamp is None else res.cache.get(("api", order_id), stamp)
    if answer is None and stamp is not None:
        answer = await _order_answer(res, order_id, stamp)
    if answer is None:
        raise _order_not_found(order_id)
    return Response(answer.body, media_type="application/json")


async def _order_answer(res: Resources, order_id: str, stamp: Stamp) -> Rendered | None:
    """The order's JSON, kept for `stamp` (see `ordertrack.web.readcache`)."""
    stored, timeline = await res.store.get_order_with_timeline(order_id)
    if stored is None:
        return None
    carrier_url = _carrier_link(res, stored.carrier, stored.tracking_number)
    out = OrderOut(
        order_id=stored.order_id,
        **stored.progress(),
        carrier_tracking_url=carrier_url,
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
    answer = Rendered.of(out.model_dump_json().encode(), [])
    res.cache.put(("api", order_id), stamp, answer)
    return answer


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


LIST_FILTERS = frozenset(
    {"status", "delayed", "carrier", "created_since", "created_until", "tracking_number", "email"}
)
MAX_PAGE = 200


@router.get(
    "/orders",
    responses=errors.responses(401, 403, 422),
    summary="List and search orders (from the read model)",
)
async def list_orders(
    request: Request,
    caller: ShopCaller,
    status: Annotated[list[OrderStatus], Query(description="One or more statuses (repeat it).")] = [],  # noqa: B006
    delayed: bool | None = None,
    carrier: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    created_since: Annotated[AwareDatetime | None, Query(description="ISO 8601 with offset.")] = None,
    created_until: Annotated[AwareDatetime | None, Query(description="Exclusive.")] = None,
    tracking_number: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    email: Annotated[str | None, Query(min_length=3, max_length=254, description="Exact, any case.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=400, description="`next_cursor` of the page before.")
    ] = None,
) -> OrderPage:
    """Orders newest first, matching every filter given (statuses: any of them). Pages follow
    `next_cursor`, and stay stable while new orders arrive (they sort before every cursor). The
    email is compared without case; it is read from the read model only, never from a search
    attribute, and this service logs no query strings."""
    errors.refuse_unknown_filters(request, LIST_FILTERS, others=("limit", "cursor"))
    where = OrderFilter(
        statuses=tuple(status),
        delayed=delayed,
        carrier=carrier,
        created_since=created_since,
        created_until=created_until,
        tracking_number=tracking_number,
        email=email,
    )
    res = resources(request)
    found = await res.store.list_orders(where, limit + 1, _decode_cursor(cursor) if cursor else None)
    page, more = found[:limit], len(found) > limit
    last = page[-1] if page else None
    return OrderPage(
        orders=[_listed_out(stored, res) for stored in page],
        next_cursor=_encode_cursor(OrderCursor(last.created_at, last.order_id)) if more and last else None,
    )


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
    idempotency_key: IdempotencyKey = None,
) -> OrderStatusOut:
    view = await _call(
        request, order_id, lambda c: orders.record_fulfillment(c, order_id, update, idempotency_key)
    )
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
    idempotency_key: IdempotencyKey = None,
) -> OrderStatusOut:
    correction = CorrectionRequest(
        status=body.status, reason=body.reason, operator=caller.name, notify_customer=body.notify_customer
    )
    view = await _call(
        request, order_id, lambda c: orders.correct_status(c, order_id, correction, idempotency_key)
    )
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
    idempotency_key: IdempotencyKey = None,
) -> OrderStatusOut:
    cancel = CancelRequest(reason=body.reason, operator=caller.name, notify_customer=body.notify_customer)
    view = await _call(request, order_id, lambda c: orders.cancel_order(c, order_id, cancel, idempotency_key))
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
    idempotency_key: IdempotencyKey = None,
) -> OrderStatusOut:
    change = AddressChangeRequest(
        address=body.address, reason=body.reason, operator=caller.name, notify_customer=body.notify_customer
    )
    view = await _call(
        request, order_id, lambda c: orders.change_shipping_address(c, order_id, change, idempotency_key)
    )
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
    idempotency_key: IdempotencyKey = None,
) -> OrderStatusOut:
    """The answer carries the new `tracking_url`; the old link stops working once the read model
    has the change."""
    view = await _call(
        request,
        order_id,
        lambda c: orders.rotate_tracking_token(c, order_id, body.reason, caller.name, idempotency_key),
    )
    return _status_out(view, resources(request))
