"""The order's public shape, written once: where it is, whether it is late, who carries it and when
it should arrive.

`OrderProgress` is the one definition. The models that show an order build on it instead of
copying its fields: `OrderState` (the workflow's) inherits it, `OrderView`, the read model's
`StoredOrder` and the API's output models inherit `KeyedProgress`; the read model's columns are
read by `StoredOrder`'s field names, and its row is written from the view's. A field added here
so appears in the state, the view, the read model (which then needs its column and migration)
and the API. Projections that publish a chosen subset under a contract of their own (`ShopEvent`,
the search attributes) take their fields from it by name; tests keep them a subset of it.
"""

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel

from ordertrack.domain.statuses import OrderStatus


class DelayKind(StrEnum):
    """Why an order is late, as a code: customers read it in their own language."""

    SHIP_BY = "ship_by"  # not handed to the carrier by the ship-by deadline
    ESTIMATE_MOVED = "estimate_moved"  # the carrier moved its estimate later
    ESTIMATE_MISSED = "estimate_missed"  # the carrier's estimate passed without delivery


class OrderProgress(BaseModel):
    """Where an order is, as everyone outside its workflow sees it.

    No model config here: each model built on it keeps its own (frozen domain models, the API's
    plain output models), so the OpenAPI document shows what it always did.
    """

    status: OrderStatus
    status_since: AwareDatetime
    delayed: bool
    delay_reason: str | None = None  # for ops, in English
    delay_kind: DelayKind | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    estimated_delivery: AwareDatetime | None = None

    def progress(self) -> dict[str, Any]:
        """The progress fields' values, to build another projection from (`**state.progress()`)."""
        return {name: getattr(self, name) for name in OrderProgress.model_fields}


class _Keyed(BaseModel):
    order_id: str


class KeyedProgress(OrderProgress, _Keyed):
    """One order's progress with its id, for everything that shows an order by itself.

    Pydantic lays out the fields of the bases in reverse method resolution order, so `order_id`
    comes first in the JSON, where the view, the read model and the API have always had it.
    """
