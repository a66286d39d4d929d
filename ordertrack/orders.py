"""The Python client for shop backends and operators: start orders, send requests, read, list.

The HTTP API, the CLI and the demo feeder are thin layers over these functions, so all of them
behave the same. It speaks to the order workflow by the names in `ordertrack.names` (as the stock
`temporal` CLI can), so it does not import the workflow's code.
"""

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from ordertrack.domain import machine
from ordertrack.domain.messages import (
    AddressChangeRequest,
    CancelRequest,
    CorrectionRequest,
    FulfillmentUpdate,
    OrderInput,
    TokenRotationRequest,
)
from ordertrack.domain.models import Order
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.statuses import OrderStatus
from ordertrack.domain.tracking import TrackingSnapshot
from ordertrack.domain.view import OrderView, static_summary
from ordertrack.names import (
    CANCEL_UPDATE,
    CARRIER_UPDATE_SIGNAL,
    CHANGE_SHIPPING_ADDRESS_UPDATE,
    CORRECT_STATUS_UPDATE,
    POLL_CARRIER,
    RECORD_FULFILLMENT_UPDATE,
    ROTATE_TRACKING_TOKEN_UPDATE,
    SEARCH_ATTRIBUTE_FIELDS,
    STATUS_QUERY,
    WORKFLOW_TYPE,
    order_id_from,
    workflow_id_for,
)
from ordertrack.names import SearchAttributes as sa
from ordertrack.tracking_link import new_tracking_token


class OrderNotFound(LookupError):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id!r} not found")


class RequestRefused(ValueError):
    """The workflow refused a request; the message says why and what is allowed now."""


class OrderConflict(ValueError):
    """An order with this id was started before with different contents."""

    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id!r} already exists with different contents")


ORDER_DIGEST_MEMO = "order_digest"


def order_digest(order: Order) -> str:
    """Identifies an order's contents, so a retried start can tell "same order" from "same id"."""
    return hashlib.sha256(order.model_dump_json().encode()).hexdigest()


@dataclass(frozen=True)
class StartedOrder:
    order_id: str
    workflow_id: str
    tracking_token: str
    created: bool  # False when the order had been started before (same workflow id)


@dataclass(frozen=True)
class OrderSummary:
    order_id: str
    workflow_id: str
    status: str | None
    delayed: bool | None
    carrier: str | None
    tracking_number: str | None
    expected_delivery_at: datetime | None
    running: bool


def start_search_attributes(order: Order, policy: TimingPolicy) -> TypedSearchAttributes:
    """The search attributes a new order has from its first moment: the workflow upserts only what
    differs from what the server holds, so its first task upserts nothing."""
    state = machine.on_start(order, policy, order.placed_at).state
    return TypedSearchAttributes(
        [
            SearchAttributePair(key, getattr(state, field))
            for key, field in SEARCH_ATTRIBUTE_FIELDS
            if getattr(state, field) is not None
        ]
    )


async def start_order(
    client: Client, order: Order, policy: TimingPolicy, task_queue: str, *, shop_webhooks: bool = False
) -> StartedOrder:
    """Start the order's workflow once; a second start of the same order finds the first.

    `shop_webhooks`: send this order's status and delay changes to the shop's webhook (decided now,
    for the order's whole life; a second start keeps the first's choice).
    """
    workflow_id = workflow_id_for(order.order_id)
    token = new_tracking_token()
    try:
        await client.start_workflow(
            WORKFLOW_TYPE,
            OrderInput(order=order, policy=policy, tracking_token=token, shop_webhooks=shop_webhooks),
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=start_search_attributes(order, policy),
            static_summary=static_summary(order),
            memo={ORDER_DIGEST_MEMO: order_digest(order)},
        )
    except WorkflowAlreadyStartedError:
        handle = client.get_workflow_handle(workflow_id)
        description = await handle.describe()
        if await description.memo_value(ORDER_DIGEST_MEMO, default=None) != order_digest(order):
            raise OrderConflict(order.order_id) from None
        view = await get_order(client, order.order_id)
        return StartedOrder(order.order_id, workflow_id, view.tracking_token, created=False)
    return StartedOrder(order.order_id, workflow_id, token, created=True)


def _handle(client: Client, order_id: str) -> WorkflowHandle[Any, OrderView]:
    return client.get_workflow_handle(workflow_id_for(order_id), result_type=OrderView)


async def get_order(client: Client, order_id: str) -> OrderView:
    """The order's view straight from its workflow (operators' source of truth)."""
    try:
        return await _handle(client, order_id).query(STATUS_QUERY, result_type=OrderView)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise OrderNotFound(order_id) from None
        raise


def update_id(update: str, request_id: str | None) -> str | None:
    """The Temporal update id for a caller's request id, scoped to the operation (the workflow scopes
    it to the order): the same request sent again gets the first answer instead of being applied
    twice. None lets the SDK make a fresh id, as for a request sent once."""
    return f"{update}:{request_id}" if request_id else None


async def _update(
    client: Client, order_id: str, update: str, request: BaseModel, request_id: str | None
) -> OrderView:
    handle = _handle(client, order_id)
    try:
        return await handle.execute_update(
            update, request, id=update_id(update, request_id), result_type=OrderView
        )
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        raise RequestRefused(cause.message if isinstance(cause, ApplicationError) else str(cause)) from None
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        description = await _describe_or_none(handle)
        if description is None:
            raise OrderNotFound(order_id) from None
        status = description.typed_search_attributes.get(sa.ORDER_STATUS) or "finished"
        raise RequestRefused(
            f"order {order_id} is {status} and its workflow has ended; nothing can change"
        ) from None


