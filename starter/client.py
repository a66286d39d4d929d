"""The Python client for shop backends and operators: start orders, send requests, read, list.

The CLI and the HTTP API are thin layers over these functions, so all three behave the same.
"""

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from activities.names import POLL_CARRIER
from ordertrack.codec import data_converter
from ordertrack.connection import connect_options
from ordertrack.domain.durations import parse_duration
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
from ordertrack.domain.view import OrderView, static_summary
from ordertrack.settings import Settings
from workflows import search_attributes as sa
from workflows.order import OrderWorkflow, start_search_attributes, workflow_id_for


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


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A client for the configured server; `runtime` carries SDK telemetry (metrics) when given.

    Address, namespace, TLS / mTLS, API key and env-config profile: see `ordertrack.connection`."""
    options = connect_options(settings)
    return await Client.connect(
        **options,
        data_converter=data_converter(settings),
        runtime=runtime,
    )


def tracking_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/t/{token}"


def new_tracking_token() -> str:
    """An unguessable capability for the customer's tracking page (192 bits)."""
    return secrets.token_urlsafe(24)


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
            OrderWorkflow.run,
            OrderInput(order=order, policy=policy, tracking_token=token, shop_webhooks=shop_webhooks),
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=start_search_attributes(order),
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


def _handle(client: Client, order_id: str) -> WorkflowHandle[OrderWorkflow, OrderView]:
    return client.get_workflow_handle_for(OrderWorkflow.run, workflow_id_for(order_id))


async def get_order(client: Client, order_id: str) -> OrderView:
    """The order's view straight from its workflow (operators' source of truth)."""
    try:
        return await _handle(client, order_id).query(OrderWorkflow.status)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise OrderNotFound(order_id) from None
        raise


async def _update(client: Client, order_id: str, update: Any, request: BaseModel) -> OrderView:
    handle = _handle(client, order_id)
    try:
        return await handle.execute_update(update, request)
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


async def record_fulfillment(client: Client, order_id: str, update: FulfillmentUpdate) -> OrderView:
    return await _update(client, order_id, OrderWorkflow.record_fulfillment, update)


async def correct_status(client: Client, order_id: str, request: CorrectionRequest) -> OrderView:
    return await _update(client, order_id, OrderWorkflow.correct_status, request)


async def cancel_order(client: Client, order_id: str, request: CancelRequest) -> OrderView:
    return await _update(client, order_id, OrderWorkflow.cancel, request)


async def change_shipping_address(client: Client, order_id: str, request: AddressChangeRequest) -> OrderView:
    return await _update(client, order_id, OrderWorkflow.change_shipping_address, request)


async def rotate_tracking_token(client: Client, order_id: str, reason: str, operator: str) -> OrderView:
    """Give the order a new tracking link; the old one stops working once the read model has it."""
    request = TokenRotationRequest(tracking_token=new_tracking_token(), reason=reason, operator=operator)
    return await _update(client, order_id, OrderWorkflow.rotate_tracking_token, request)


def visibility_query(
    status: str | None = None, delayed: bool | None = None, carrier: str | None = None
) -> str:
    """A Temporal visibility query over the contract's search attributes."""
    clauses = [f"WorkflowType = '{OrderWorkflow.__name__}'"]
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
                order_id=execution.id.removeprefix("order-"),
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


async def register_search_attributes(client: Client) -> list[str]:
    """Register the contract's search attributes in the client's namespace; returns those added."""
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        known = {**existing.system_attributes, **existing.custom_attributes}
    except RPCError as err:  # the time-skipping test server can add but not list them
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        known = {}
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type)
        for key in sa.ALL
        if key.name not in known
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)


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


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`--since`: a duration back from now (`7d`, `36h`) or an ISO date or date-time (UTC if naive)."""
    value = text.strip()
    try:
        return (now or datetime.now(UTC)) - parse_duration(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"invalid --since {text!r}: use a duration (7d, 36h, 90m) or an ISO date (2026-11-20)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


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


async def count_orders(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


@dataclass(frozen=True)
class OrderStats:
    total: int
    delayed: int
    by_status: dict[str, int]  # every status, in lifecycle order, zeros included


async def order_stats(client: Client, query: str) -> OrderStats:
    """Orders per status and delayed orders among those `query` selects.

    One count per status: the server's `GROUP BY` works only for `ExecutionStatus`, not for custom
    search attributes (server 1.32: "'GROUP BY' clause is not supported for search attribute").
    The counts run concurrently and each is approximate, as visibility is eventually consistent.
    """
    statuses = [status.value for status in OrderStatus]
    queries = [
        query,
        f"{query} AND {sa.ORDER_DELAYED.name} = true",
        *(f"{query} AND {sa.ORDER_STATUS.name} = '{status}'" for status in statuses),
    ]
    total, delayed, *counts = await asyncio.gather(*(count_orders(client, q) for q in queries))
    return OrderStats(total=total, delayed=delayed, by_status=dict(zip(statuses, counts, strict=True)))
