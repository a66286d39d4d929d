"""A few thousand shipped orders written straight into the read model's tables, whose carrier figures
are known by construction (`EXPECTED`, worked out by hand in the comments below).

Rows are inserted in bulk, as the store's writes would leave them (the `shipped_at` and
`promised_by` columns included), so a test seeds them in about a second on SQLite or PostgreSQL;
the write path that fills those columns is tested on its own, with real journeys.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ordertrack.domain.statuses import OrderStatus
from ordertrack.store import create_engine
from ordertrack.store.tables import orders, timeline_events

DAY = timedelta(days=1)
WINDOW = timedelta(days=30)  # the report's default window; every seeded shipment inside is in it


@dataclass
class _Journey:
    """One seeded order: its carrier, status now, status entries after `shipped` (days after shipping)."""

    carrier: str
    shipped_at: datetime | None
    status: OrderStatus
    promised_by: datetime | None = None
    after_shipping: list[tuple[OrderStatus, timedelta]] = field(default_factory=list)


def _journeys(now: datetime) -> Iterator[_Journey]:
    # dhl, 1,500 shipped in the window:
    # - 1,200 delivered after 1 + k % 5 whole days (240 each of 1..5 days): median 3 (ranks 599 and
    #   600 of 1,200 are both 3), p90 5 (rank 1,079.1 lies among the 5s). Every sixth (k % 6 == 0)
    #   had no estimate: per 30 orders, one of each transit time, so 200 without an estimate. The
    #   rest were promised 3.5 days: 1-3 days on time, 4-5 late, so 600 on time and 400 late.
    for k in range(1_200):
        shipped = now - 28 * DAY + (k % 20) * DAY
        transit = (1 + k % 5) * DAY
        yield _Journey(
            "dhl",
            shipped,
            OrderStatus.DELIVERED,
            promised_by=None if k % 6 == 0 else shipped + 3.5 * DAY,
            after_shipping=[(OrderStatus.IN_TRANSIT, DAY / 2), (OrderStatus.DELIVERED, transit)],
        )
    # - 200 still out after one failed attempt each: 200 failed attempts.
    for k in range(200):
        yield _Journey(
            "dhl",
            now - (5 + k % 10) * DAY,
            OrderStatus.DELIVERY_FAILED,
            promised_by=now,
            after_shipping=[(OrderStatus.IN_TRANSIT, DAY / 2), (OrderStatus.DELIVERY_FAILED, 2 * DAY)],
        )
    # - 100 lost after an exception: 100 exceptions, 100 lost.
    for k in range(100):
        yield _Journey(
            "dhl",
            now - (20 + k % 5) * DAY,
            OrderStatus.LOST,
            after_shipping=[(OrderStatus.EXCEPTION, DAY), (OrderStatus.LOST, 8 * DAY)],
        )
    # ups, 850 shipped in the window:
    # - 800 delivered after 2 or 2.5 days (400 each): median 2.25 (ranks 399 and 400), p90 2.5;
    #   promised 2.25 days, so the 400 two-day ones are on time and the others late.
    for k in range(800):
        shipped = now - 25 * DAY + (k % 15) * DAY
        yield _Journey(
            "ups",
            shipped,
            OrderStatus.COMPLETED,
            promised_by=shipped + 2.25 * DAY,
            after_shipping=[
                (OrderStatus.DELIVERED, (2 + (k % 2) / 2) * DAY),
                (OrderStatus.COMPLETED, 10 * DAY),
            ],
        )
    # - 50 completed without ever being delivered (the review request went out anyway).
    for _ in range(50):
        yield _Journey(
            "ups", now - 22 * DAY, OrderStatus.COMPLETED, after_shipping=[(OrderStatus.COMPLETED, 21 * DAY)]
        )
    # Not in the report: 300 dhl shipped before the window, 100 orders not shipped yet.
    for _ in range(300):
        yield _Journey(
            "dhl",
            now - 40 * DAY,
            OrderStatus.DELIVERED,
            promised_by=now - 37 * DAY,
            after_shipping=[(OrderStatus.DELIVERED, DAY)],
        )
    for _ in range(100):
        yield _Journey("dhl", None, OrderStatus.PACKED)


# What `carrier_report` gives for the seeded orders over the last 30 days (weeks aside).
EXPECTED: dict[str, dict[str, Any]] = {
    "dhl": {
        "shipped": 1_500,
        "delivered": 1_200,
        "on_time": 600,
        "late": 400,
        "without_estimate": 200,
        "on_time_rate": 0.6,
        "median_days": 3.0,
        "p90_days": 5.0,
        "failed_attempts": 200,
        "exceptions": 100,
        "lost": 100,
    },
    "ups": {
        "shipped": 850,
        "delivered": 800,
        "on_time": 400,
        "late": 400,
        "without_estimate": 0,
        "on_time_rate": 0.5,
        "median_days": 2.25,
        "p90_days": 2.5,
        "failed_attempts": 0,
        "exceptions": 0,
        "lost": 0,
    },
}
SEEDED_ORDERS = 1_500 + 850 + 300 + 100


def seed_rows(now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    order_rows: list[dict[str, Any]] = []
    entry_rows: list[dict[str, Any]] = []
    placed = now - 45 * DAY
    for n, journey in enumerate(_journeys(now)):
        order_id = f"seed-{n:05d}"
        entries = [(OrderStatus.RECEIVED, placed), (OrderStatus.CONFIRMED, placed)]
        if journey.shipped_at is not None:
            entries.append((OrderStatus.SHIPPED, journey.shipped_at))
            entries += [(status, journey.shipped_at + after) for status, after in journey.after_shipping]
        order_rows.append(
            {
                "order_id": order_id,
                "workflow_id": f"order-{order_id}",
                "tracking_token": f"tok-{order_id}",
                "status": journey.status.value,
                "status_since": entries[-1][1],
                "delayed": False,
                "carrier": journey.carrier,
                "tracking_number": f"TN-{order_id}",
                "version": len(entries),
                "address_version": 1,
                "customer_name": "Ana Souza",
                "customer_email": "ana@example.com",
                "locale": "en",
                "ship_city": "Lisboa",
                "ship_country": "PT",
                "shipping_address": {
                    "name": "Ana Souza",
                    "line1": "Rua 1",
                    "city": "Lisboa",
                    "country": "PT",
                },
                "items": [],
                "currency": "EUR",
                "total": Decimal("10.00"),
                "placed_at": placed,
                "created_at": placed,
                "updated_at": entries[-1][1],
                "shipped_at": journey.shipped_at,
                "promised_by": journey.promised_by,
            }
        )
        entry_rows += [
            {
                "order_id": order_id,
                "seq": seq,
                "at": at,
                "kind": "status",
                "status": status.value,
                "message": status.value,
                "actor": "system",
            }
            for seq, (status, at) in enumerate(entries, start=1)
        ]
    return order_rows, entry_rows


async def seed_shipments(database_url: str, now: datetime) -> None:
    """Insert the seeded orders into the migrated read model at `database_url`."""
    order_rows, entry_rows = seed_rows(now)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(orders.insert(), order_rows)
            await conn.execute(timeline_events.insert(), entry_rows)
    finally:
        await engine.dispose()
