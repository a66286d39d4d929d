"""The read model on SQLite and (when reachable) PostgreSQL: migrations, idempotent writes, notifications."""

import asyncio
import sqlite3
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Table, column, func, select, table
from temporalio.testing import ActivityEnvironment

from activities.store import StoreActivities
from ordertrack.domain.machine import on_address_change, on_fulfillment, on_start
from ordertrack.domain.messages import AddressChangeRequest, FulfillmentUpdate
from ordertrack.domain.models import Address, Order
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.progress import OrderProgress
from ordertrack.domain.records import ChangeRecord, OrderRecord
from ordertrack.domain.state import OrderState
from ordertrack.domain.statuses import FulfillmentEvent, OrderStatus
from ordertrack.domain.view import order_view
from ordertrack.store import NotFoundError, NotificationKey, Store, create_engine, migrate
from ordertrack.store.repository import NotificationStateError, OrderCursor, OrderFilter
from ordertrack.store.stamps import BY_ORDER_ID, BY_TOKEN, Stamp, _EngineStamps, stamp_reader
from ordertrack.store.tables import mail_recipients, metadata, notifications, orders
from tests.factories import late_state, order_data

NOW = datetime(2026, 11, 20, 14, 5, tzinfo=UTC)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    await migrate(database_url)
    store = Store.from_url(database_url)
    yield store
    await store.close()


def start(
    order_id: str = "1001", *, paid: bool = True, token: str | None = None
) -> tuple[OrderRecord, OrderState]:
    """A new order as the workflow saves it, and the state it holds afterwards."""
    data = order_data(order_id=order_id, payment={"status": "paid" if paid else "pending"})
    order = Order.model_validate(data)
    state = on_start(order, TimingPolicy(), NOW).state
    return record_for(order, state, token or f"token-{order_id}-{'x' * 22}"), state


def make_order(order_id: str = "1001", *, paid: bool = True, token: str | None = None) -> OrderRecord:
    return start(order_id, paid=paid, token=token)[0]


def record_for(order: Order, state: OrderState, token: str) -> OrderRecord:
    view = order_view(order, state, token)
    return OrderRecord(order=order, workflow_id=f"order-{order.order_id}", tracking_token=token, view=view)


def change(
    record: OrderRecord, before: OrderState, after: OrderState, address: Address | None = None
) -> ChangeRecord:
    """The change from `before` to `after`, as the workflow hands it to record_change."""
    view = order_view(record.order, after, record.tracking_token)
    return ChangeRecord(view=view, entries=after.timeline[before.version :], shipping_address=address)


def fulfil(state: OrderState, event: FulfillmentEvent, minutes: int) -> OrderState:
    return on_fulfillment(state, FulfillmentUpdate(event=event), NOW + timedelta(minutes=minutes)).state


async def count(database_url: str, table: Table) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(table)) or 0)
    finally:
        await engine.dispose()


# -- migrations -------------------------------------------------------------------------------


async def test_migrations_match_tables_and_rerun_as_no_op(database_url: str) -> None:
    await migrate(database_url)
    await migrate(database_url)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await engine.dispose()
    assert diff == []


async def test_upgrading_to_channels_keeps_sent_email_as_email(database_url: str) -> None:
    await migrate(database_url, "0001")
    sent = {
        "order_id": "1001", "kind": "shipped", "dedupe_key": "shipped:N1", "message_id": "<m@x>",
        "recipient": "ana@example.com", "status": "sent", "attempts": 1, "server_reply": "250 Ok",
        "created_at": NOW, "sent_at": NOW,
    }  # fmt: skip
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            # The table as 0001 made it: no channel column.
            before = table("notifications", *(column(name, notifications.c[name].type) for name in sent))
            await conn.execute(before.insert().values(sent))
    finally:
        await engine.dispose()
    await migrate(database_url)
    store_ = Store.from_url(database_url)
    try:
        [row] = await store_.list_notifications("1001")
        assert (row.channel, row.kind, row.status, row.server_reply) == ("email", "shipped", "sent", "250 Ok")
        again = await store_.claim_notification(
            NotificationKey("1001", "email", "shipped", "shipped:N1"), "<m@x>", ""
        )
        assert (again.status, again.attempts) == ("sent", 1)
    finally:
        await store_.close()


