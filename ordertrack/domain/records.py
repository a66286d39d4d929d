"""Activity inputs: what the workflow hands to the read model, the mailer and the carrier poller."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ordertrack.domain.machine import MessageKind
from ordertrack.domain.models import Address, Order
from ordertrack.domain.timeline import TimelineEntry
from ordertrack.domain.tracking import CarrierName, TrackingNumber
from ordertrack.domain.view import OrderView


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderRecord(_Record):
    """Creates the order's row in the read model when its workflow starts (idempotent on order_id)."""

    order: Order
    workflow_id: str
    tracking_token: str
    view: OrderView


class ChangeRecord(_Record):
    """One committed change: the new view and the timeline entries it added.

    The read model applies it only when `view.version` is newer than what it holds, and inserts
    entries keyed by (order_id, seq), so replays and retries write nothing twice.
    """

    view: OrderView
    entries: tuple[TimelineEntry, ...]
    shipping_address: Address | None = None  # set when an operator changed it


class NotificationRequest(_Record):
    """One customer message; (order_id, kind, dedupe_key) is sent at most once."""

    kind: MessageKind
    dedupe_key: str
    order: Order
    view: OrderView  # without timeline
    details: dict[str, str] = {}


class PollRequest(_Record):
    """Poll one shipment; the activity fails benignly while its fingerprint equals `known_fingerprint`."""

    carrier: CarrierName
    tracking_number: TrackingNumber
    known_fingerprint: str | None = None
    order_id: Annotated[str, Field(max_length=64)] | None = None
