"""Test data built with the real domain: the contract's sample order and states in any status."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ordertrack.domain import machine
from ordertrack.domain.models import Order
from ordertrack.domain.state import OrderState
from ordertrack.domain.statuses import NEEDS_TRACKING, OrderStatus

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def order_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "order.json").read_text())
    data.update(changes)
    return data


def sample_order(**changes: Any) -> Order:
    return Order.model_validate(order_data(**changes))


def state_in(status: OrderStatus, *, tracking: bool | None = None, **fields: Any) -> OrderState:
    """A state in `status`; carrier and tracking number are set where the status needs them."""
    base = machine.on_start(sample_order(), NOW).state
    with_tracking = status in NEEDS_TRACKING if tracking is None else tracking
    values: dict[str, Any] = {"status": status}
    if with_tracking:
        values.update(carrier="simulated", tracking_number="SIM-ONTIME-1", shipped_at=NOW)
    values.update(fields)
    return base.model_copy(update=values)