MIGRATE_ON_GO = """
import asyncio, sys
from ordertrack.store import migrate
print("ready", flush=True)
sys.stdin.readline()
asyncio.run(migrate(sys.argv[1]))
"""


async def test_workers_migrating_at_once_all_succeed(database_url: str, tmp_path: Path) -> None:
    pipe = asyncio.subprocess.PIPE
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            MIGRATE_ON_GO,
            database_url,
            cwd=tmp_path,
            stdin=pipe,
            stdout=pipe,
            stderr=pipe,
        )
        for _ in range(4)
    ]
    for process in processes:  # all imported: now let the migrations collide
        assert process.stdout is not None
        assert await process.stdout.readline() == b"ready\n"
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(b"go\n")
    errors = [(await process.communicate())[1].decode() for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0], errors
    store_ = Store.from_url(database_url)
    try:
        assert await store_.save_order(make_order())
    finally:
        await store_.close()


# -- orders -----------------------------------------------------------------------------------


async def test_save_order_is_idempotent(store: Store) -> None:
    record = make_order()
    assert await store.save_order(record) is True
    assert await store.save_order(record) is False
    assert [order.order_id for order in await store.list_orders()] == ["1001"]
    assert [entry.seq for entry in await store.get_timeline("1001")] == [1, 2]


async def test_concurrent_save_order_creates_one_row(store: Store, database_url: str) -> None:
    record = make_order()
    created = await asyncio.gather(*(store.save_order(record) for _ in range(5)))
    assert sorted(created) == [False, False, False, False, True]
    assert await count(database_url, orders) == 1


async def test_saved_order_round_trips(store: Store) -> None:
    record = make_order()
    await store.save_order(record)
    stored = await store.get_order("1001")
    assert stored is not None
    assert stored.status == OrderStatus.CONFIRMED
    assert stored.version == 2
    assert stored.workflow_id == "order-1001"
    assert stored.total == Decimal("79.80")
    assert str(stored.total) == "79.80"
    assert stored.items == tuple(record.order.items)
    assert stored.shipping_address == record.order.shipping_address
    assert (stored.ship_city, stored.ship_country, stored.locale) == ("São Paulo", "BR", "pt-BR")
    assert await store.get_order("nope") is None


async def test_every_progress_field_round_trips(store: Store) -> None:
    """The row is written from the view's progress and read back into it by name, field for field."""
    record, state = start()
    late = late_state()
    assert all(getattr(late, name) != getattr(state, name) for name in OrderProgress.model_fields)
    await store.save_order(record_for(record.order, late, record.tracking_token))
    stored = await store.get_order("1001")
    assert stored is not None and stored.progress() == late.progress()


async def test_get_order_by_token(store: Store) -> None:
    await store.save_order(make_order("1001", token="a" * 32))
    await store.save_order(make_order("1002", token="b" * 32))
    found = await store.get_order_by_token("b" * 32)
    assert found is not None
    assert found.order_id == "1002"
    assert await store.get_order_by_token("c" * 32) is None


async def test_order_and_timeline_in_one_read(store: Store) -> None:
    await store.save_order(make_order("1001", token="a" * 32))
    order, timeline = await store.get_tracking("a" * 32)
    assert order is not None and order.order_id == "1001"
    assert [entry.seq for entry in timeline] == [entry.seq for entry in await store.get_timeline("1001")]
    assert timeline
    by_id, same = await store.get_order_with_timeline("1001")
    assert by_id == order and same == timeline
    assert await store.get_tracking("c" * 32) == (None, [])
    assert await store.get_order_with_timeline("404") == (None, [])


async def test_datetimes_come_back_aware_utc(store: Store) -> None:
    sao_paulo = timezone(timedelta(hours=-3))
    order = Order.model_validate(order_data(placed_at="2026-11-20T11:03:00-03:00"))
    record = record_for(order, on_start(order, TimingPolicy(), NOW.astimezone(sao_paulo)).state, "t" * 32)
    await store.save_order(record)
    stored = await store.get_order("1001")
    assert stored is not None
    assert stored.placed_at == datetime(2026, 11, 20, 14, 3, tzinfo=UTC)
    assert stored.status_since == NOW
    timeline = await store.get_timeline("1001")
    for value in (
        stored.placed_at,
        stored.status_since,
        stored.created_at,
        stored.updated_at,
        timeline[0].at,
    ):
        assert value.tzinfo is UTC


