"""Canonical order statuses (the contract's `OrderStatus`) and the warehouse events."""

from enum import StrEnum


class OrderStatus(StrEnum):
    RECEIVED = "received"
    CONFIRMED = "confirmed"
    PICKING = "picking"
    PACKED = "packed"
    SHIPPED = "shipped"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    DELIVERY_FAILED = "delivery_failed"
    EXCEPTION = "exception"
    RETURNED = "returned"
    LOST = "lost"
    CANCELLED = "cancelled"


class FulfillmentEvent(StrEnum):
    """Warehouse progress reported by the shop through `record_fulfillment`."""

    PAYMENT_CONFIRMED = "payment_confirmed"
    PICKING_STARTED = "picking_started"
    PACKED = "packed"
    SHIPPED = "shipped"


# The main line, in order; the step bar of the tracking page follows it.
MAIN_LINE: tuple[OrderStatus, ...] = (
    OrderStatus.RECEIVED,
    OrderStatus.CONFIRMED,
    OrderStatus.PICKING,
    OrderStatus.PACKED,
    OrderStatus.SHIPPED,
    OrderStatus.IN_TRANSIT,
    OrderStatus.OUT_FOR_DELIVERY,
    OrderStatus.DELIVERED,
    OrderStatus.COMPLETED,
)

# Before the parcel leaves: the warehouse drives these, and the order can still be cancelled.
PRE_SHIPMENT = frozenset(
    {OrderStatus.RECEIVED, OrderStatus.CONFIRMED, OrderStatus.PICKING, OrderStatus.PACKED}
)

# Statuses a carrier can report for a shipment (polling or webhook push).
CARRIER_STATUSES = frozenset(
    {
        OrderStatus.IN_TRANSIT,
        OrderStatus.OUT_FOR_DELIVERY,
        OrderStatus.DELIVERED,
        OrderStatus.AVAILABLE_FOR_PICKUP,
        OrderStatus.DELIVERY_FAILED,
        OrderStatus.EXCEPTION,
        OrderStatus.RETURNED,
        OrderStatus.LOST,
    }
)

# While in these the carrier is watched: polled, pushed, and timed for staleness.
TRACKED = frozenset(
    {
        OrderStatus.SHIPPED,
        OrderStatus.IN_TRANSIT,
        OrderStatus.OUT_FOR_DELIVERY,
        OrderStatus.AVAILABLE_FOR_PICKUP,
        OrderStatus.DELIVERY_FAILED,
        OrderStatus.EXCEPTION,
        OrderStatus.LOST,
    }
)

# The workflow ends in these; nothing moves an order out of them.
FINAL = frozenset({OrderStatus.COMPLETED, OrderStatus.RETURNED, OrderStatus.CANCELLED})

# Statuses that need a carrier and a tracking number to make sense.
NEEDS_TRACKING = frozenset({OrderStatus.SHIPPED} | CARRIER_STATUSES)
