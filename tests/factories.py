"""Test data built with the real domain: the contract's sample order and states in any status."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ordertrack.domain import machine
from ordertrack.domain.models import Order
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.progress import DelayKind
from ordertrack.domain.state import OrderState
from ordertrack.domain.statuses import NEEDS_TRACKING, OrderStatus

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
# Payment instructions as a Brazilian checkout gives them: the Pix example of the Banco Central's
# BR Code manual (its checksum is 1D3D), and a bank boleto's digitable line.
PIX_CODE = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
BOLETO_LINE = "34191.79001 01043.510047 91020.150008 1 84660000012345"


def order_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "order.json").read_text())
    data.update(changes)
    return data


def sample_order(**changes: Any) -> Order:
    return Order.model_validate(order_data(**changes))


def state_in(status: OrderStatus, *, tracking: bool | None = None, **fields: Any) -> OrderState:
    """A state in `status`; carrier and tracking number are set where the status needs them."""
    base = machine.on_start(sample_order(), TimingPolicy(), NOW).state
    with_tracking = status in NEEDS_TRACKING if tracking is None else tracking
    values: dict[str, Any] = {"status": status}
    if with_tracking:
        values.update(carrier="simulated", tracking_number="SIM-ONTIME-1", shipped_at=NOW)
    values.update(fields)
    return base.model_copy(update=values)


# Every field of the order's progress (`OrderProgress`) away from its default: a late parcel in
# transit, so that a projection dropping one of them shows.
LATE_PROGRESS: dict[str, Any] = {
    "status": OrderStatus.IN_TRANSIT,
    "status_since": NOW + timedelta(hours=1),
    "delayed": True,
    "delay_reason": "the carrier moved its estimate later",
    "delay_kind": DelayKind.ESTIMATE_MOVED,
    "carrier": "simulated",
    "tracking_number": "SIM-DELAYED-1001",
    "estimated_delivery": datetime(2026, 11, 25, 18, 0, tzinfo=UTC),
}


def late_state() -> OrderState:
    return state_in(**LATE_PROGRESS)