async def test_the_order_keeps_its_time_zone_and_a_change_fills_one_missing(store: Store) -> None:
    seoul, v1 = start("1001")
    await store.save_order(seoul.model_copy(update={"time_zone": "Asia/Seoul"}))
    older, w1 = start("1002")  # saved by a worker from before the read model kept a zone
    await store.save_order(older)
    assert [(o.order_id, o.time_zone) for o in await store.list_orders()] == [
        ("1002", None),
        ("1001", "Asia/Seoul"),
    ]

    w2 = fulfil(w1, FulfillmentEvent.PICKING_STARTED, 1)
    await store.record_change(change(older, w1, w2).model_copy(update={"time_zone": "America/Sao_Paulo"}))
    await store.record_change(change(seoul, v1, fulfil(v1, FulfillmentEvent.PICKING_STARTED, 1)))

    zones = {o.order_id: o.time_zone for o in await store.list_orders()}
    assert zones == {"1001": "Asia/Seoul", "1002": "America/Sao_Paulo"}  # a change without one keeps it


async def test_older_change_is_ignored_and_entries_land_once(store: Store) -> None:
    record, v1 = start(paid=False)
    v2 = fulfil(v1, FulfillmentEvent.PAYMENT_CONFIRMED, 1)
    v3 = fulfil(v2, FulfillmentEvent.PICKING_STARTED, 2)
    await store.save_order(record)
    assert await store.record_change(change(record, v2, v3)) is True
    assert await store.record_change(change(record, v1, v2)) is False
    stored = await store.get_order("1001")
    assert stored is not None
    assert (stored.status, stored.version, stored.status_since) == (OrderStatus.PICKING, 3, v3.status_since)
    assert await store.get_timeline("1001") == list(v3.timeline)


async def test_replayed_change_writes_nothing_twice(store: Store) -> None:
    record, v1 = start(paid=False)
    v2 = fulfil(v1, FulfillmentEvent.PAYMENT_CONFIRMED, 1)
    await store.save_order(record)
    assert await store.record_change(change(record, v1, v2)) is True
    assert await store.record_change(change(record, v1, v2)) is False
    assert [entry.seq for entry in await store.get_timeline("1001")] == [1, 2]


async def test_change_before_save_is_refused(store: Store) -> None:
    record, v1 = start(paid=False)
    v2 = fulfil(v1, FulfillmentEvent.PAYMENT_CONFIRMED, 1)
    with pytest.raises(NotFoundError, match="save_order"):
        await store.record_change(change(record, v1, v2))


async def test_address_change_lands_even_after_a_newer_status(store: Store) -> None:
    record, v1 = start(paid=False)
    new_address = record.order.shipping_address.model_copy(
        update={"city": "Campinas", "postal_code": "13010-000"}
    )
    request = AddressChangeRequest(address=new_address, reason="customer moved", operator="maria")
    v2 = on_address_change(v1, request, NOW + timedelta(minutes=1)).state
    v3 = fulfil(v2, FulfillmentEvent.PAYMENT_CONFIRMED, 2)
    await store.save_order(record)
    assert await store.record_change(change(record, v2, v3)) is True
    assert await store.record_change(change(record, v1, v2, address=new_address)) is True
    stored = await store.get_order("1001")
    assert stored is not None
    assert (stored.status, stored.version) == (OrderStatus.CONFIRMED, 3)
    assert (stored.shipping_address, stored.ship_city) == (new_address, "Campinas")
    assert [entry.seq for entry in await store.get_timeline("1001")] == [1, 2, 3]


# -- stamps: the read path's one lookup ------------------------------------------------------------


async def test_a_stamp_is_found_by_token_or_order_id(store: Store) -> None:
    record, v1 = start("1001", token="a" * 32)
    await store.save_order(record.model_copy(update={"time_zone": "Asia/Seoul"}))
    await store.save_order(make_order("1002", token="b" * 32))

    stamp = await store.tracking_stamp("a" * 32)

    assert stamp == Stamp(
        order_id="1001",
        version=v1.version,
        address_version=v1.version,
        entries=len(v1.timeline),
        locale="pt-BR",
        time_zone="Asia/Seoul",
    )
    assert await store.order_stamp("1001") == stamp
    assert (await store.order_stamp("1002"), await store.tracking_stamp("b" * 32)) == (
        await store.tracking_stamp("b" * 32),
        await store.order_stamp("1002"),
    )
    assert await store.tracking_stamp("c" * 32) is None
    assert await store.order_stamp("404") is None


