"""The carrier report from the read model, on SQLite and (when reachable) PostgreSQL: the columns
the store's writes fill in, and the figures for a few thousand seeded orders."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import column, table

from ordertrack.domain.carrier_report import carrier_report
from ordertrack.store import Store, create_engine, migrate
from ordertrack.store.tables import orders, timeline_events
from tests.shipments import EXPECTED, WINDOW, seed_rows, seed_shipments
from tests.web.test_pages import BRT, T0, seed_order

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


async def test_upgrading_fills_in_when_orders_were_shipped(database_url: str) -> None:
    await migrate(database_url, "0005")
    order_rows, entry_rows = seed_rows(NOW)
    new = {"shipped_at", "promised_by"}
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            before = table("orders", *(column(c.name, c.type) for c in orders.columns if c.name not in new))
            await conn.execute(
                before.insert(), [{k: v for k, v in row.items() if k not in new} for row in order_rows]
            )
            await conn.execute(timeline_events.insert(), entry_rows)
    finally:
        await engine.dispose()
    await migrate(database_url)

    store = Store.from_url(database_url)
    try:
        shipments = await store.shipments(NOW - WINDOW, NOW)
    finally:
        await store.close()
    shipped = {row["order_id"]: row["shipped_at"] for row in order_rows}
    assert sorted(s.shipped_at for s in shipments) == sorted(
        at for at in shipped.values() if at is not None and at >= NOW - WINDOW
    )
    assert all(s.promised_by is None for s in shipments)  # estimates before 0006 are not known


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    await migrate(database_url)
    store = Store.from_url(database_url)
    yield store
    await store.close()


async def test_the_write_path_keeps_when_shipped_and_the_first_promise(store: Store) -> None:
    # Shipped at T0 + 3 h; first estimate 24 Nov (a date, in São Paulo), then moved a day later; the
    # carrier reported the delivery at T0 + 41 h, well before the first promise.
    await seed_order(store, order_id="1001", token="t" * 32, journey="delivered")
    await seed_order(store, order_id="1002", token="u" * 32, journey="delayed")
    await seed_order(store, order_id="1003", token="v" * 32, journey="confirmed")

    found = {s.delivered_at is not None: s for s in await store.shipments(T0, T0 + timedelta(days=30))}

    assert len(found) == 2  # the order only confirmed was never shipped
    delivered, in_transit = found[True], found[False]
    first_promise_missed = datetime(2026, 11, 25, tzinfo=BRT)  # the 24th lasts all day, in its own zone
    assert delivered.shipped_at == T0 + timedelta(hours=3)
    assert delivered.promised_by == first_promise_missed
    assert delivered.delivered_at == T0 + timedelta(hours=41)
    assert delivered.on_time is True
    # The moved estimate does not move the promise.
    assert in_transit.promised_by == first_promise_missed and in_transit.delivered_at is None
    assert await store.shipments(T0 + timedelta(hours=4), T0 + timedelta(days=30)) == []


async def test_figures_for_a_few_thousand_orders(store: Store, database_url: str) -> None:
    await seed_shipments(database_url, NOW)

    shipments = await store.shipments(NOW - WINDOW, NOW)
    report = carrier_report(shipments, NOW - WINDOW, NOW)

    assert len(shipments) == 1_500 + 850
    figures = {f.carrier: f.model_dump(exclude={"carrier", "weeks"}) for f in report.carriers}
    assert figures == EXPECTED
    for carrier in report.carriers:
        assert sum(w.on_time for w in carrier.weeks) == carrier.on_time
        assert sum(w.late for w in carrier.weeks) == carrier.late
