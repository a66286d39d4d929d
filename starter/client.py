"""What the CLI adds to the Python client (`ordertrack.orders`): order counts per status, the
`--since` filter, and registering the contract's search attributes in a namespace (`ordertrack up`,
the tests, an operator setting up a server)."""

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from ordertrack.domain import durations
from ordertrack.domain.statuses import OrderStatus
from ordertrack.names import SearchAttributes as sa


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


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`--since`: a duration back from now (`7d`, `36h`) or an ISO date or date-time (UTC if naive)."""
    try:
        return durations.parse_since(text, now or datetime.now(UTC))
    except ValueError as err:
        raise ValueError(f"invalid --since {err}") from None


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
