"""Activity inputs (and the notify activities' result): what the workflow hands to the read model,
the mailer, the carrier poller and the shop's webhook."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ordertrack.domain.models import Address, Order
from ordertrack.domain.notices import Channel, MessageKind
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.polling import PollState
from ordertrack.domain.state import OrderState
from ordertrack.domain.statuses import OrderStatus
from ordertrack.domain.timeline import TimelineEntry
from ordertrack.domain.tracking import CarrierName, TrackingNumber
from ordertrack.domain.view import OrderView


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderRecord(_Record):
    """Creates the order's row in the read model when its workflow starts (idempotent on order_id).

    `time_zone`: where the order's times are shown, as the workflow shows them in messages (the
    customer's zone, else the policy's default); None from a worker older than the field.
    """

    order: Order
    workflow_id: str
    tracking_token: str
    view: OrderView
    time_zone: str | None = None


class ChangeRecord(_Record):
    """One committed change: the new view and the timeline entries it added.

    The read model applies it only when `view.version` is newer than what it holds, and inserts
    entries keyed by (order_id, seq), so replays and retries write nothing twice.
    """

    view: OrderView
    entries: tuple[TimelineEntry, ...]
    shipping_address: Address | None = None  # set when an operator changed it
    # As in OrderRecord; sent with every change, so an order saved before the read model kept a
    # zone gets one at its next change.
    time_zone: str | None = None


class NotificationRequest(_Record):
    """One customer message on one channel; (order_id, channel, kind, dedupe_key) is sent at most once.

    `details` holds what the kind needs beyond the order and view (see `ordertrack.domain.notices`).
    """

    kind: MessageKind
    dedupe_key: str
    channel: Channel = Channel.EMAIL
    order: Order
    view: OrderView  # without timeline
    details: dict[str, str] = {}


class NotificationResult(_Record):
    """What became of a message: `suppressed` (not sent, by the shop's or the customer's choice)
    says why in `server_reply` the first time, and the workflow records that on the timeline."""

    message_id: str
    status: Literal["sent", "already_sent", "unconfirmed", "suppressed"]
    server_reply: str | None = None


class PollCadence(_Record):
    """What paces an adaptive poll (`ordertrack.domain.polling`): the order's tracking state and policy."""

    state: PollState
    policy: TimingPolicy


class PollRequest(_Record):
    """Poll one shipment; the activity fails benignly while its fingerprint equals `known_fingerprint`.

    With a `cadence`, each benign failure says when to try again; without one (orders started before
    adaptive polling), the retry policy's fixed interval does.
    """

    carrier: CarrierName
    tracking_number: TrackingNumber
    known_fingerprint: str | None = None
    order_id: Annotated[str, Field(max_length=64)] | None = None
    cadence: PollCadence | None = None


class ShopEvent(_Record):
    """One change of an order's status or delay flag, POSTed to the shop's webhook as compact JSON.

    `seq` is the order's view version: it grows with every change of the order (not only those sent,
    so it may skip numbers), and a receiver keeps an event only when its `seq` is newer than the
    one it holds. `event_id` derives from order id and `seq`, so every retry carries the same id.
    """

    event_id: str
    order_id: str
    # status, delayed, carrier, tracking_number, estimated_delivery and delay_reason: the part of the
    # order's progress (`OrderProgress`) shops were promised, in the contract's order, filled by name
    # in `of` (status_since and delay_kind are not published).
    status: OrderStatus
    delayed: bool
    at: AwareDatetime  # when the change happened
    seq: int
    carrier: str | None = None
    tracking_number: str | None = None
    estimated_delivery: AwareDatetime | None = None
    delay_reason: str | None = None

    @classmethod
    def of(cls, order_id: str, state: OrderState, at: datetime) -> "ShopEvent":
        """The event for the order's state after a change that happened `at`."""
        published = {name: value for name, value in state.progress().items() if name in cls.model_fields}
        return cls(
            event_id=f"evt_{order_id}_{state.version}",
            order_id=order_id,
            at=at,
            seq=state.version,
            **published,
        )
