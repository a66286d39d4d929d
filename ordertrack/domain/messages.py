"""The workflow's inputs and requests: one model per message, plain pydantic JSON on the wire."""

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints

from ordertrack.domain.models import Address, Order
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.state import OrderState
from ordertrack.domain.statuses import FulfillmentEvent, OrderStatus
from ordertrack.domain.tracking import CarrierName, TrackingNumber

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]
Operator = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


TrackingToken = Annotated[str, StringConstraints(min_length=22, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OperatorAction(_Request):
    """An operator's change: who and why (audited), and whether the customer hears of it.

    `notify_customer` is on by default: a change the customer can see sends its usual message
    (cancelled, shipped, delivered, address changed...). Off, the change is made silently.
    """

    reason: Reason
    operator: Operator
    notify_customer: bool = True


class OrderInput(_Request):
    """`OrderWorkflow` input: the order, the policy in force at start, and the tracking-page token.

    `shop_webhooks` says whether this order's changes go to the shop's webhook; like the policy it
    is decided at start, so a running order keeps its own. `state` is set only when the workflow
    continues as new, carrying everything it knew.
    """

    order: Order
    policy: TimingPolicy = TimingPolicy()
    tracking_token: TrackingToken
    shop_webhooks: bool = False
    state: OrderState | None = None


class FulfillmentUpdate(_Request):
    """`record_fulfillment`: warehouse progress from the shop."""

    event: FulfillmentEvent
    carrier: CarrierName | None = None
    tracking_number: TrackingNumber | None = None
    at: AwareDatetime | None = None


class CorrectionRequest(OperatorAction):
    """`correct_status`: an operator sets the status by hand."""

    status: OrderStatus


class CancelRequest(OperatorAction):
    """`cancel`: allowed only before the parcel is shipped."""


class AddressChangeRequest(OperatorAction):
    """`change_shipping_address`: allowed only before the parcel is shipped."""

    address: Address


class TokenRotationRequest(_Request):
    """`rotate_tracking_token`: replace the customer's tracking link; the old one stops working.

    The caller generates the new token (the workflow has no source of secure randomness).
    """

    tracking_token: TrackingToken
    reason: Reason
    operator: Operator
