"""The order's view: what the `status` query returns and what the read model stores."""

from pydantic import ConfigDict

from ordertrack.domain.models import Order
from ordertrack.domain.progress import KeyedProgress
from ordertrack.domain.state import OrderState
from ordertrack.domain.timeline import TimelineEntry


class OrderView(KeyedProgress):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tracking_token: str
    version: int
    timeline: tuple[TimelineEntry, ...] = ()


def order_view(order: Order, state: OrderState, tracking_token: str, *, timeline: bool = True) -> OrderView:
    return OrderView(
        order_id=order.order_id,
        **state.progress(),
        tracking_token=tracking_token,
        version=state.version,
        timeline=state.timeline if timeline else (),
    )


def first_name(full_name: str) -> str:
    return full_name.split()[0] if full_name.split() else full_name


def static_summary(order: Order) -> str:
    """One line for the Temporal UI's workflow list: no PII beyond the first name."""
    count = sum(item.quantity for item in order.items)
    return f"Order {order.order_id} · {first_name(order.customer.name)} · {count} item{'s' * (count != 1)}"


def current_details(view: OrderView) -> str:
    """Markdown for the Temporal UI's current details of a running order."""
    lines = [f"**Status:** `{view.status.value}`" + (" · **delayed**" if view.delayed else "")]
    if view.delay_reason and view.delayed:
        lines.append(f"**Delay:** {view.delay_reason}")
    if view.carrier and view.tracking_number:
        lines.append(f"**Carrier:** {view.carrier} · `{view.tracking_number}`")
    if view.estimated_delivery:
        lines.append(f"**Estimated delivery:** {view.estimated_delivery:%Y-%m-%d}")
    if view.timeline:
        last = view.timeline[-1]
        why = f"; reason: {last.reason}" if last.reason else ""
        lines.append(f"**Last event:** {last.at:%Y-%m-%d %H:%M} {last.message} ({last.actor}{why})")
    return "\n\n".join(lines)