async def test_a_stamp_moves_with_every_write_that_changes_what_an_order_shows(store: Store) -> None:
    record, v1 = start(paid=False)
    new_address = record.order.shipping_address.model_copy(update={"city": "Campinas"})
    request = AddressChangeRequest(address=new_address, reason="customer moved", operator="maria")
    v2 = on_address_change(v1, request, NOW + timedelta(minutes=1)).state
    v3 = fulfil(v2, FulfillmentEvent.PAYMENT_CONFIRMED, 2)
    await store.save_order(record)
    stamps = [await store.order_stamp("1001")]

    await store.record_change(change(record, v2, v3))  # the newer change lands first
    stamps.append(await store.order_stamp("1001"))
    await store.record_change(change(record, v1, v2, address=new_address))  # then the older one
    stamps.append(await store.order_stamp("1001"))
    await store.record_change(change(record, v1, v2, address=new_address))  # and again: no write
    stamps.append(await store.order_stamp("1001"))

    # The older change leaves the version alone, but its address and its entry still land.
    assert [(s.version, s.address_version, s.entries) for s in stamps if s] == [
        (1, 1, 1),
        (3, 1, 2),
        (3, 2, 3),
        (3, 2, 3),
    ]


async def test_the_stamp_is_read_on_the_raw_driver_as_the_engine_reads_it(
    store: Store, database_url: str
) -> None:
    await store.save_order(make_order("1001", token="a" * 32))
    engine = create_engine(database_url)
    try:
        raw = stamp_reader(engine)
        assert type(raw).__name__ == ("_SqliteStamps" if "sqlite" in database_url else "_AsyncpgStamps")
        try:
            for query, key in ((BY_TOKEN, "a" * 32), (BY_ORDER_ID, "1001"), (BY_TOKEN, "b" * 32)):
                assert await raw.read(query, key) == await _EngineStamps(engine).read(query, key)
        finally:
            await raw.close()
    finally:
        await engine.dispose()
    in_memory = create_engine("sqlite+aiosqlite:///:memory:")
    assert type(stamp_reader(in_memory)).__name__ == "_EngineStamps"  # no other connection sees it
    await in_memory.dispose()


async def test_concurrent_stamps_are_each_answered_as_if_read_alone(store: Store, database_url: str) -> None:
    """Concurrent requests share queries on PostgreSQL (`= ANY`): each still gets its own key's
    stamp, also for repeated and unknown keys, and a write before a request is seen by it."""
    for number in range(1, 20):
        await store.save_order(make_order(f"{1000 + number}", token=f"{number:032d}"))
    record, before = start(paid=False)  # order 1001 again, unpaid: a first version to change
    await store.save_order(record)
    asked = [(BY_TOKEN, f"{n % 25:032d}") for n in range(60)] + [
        (BY_ORDER_ID, f"{1000 + n}") for n in range(25)
    ]
    engine = create_engine(database_url)
    reader = stamp_reader(engine)
    try:
        alone = [await _EngineStamps(engine).read(query, key) for query, key in asked]
        together = await asyncio.gather(*(reader.read(query, key) for query, key in asked))
        assert together == alone
        assert None in together
        assert {stamp.order_id for stamp in together if stamp} == {f"{1000 + n}" for n in range(1, 20)}
        await store.record_change(
            change(record, before, fulfil(before, FulfillmentEvent.PAYMENT_CONFIRMED, 1))
        )
        stamps = await asyncio.gather(*(reader.read(BY_ORDER_ID, "1001") for _ in range(3)))
        assert stamps == [await store.order_stamp("1001")] * 3
        assert stamps[0] is not None and stamps[0].version == 2
    finally:
        await reader.close()
        await engine.dispose()


async def test_concurrent_stamps_fail_together_when_the_database_is_unreachable() -> None:
    engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:9/nothing")
    reader = stamp_reader(engine)
    try:
        answers = await asyncio.gather(
            *(reader.read(BY_TOKEN, f"{n:032d}") for n in range(5)), return_exceptions=True
        )
        assert all(isinstance(answer, OSError) for answer in answers), answers
    finally:
        await reader.close()
        await engine.dispose()


