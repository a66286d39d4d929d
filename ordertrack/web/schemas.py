"""What the shop API's requests and responses look like: the bodies, the order id in the path, and
the contract's sample order (the example in /docs, and the fuzzer's first, valid, case)."""

from decimal import Decimal
from typing import Annotated, Any

from fastapi import Header, Path
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from ordertrack.domain.messages import Reason
from ordertrack.domain.models import Address
from ordertrack.domain.progress import KeyedProgress
from ordertrack.domain.statuses import OrderStatus
from ordertrack.domain.timeline import TimelineEntry
from ordertrack.store.repository import NotificationRow

ORDER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"  # as `ordertrack.domain.models.OrderId`

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
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Any unique string (a UUID) per intended change. A retry of the same request with "
        "the same key (after a timeout or a lost connection) returns the first answer instead of "
        "applying the change twice; a link rotation retried this way keeps the first new link. "
        "Without it each request is a new change.",
    ),
]


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


class OrderSummaryOut(KeyedProgress):
    """One order in a list: where it is, without its timeline."""

    # Not in the API's answers (shops read the delay in `delay_reason`): taken with the rest of the
    # progress from the view or row, left out of the JSON and of the OpenAPI document.
    delay_kind: SkipJsonSchema[Any] = Field(default=None, exclude=True)
    carrier_tracking_url: str | None = None
    tracking_url: str
    version: int


class OrderStatusOut(OrderSummaryOut):
    """The order's view: what an update answers, and the core of `GET /api/orders/{order_id}`."""

    timeline: list[TimelineEntry]


class ListedOrderOut(OrderSummaryOut):
    placed_at: AwareDatetime
    created_at: AwareDatetime  # when ordertrack first saw it; the list's order


class OrderPage(BaseModel):
    """A page of `GET /api/orders`, newest first; `next_cursor` fetches the next (null: no more)."""

    orders: list[ListedOrderOut]
    next_cursor: str | None


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