async def _describe_or_none(handle: WorkflowHandle[Any, Any]) -> Any:
    try:
        return await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


# `request_id` (the API's `Idempotency-Key`, the CLI's `--request-id`): a retry of the same request
# with the same id returns the first answer, even a link rotation's new token. Temporal remembers an
# update id for the workflow run it was sent to.


async def record_fulfillment(
    client: Client, order_id: str, update: FulfillmentUpdate, request_id: str | None = None
) -> OrderView:
    return await _update(client, order_id, RECORD_FULFILLMENT_UPDATE, update, request_id)


async def correct_status(
    client: Client, order_id: str, request: CorrectionRequest, request_id: str | None = None
) -> OrderView:
    return await _update(client, order_id, CORRECT_STATUS_UPDATE, request, request_id)


async def cancel_order(
    client: Client, order_id: str, request: CancelRequest, request_id: str | None = None
) -> OrderView:
    return await _update(client, order_id, CANCEL_UPDATE, request, request_id)


async def change_shipping_address(
    client: Client, order_id: str, request: AddressChangeRequest, request_id: str | None = None
) -> OrderView:
    return await _update(client, order_id, CHANGE_SHIPPING_ADDRESS_UPDATE, request, request_id)


async def rotate_tracking_token(
    client: Client, order_id: str, reason: str, operator: str, request_id: str | None = None
) -> OrderView:
    """Give the order a new tracking link; the old one stops working once the read model has it."""
    request = TokenRotationRequest(tracking_token=new_tracking_token(), reason=reason, operator=operator)
    return await _update(client, order_id, ROTATE_TRACKING_TOKEN_UPDATE, request, request_id)


async def send_carrier_update(client: Client, workflow_id: str, snapshot: TrackingSnapshot) -> bool:
    """A carrier's push to the order's workflow (`carrier_update`); False when it is no longer running."""
    try:
        await client.get_workflow_handle(workflow_id).signal(CARRIER_UPDATE_SIGNAL, snapshot)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


def visibility_query(
    status: str | None = None, delayed: bool | None = None, carrier: str | None = None
) -> str:
    """A Temporal visibility query over the contract's search attributes."""
    clauses = [f"WorkflowType = '{WORKFLOW_TYPE}'"]
    if status:
        clauses.append(f"{sa.ORDER_STATUS.name} = '{OrderStatus(status).value}'")
    if delayed is not None:
        clauses.append(f"{sa.ORDER_DELAYED.name} = {str(delayed).lower()}")
    if carrier:
        if not carrier.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"invalid carrier name {carrier!r}")
        clauses.append(f"{sa.CARRIER.name} = '{carrier.lower()}'")
    return " AND ".join(clauses)


async def list_orders(client: Client, query: str, limit: int = 100) -> list[OrderSummary]:
    found = []
    async for execution in client.list_workflows(query, limit=limit):
        attrs = execution.typed_search_attributes
        found.append(
            OrderSummary(
                order_id=order_id_from(execution.id),
                workflow_id=execution.id,
                status=attrs.get(sa.ORDER_STATUS),
                delayed=attrs.get(sa.ORDER_DELAYED),
                carrier=attrs.get(sa.CARRIER),
                tracking_number=attrs.get(sa.TRACKING_NUMBER),
                expected_delivery_at=attrs.get(sa.EXPECTED_DELIVERY_AT),
                running=execution.status == WorkflowExecutionStatus.RUNNING,
            )
        )
    return found


async def carrier_poll_count(client: Client, order_id: str) -> int:
    """How many times the carrier was asked about this order: every attempt of every poll activity.

    Retries of one activity leave a single event behind, with the attempt number on it, so this is
    also how many polls the history did not grow by.
    """
    polls: set[int] = set()
    count = 0
    async for event in _handle(client, order_id).fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            if event.activity_task_scheduled_event_attributes.activity_type.name == POLL_CARRIER:
                polls.add(event.event_id)
        elif event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes
            count += started.attempt if started.scheduled_event_id in polls else 0
    return count


# -- operator tools: filters beyond the contract's attributes, counts --------------------------------

_ORDER_ID_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def visibility_time(moment: datetime) -> str:
    """A datetime as a visibility query literal (RFC 3339, UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def orders_query(
    status: str | None = None,
    delayed: bool | None = None,
    carrier: str | None = None,
    *,
    since: datetime | None = None,
    id_prefix: str | None = None,
    running: bool = False,
) -> str:
    """`visibility_query` plus start time, order-id prefix and running-only filters."""
    clauses = [visibility_query(status, delayed, carrier)]
    if since is not None:
        clauses.append(f"StartTime >= '{visibility_time(since)}'")
    if id_prefix:
        if not _ORDER_ID_PREFIX.match(id_prefix):
            raise ValueError(f"invalid order id prefix {id_prefix!r}")
        clauses.append(f"WorkflowId STARTS_WITH '{workflow_id_for(id_prefix)}'")
    if running:
        clauses.append("ExecutionStatus = 'Running'")
    return " AND ".join(clauses)