async def test_a_burst_of_concurrent_writes_all_land(store: Store) -> None:
    """Hundreds of orders saved and changed at once, as a worker does when a backlog of orders
    starts: each write lands once (on SQLite they take turns instead of failing on the lock)."""
    started = [start(f"{2000 + number}", paid=False) for number in range(100)]
    saved = await asyncio.gather(*(store.save_order(record) for record, _ in started))
    paid = [fulfil(state, FulfillmentEvent.PAYMENT_CONFIRMED, 1) for _, state in started]
    changed = await asyncio.gather(
        *(
            store.record_change(change(record, state, after))
            for (record, state), after in zip(started, paid, strict=True)
        )
    )
    assert saved == [True] * 100 and changed == [True] * 100
    stamps = await asyncio.gather(*(store.order_stamp(f"{2000 + number}") for number in range(100)))
    assert {(stamp.version, stamp.entries) for stamp in stamps if stamp} == {(2, 2)}


class LockedConnection:
    """A sqlite3 connection that meets a lock, as one may during a checkpoint or a recovery."""

    def execute(self, *args: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    def close(self) -> None:
        pass


async def test_a_sqlite_stamp_that_meets_a_lock_waits_for_it_off_the_event_loop(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'ordertrack.db'}"
    await migrate(database_url)
    store = Store.from_url(database_url)
    try:
        await store.save_order(make_order("1001", token="a" * 32))
        engine = create_engine(database_url)
        reader = stamp_reader(engine)
        reader._connection = LockedConnection()  # type: ignore[attr-defined]
        try:
            assert await reader.read(BY_TOKEN, "a" * 32) == await store.tracking_stamp("a" * 32)
        finally:
            await reader.close()
            await engine.dispose()
    finally:
        await store.close()


async def test_list_orders_filters_by_status_newest_first(store: Store) -> None:
    await store.save_order(make_order("1001"))
    await store.save_order(make_order("1002", paid=False))
    await store.save_order(make_order("1003"))
    assert [o.order_id for o in await store.list_orders()] == ["1003", "1002", "1001"]
    confirmed = OrderFilter(statuses=(OrderStatus.CONFIRMED,))
    assert [o.order_id for o in await store.list_orders(confirmed)] == ["1003", "1001"]
    received = OrderFilter(statuses=(OrderStatus.RECEIVED,))
    assert [o.order_id for o in await store.list_orders(received)] == ["1002"]
    either = OrderFilter(statuses=(OrderStatus.RECEIVED, OrderStatus.CONFIRMED))
    assert [o.order_id for o in await store.list_orders(either)] == ["1003", "1002", "1001"]
    assert [o.order_id for o in await store.list_orders(limit=1)] == ["1003"]


async def test_list_orders_filters_by_each_field(store: Store) -> None:
    record, state = start("1001")
    await store.save_order(record)
    label = FulfillmentUpdate(
        event=FulfillmentEvent.SHIPPED, carrier="simulated", tracking_number="SIM-ONTIME-1001"
    )
    shipped = on_fulfillment(state, label, NOW).state.model_copy(update={"delayed": True})
    await store.record_change(change(record, state, shipped))
    other = make_order("1002")
    await store.save_order(other.model_copy(update={"order": other.order.model_copy(update={
        "customer": other.order.customer.model_copy(update={"email": "Bea@Example.com"})
    })}))  # fmt: skip

    async def ids(**where: object) -> list[str]:
        return [o.order_id for o in await store.list_orders(OrderFilter(**where))]  # type: ignore[arg-type]

    assert await ids(delayed=True) == ["1001"] and await ids(delayed=False) == ["1002"]
    assert await ids(carrier="simulated") == ["1001"]
    assert await ids(tracking_number="SIM-ONTIME-1001") == ["1001"] and await ids(tracking_number="x") == []
    assert await ids(email="bea@example.COM") == ["1002"]  # any case
    assert await ids(email="bea@example") == []  # exact, not a prefix
    first = await store.get_order("1001")
    assert first is not None
    assert await ids(created_since=first.created_at) == ["1002", "1001"]
    assert await ids(created_until=first.created_at) == []
    assert await ids(statuses=(OrderStatus.SHIPPED,), email=record.order.customer.email) == ["1001"]


async def test_paging_by_cursor_is_stable_while_orders_are_added(store: Store) -> None:
    for n in range(1, 6):
        await store.save_order(make_order(f"100{n}"))
    first = await store.list_orders(limit=2)
    assert [o.order_id for o in first] == ["1005", "1004"]
    await store.save_order(make_order("1006"))  # newer than every cursor handed out
    last = first[-1]
    second = await store.list_orders(limit=2, after=OrderCursor(last.created_at, last.order_id))
    assert [o.order_id for o in second] == ["1003", "1002"]
    last = second[-1]
    third = await store.list_orders(limit=2, after=OrderCursor(last.created_at, last.order_id))
    assert [o.order_id for o in third] == ["1001"]


# -- notifications ----------------------------------------------------------------------------

SHIPPED = NotificationKey("1001", "email", "shipped", "shipped:N1")


def claim(
    key: NotificationKey = SHIPPED, message_id: str = "<m@ordertrack>"
) -> tuple[NotificationKey, str, str]:
    return key, message_id, "ana@example.com"


async def test_claim_counts_attempts_on_one_row(store: Store, database_url: str) -> None:
    first = await store.claim_notification(*claim())
    assert (first.status, first.attempts, first.channel) == ("sending", 1, "email")
    second = await store.claim_notification(*claim())
    assert (second.status, second.attempts) == ("sending", 2)
    assert second.created_at == first.created_at
    assert await count(database_url, notifications) == 1


async def test_each_channel_has_its_own_row(store: Store) -> None:
    sms = NotificationKey("1001", "sms", "shipped", "shipped:N1")
    await store.claim_notification(*claim())
    await store.mark_notification_sent(SHIPPED, "250 Ok")
    texted = await store.claim_notification(sms, "sms-1", "+5511999990000")
    assert (texted.status, texted.attempts, texted.recipient) == ("sending", 1, "+5511999990000")
    await store.mark_notification_sent(sms, "SM1 queued")
    rows = await store.list_notifications("1001")
    assert [(row.channel, row.status, row.server_reply) for row in rows] == [
        ("email", "sent", "250 Ok"),
        ("sms", "sent", "SM1 queued"),
    ]


async def test_sent_notification_stays_sent(store: Store) -> None:
    await store.claim_notification(*claim())
    await store.mark_notification_sent(SHIPPED, "250 2.0.0 Ok: queued")
    again = await store.claim_notification(*claim())
    assert (again.status, again.attempts, again.server_reply) == ("sent", 1, "250 2.0.0 Ok: queued")
    assert again.sent_at is not None
    assert again.sent_at.tzinfo is UTC
    await store.mark_notification_failed(SHIPPED, "late timeout")
    [row] = await store.list_notifications("1001")
    assert (row.status, row.last_error) == ("sent", None)


async def test_failed_notification_is_claimed_again(store: Store) -> None:
    await store.claim_notification(*claim())
    await store.mark_notification_failed(SHIPPED, "421 try again later")
    [failed] = await store.list_notifications("1001")
    assert (failed.status, failed.last_error) == ("failed", "421 try again later")
    retried = await store.claim_notification(*claim())
    assert (retried.status, retried.attempts, retried.message_id) == ("sending", 2, "<m@ordertrack>")


async def test_delivering_notification_is_not_claimed_again(store: Store) -> None:
    await store.claim_notification(*claim())
    await store.mark_notification_delivering(SHIPPED)
    again = await store.claim_notification(*claim())
    assert (again.status, again.attempts, again.sent_at) == ("delivering", 1, None)
    await store.mark_notification_sent(SHIPPED, "250 Ok")
    [row] = await store.list_notifications("1001")
    assert (row.status, row.server_reply) == ("sent", "250 Ok")


async def test_unconfirmed_notification_is_not_claimed_again(store: Store) -> None:
    await store.claim_notification(*claim())
    await store.mark_notification_delivering(SHIPPED)
    await store.mark_notification_unconfirmed(SHIPPED, "attempt 1 stopped")
    again = await store.claim_notification(*claim())
    assert (again.status, again.attempts, again.server_reply) == ("unconfirmed", 1, "attempt 1 stopped")
    assert again.sent_at is not None and again.sent_at.tzinfo is UTC


async def test_suppressed_notification_is_not_claimed_again(store: Store) -> None:
    await store.claim_notification(*claim())
    await store.mark_notification_suppressed(SHIPPED, "the recipient unsubscribed")
    again = await store.claim_notification(*claim())
    assert (again.status, again.attempts, again.server_reply) == (
        "suppressed",
        1,
        "the recipient unsubscribed",
    )
    assert again.sent_at is None


async def test_only_a_sending_notification_becomes_delivering(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.mark_notification_delivering(SHIPPED)
    await store.claim_notification(*claim())
    await store.mark_notification_delivering(SHIPPED)
    with pytest.raises(NotificationStateError, match="'delivering', not 'sending'"):
        await store.mark_notification_delivering(SHIPPED)


async def test_failed_delivery_is_claimed_as_sending_again(store: Store) -> None:
    await store.claim_notification(*claim())
    await store.mark_notification_delivering(SHIPPED)
    await store.mark_notification_failed(SHIPPED, "554 rejected")
    retried = await store.claim_notification(*claim())
    assert (retried.status, retried.attempts, retried.last_error) == ("sending", 2, "554 rejected")


async def test_marking_an_unclaimed_notification_fails(store: Store) -> None:
    with pytest.raises(NotFoundError, match="email shipped/shipped:N1 for order '1001'"):
        await store.mark_notification_sent(SHIPPED, "250 Ok")


async def test_list_notifications_in_claim_order_with_every_column(store: Store) -> None:
    await store.claim_notification(NotificationKey("1001", "email", "confirmation", "c"), "<a@x>", "a@x.com")
    await store.claim_notification(NotificationKey("1001", "sms", "shipped", "s"), "sms-b", "+5511999990000")
    await store.claim_notification(NotificationKey("1002", "email", "confirmation", "c"), "<c@x>", "b@x.com")
    rows = await store.list_notifications("1001")
    assert [(row.channel, row.kind) for row in rows] == [("email", "confirmation"), ("sms", "shipped")]
    assert set(rows[0].model_dump()) == {
        "order_id", "channel", "kind", "dedupe_key", "message_id", "recipient", "status", "attempts",
        "last_error", "server_reply", "created_at", "sent_at",
    }  # fmt: skip


# -- unsubscribes -----------------------------------------------------------------------------


async def test_unsubscribe_token_is_stable_per_address(store: Store) -> None:
    token = await store.unsubscribe_token_for("Ana@Example.com")
    assert len(token) == 32
    assert await store.unsubscribe_token_for("ana@example.com") == token
    assert await store.unsubscribe_token_for("bo@example.com") != token


async def test_concurrent_token_requests_agree(store: Store, database_url: str) -> None:
    tokens = await asyncio.gather(*(store.unsubscribe_token_for("ana@example.com") for _ in range(5)))
    assert len(set(tokens)) == 1
    assert await count(database_url, mail_recipients) == 1


async def test_unsubscribe_is_idempotent_and_honoured_for_the_address(store: Store) -> None:
    token = await store.unsubscribe_token_for("ana@example.com")
    assert not await store.is_unsubscribed("ana@example.com")
    assert await store.unsubscribe(token, "1001") == "ana@example.com"
    first = await store.get_mail_recipient(token)
    assert await store.unsubscribe(token, "1002") == "ana@example.com"
    assert await store.get_mail_recipient(token) == first
    assert first is not None and first.unsubscribed_order_id == "1001"
    assert first.unsubscribed_at is not None and first.unsubscribed_at.tzinfo is UTC
    assert await store.is_unsubscribed("ANA@example.com")
    assert not await store.is_unsubscribed("bo@example.com")


async def test_an_unknown_token_unsubscribes_nobody(store: Store) -> None:
    await store.unsubscribe_token_for("ana@example.com")
    assert await store.unsubscribe("x" * 32) is None
    assert await store.get_mail_recipient("x" * 32) is None
    assert not await store.is_unsubscribed("ana@example.com")


# -- activities -------------------------------------------------------------------------------


async def test_store_activities_write_through(store: Store) -> None:
    activities = StoreActivities(store)
    env = ActivityEnvironment()
    record, v1 = start(paid=False)
    await env.run(activities.save_order, record)
    await env.run(activities.save_order, record)
    await env.run(
        activities.record_change, change(record, v1, fulfil(v1, FulfillmentEvent.PAYMENT_CONFIRMED, 1))
    )
    stored = await store.get_order("1001")
    assert stored is not None
    assert (stored.status, stored.version) == (OrderStatus.CONFIRMED, 2)
