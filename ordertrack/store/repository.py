"""The read model's reads and writes; every write is idempotent, so activity retries are harmless."""

import asyncio
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy import ColumnElement, Select, case, delete, exists, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ordertrack.domain.carrier_report import Shipment
from ordertrack.domain.machine import estimate_deadline
from ordertrack.domain.models import Address, Item
from ordertrack.domain.progress import KeyedProgress
from ordertrack.domain.records import ChangeRecord, OrderRecord
from ordertrack.domain.statuses import OrderStatus
from ordertrack.domain.timeline import EntryKind, TimelineEntry
from ordertrack.domain.view import OrderView
from ordertrack.store.engine import BEGIN_IMMEDIATE, create_engine
from ordertrack.store.stamps import BY_ORDER_ID, BY_TOKEN, Stamp, stamp_reader
from ordertrack.store.tables import (
    UTCDateTime,
    lookup_attempts,
    mail_recipients,
    notifications,
    orders,
    timeline_events,
)

# sending: claimed, nothing handed over yet (safe to retry); delivering: the message is about to go
# out (SMTP DATA, the SMS request), so a crash leaves the outcome unknown; unconfirmed: an attempt
# died while handing it over and was not resent; failed: refused, or the connection failed before
# the hand-over (safe to retry); suppressed: not sent because the recipient unsubscribed.
NotificationStatus = Literal["sending", "delivering", "sent", "unconfirmed", "failed", "suppressed"]
# Only these are claimed (moved to `sending`) again; the others are returned as they are.
_CLAIMABLE = ("sending", "failed")
# An order in these has been delivered (`completed` without a delivery entry never was).
_DELIVERED_NOW = (OrderStatus.DELIVERED.value, OrderStatus.COMPLETED.value)


@dataclass(frozen=True)
class OrderFilter:
    """Which orders to list; every given field must match (statuses: any of them)."""

    statuses: tuple[OrderStatus, ...] = ()
    delayed: bool | None = None
    carrier: str | None = None
    created_since: datetime | None = None
    created_until: datetime | None = None  # exclusive
    tracking_number: str | None = None
    email: str | None = None  # the customer's, compared without case (indexed on lower())

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.statuses:
            found.append(orders.c.status.in_([status.value for status in self.statuses]))
        if self.delayed is not None:
            found.append(orders.c.delayed.is_(self.delayed))
        if self.carrier is not None:
            found.append(orders.c.carrier == self.carrier)
        if self.created_since is not None:
            found.append(orders.c.created_at >= self.created_since)
        if self.created_until is not None:
            found.append(orders.c.created_at < self.created_until)
        if self.tracking_number is not None:
            found.append(orders.c.tracking_number == self.tracking_number)
        if self.email is not None:
            found.append(func.lower(orders.c.customer_email) == self.email.lower())
        return found


@dataclass(frozen=True)
class OrderCursor:
    """Where a page of `list_orders` ended: its last order's creation time and id."""

    created_at: datetime
    order_id: str


class NotFoundError(LookupError):
    """A write refers to a row that is not there (a change recorded before its order was saved)."""


class NotificationStateError(RuntimeError):
    """A notification is not in the status a step requires (another attempt moved it on)."""


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StoredOrder(KeyedProgress, _Row):
    """One order as the read model holds it: the latest view plus the order's customer-facing facts."""

    workflow_id: str
    tracking_token: str
    version: int
    customer_name: str
    customer_email: str
    locale: str
    time_zone: str | None  # IANA name; None on rows written before the read model kept it
    ship_city: str
    ship_country: str
    shipping_address: Address
    items: tuple[Item, ...]
    currency: str
    total: Decimal
    placed_at: AwareDatetime
    created_at: AwareDatetime
    updated_at: AwareDatetime


@dataclass(frozen=True)
class NotificationKey:
    """One customer message: at most one row, and so at most one send, per key."""

    order_id: str
    channel: str
    kind: str
    dedupe_key: str

    def __str__(self) -> str:
        return f"{self.channel} {self.kind}/{self.dedupe_key} for order {self.order_id!r}"

    def columns(self) -> dict[str, str]:
        return asdict(self)

    def conditions(self) -> tuple[ColumnElement[bool], ...]:
        return tuple(notifications.c[name] == value for name, value in self.columns().items())


class NotificationRow(_Row):
    """One customer message's delivery record; it is sent only after being claimed as `sending`."""

    order_id: str
    channel: str
    kind: str
    dedupe_key: str
    message_id: str
    recipient: str
    status: NotificationStatus
    attempts: int
    last_error: str | None
    server_reply: str | None
    created_at: AwareDatetime
    sent_at: AwareDatetime | None


class MailRecipient(_Row):
    """An address we put an unsubscribe link in front of, and whether it has used it."""

    email: str
    unsubscribe_token: str
    unsubscribed_at: AwareDatetime | None
    unsubscribed_order_id: str | None


_ORDER_COLUMNS = [orders.c[name] for name in StoredOrder.model_fields]
_ENTRY_COLUMNS = [timeline_events.c[name] for name in TimelineEntry.model_fields]
_NOTIFICATION_COLUMNS = [notifications.c[name] for name in NotificationRow.model_fields]
_RECIPIENT_COLUMNS = [mail_recipients.c[name] for name in MailRecipient.model_fields]


def _now() -> datetime:
    return datetime.now(UTC)


def _view_columns(view: OrderView) -> dict[str, Any]:
    """The row's columns that follow the view: its progress, version and tracking token (an
    operator may have rotated it); the timeline has its own table."""
    return {**view.progress(), "tracking_token": view.tracking_token, "version": view.version}


def _promised_by(view: OrderView) -> datetime | None:
    """When the view's estimate counts as missed (a date-only estimate lasts all day, in its own
    offset, so this is worked out before the store turns times into UTC)."""
    return estimate_deadline(view.estimated_delivery) if view.estimated_delivery else None


def _address_columns(address: Address) -> dict[str, Any]:
    return {
        "shipping_address": address.model_dump(mode="json"),
        "ship_city": address.city,
        "ship_country": address.country,
    }


async def _exists(conn: AsyncConnection, *conditions: ColumnElement[bool]) -> bool:
    return bool(await conn.scalar(select(exists().where(*conditions))))


def _entry_rows(order_id: str, entries: tuple[TimelineEntry, ...]) -> list[dict[str, Any]]:
    return [{"order_id": order_id, **entry.model_dump(mode="python")} for entry in entries]


def _address(email: str) -> str:
    """Addresses compare without case, as mailbox providers treat them."""
    return email.strip().lower()


class Store:
    """The read model over one engine; SQLite and PostgreSQL behave the same."""

    def __init__(self, engine: AsyncEngine) -> None:
        dialect = engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {dialect!r}: use sqlite+aiosqlite or postgresql+asyncpg")
        self._engine = engine
        # Both dialects' INSERT ... ON CONFLICT builders share one API.
        self._insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        self._stamps = stamp_reader(engine)
        # SQLite has one writer at a time: this process's writes take turns here (see `_writing`).
        self._write_turn = asyncio.Lock() if dialect == "sqlite" else None
        self._write_engine = engine.execution_options(**{BEGIN_IMMEDIATE: True})

    @classmethod
    def from_url(cls, database_url: str) -> "Store":
        return cls(create_engine(database_url))

    async def ping(self) -> None:
        """Raise when the database cannot answer (for health checks)."""
        async with self._engine.connect() as conn:
            await conn.execute(select(1))

    async def close(self) -> None:
        await self._stamps.close()
        await self._engine.dispose()

    # -- orders --------------------------------------------------------------------------------

    async def save_order(self, record: OrderRecord) -> bool:
        """Insert the order and its first timeline entries unless present; True when this call created it."""
        order, view, now = record.order, record.view, _now()
        row = {
            "order_id": order.order_id,
            "workflow_id": record.workflow_id,
            "tracking_token": record.tracking_token,
            **_view_columns(view),
            "address_version": view.version,
            "customer_name": order.customer.name,
            "customer_email": order.customer.email,
            "locale": order.customer.locale,
            "time_zone": record.time_zone,
            "promised_by": _promised_by(view),
            **_address_columns(order.shipping_address),
            "items": [item.model_dump(mode="json") for item in order.items],
            "currency": order.currency,
            "total": order.total,
            "placed_at": order.placed_at,
            "created_at": now,
            "updated_at": now,
        }
        async with self._writing() as conn:
            inserted = await conn.execute(
                self._insert(orders)
                .values(row)
                # No conflict target: racing inserts of one order may collide on the tracking-token
                # index before the primary key, and either way the order is already there.
                .on_conflict_do_nothing()
                .returning(orders.c.order_id)
            )
            if inserted.first() is None:
                return False
            await self._insert_entries(conn, order.order_id, view.timeline)
        return True

    async def record_change(self, record: ChangeRecord) -> bool:
        """Apply a change if it is newer than the stored one; entries are inserted once either way.

        Each guard is a single conditional UPDATE, so concurrent or out-of-order writes cannot move
        the row backwards. Returns True when the row was updated.
        """
        view, now = record.view, _now()
        zone = {"time_zone": record.time_zone} if record.time_zone else {}
        # The first estimate is the promise the carrier report judges by: kept once set.
        promised_by = _promised_by(view)
        promise = (
            {"promised_by": func.coalesce(orders.c.promised_by, literal(promised_by, UTCDateTime()))}
            if promised_by
            else {}
        )
        async with self._writing() as conn:
            result = await conn.execute(
                update(orders)
                .where(orders.c.order_id == view.order_id, orders.c.version < view.version)
                .values(**_view_columns(view), **zone, **promise, updated_at=now)
            )
            updated = result.rowcount > 0
            if record.shipping_address is not None:
                result = await conn.execute(
                    update(orders)
                    .where(orders.c.order_id == view.order_id, orders.c.address_version < view.version)
                    .values(
                        **_address_columns(record.shipping_address),
                        address_version=view.version,
                        updated_at=now,
                    )
                )
                updated = updated or result.rowcount > 0
            if not updated and not await _exists(conn, orders.c.order_id == view.order_id):
                raise NotFoundError(
                    f"order {view.order_id!r} is not in the read model (save_order runs before record_change)"
                )
            await self._insert_entries(conn, view.order_id, record.entries)
        return updated

    async def get_order(self, order_id: str) -> StoredOrder | None:
        return await self._one_order(orders.c.order_id == order_id)

    async def get_order_by_token(self, token: str) -> StoredOrder | None:
        return await self._one_order(orders.c.tracking_token == token)

    async def find_order_by_tracking_number(self, number: str) -> StoredOrder | None:
        """The order shipped under a carrier's tracking number (indexed); the newest if several were."""
        query = (
            select(*_ORDER_COLUMNS)
            .where(orders.c.tracking_number == number)
            .order_by(orders.c.created_at.desc(), orders.c.order_id.desc())
            .limit(1)
        )
        rows = await self._fetch(query)
        return StoredOrder.model_validate(rows[0]) if rows else None

    async def get_tracking(self, token: str) -> tuple[StoredOrder | None, list[TimelineEntry]]:
        """The order behind a tracking token and its timeline, on one connection (the page's read).

        A miss runs the same two queries as a hit, so timing does not tell them apart.
        """
        return await self._order_with_timeline(orders.c.tracking_token == token)

    async def tracking_stamp(self, token: str) -> Stamp | None:
        """The stamp of the order behind a tracking token: one indexed lookup on the raw driver, the
        tracking page's only read while the order is unchanged (`ordertrack.store.stamps`)."""
        return await self._stamps.read(BY_TOKEN, token)

    async def order_stamp(self, order_id: str) -> Stamp | None:
        """The stamp of an order by its id, as `tracking_stamp` (the API's read)."""
        return await self._stamps.read(BY_ORDER_ID, order_id)

    async def get_order_with_timeline(self, order_id: str) -> tuple[StoredOrder | None, list[TimelineEntry]]:
        return await self._order_with_timeline(orders.c.order_id == order_id)

    async def _order_with_timeline(
        self, condition: ColumnElement[bool]
    ) -> tuple[StoredOrder | None, list[TimelineEntry]]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(*_ORDER_COLUMNS).where(condition))).mappings().all()
            order = StoredOrder.model_validate(rows[0]) if rows else None
            query = select(*_ENTRY_COLUMNS).where(
                timeline_events.c.order_id == (order.order_id if order else "")
            )
            entries = (await conn.execute(query.order_by(timeline_events.c.seq))).mappings().all()
        return order, [TimelineEntry.model_validate(row) for row in entries]

    async def get_timeline(self, order_id: str) -> list[TimelineEntry]:
        query = select(*_ENTRY_COLUMNS).where(timeline_events.c.order_id == order_id)
        rows = await self._fetch(query.order_by(timeline_events.c.seq))
        return [TimelineEntry.model_validate(row) for row in rows]

    async def list_orders(
        self, where: OrderFilter | None = None, limit: int = 100, after: OrderCursor | None = None
    ) -> list[StoredOrder]:
        """Newest first (creation time, then order id), those matching `where`, from just past `after`.

        Paging by the last row's (created_at, order_id) rather than an offset keeps pages stable while
        orders are added: a new order sorts before every cursor already handed out."""
        query = select(*_ORDER_COLUMNS).where(*(where or OrderFilter()).conditions())
        if after is not None:
            query = query.where(
                (orders.c.created_at < after.created_at)
                | ((orders.c.created_at == after.created_at) & (orders.c.order_id < after.order_id))
            )
        query = query.order_by(orders.c.created_at.desc(), orders.c.order_id.desc()).limit(limit)
        return [StoredOrder.model_validate(row) for row in await self._fetch(query)]

    async def shipments(self, since: datetime, until: datetime) -> list[Shipment]:
        """The orders first shipped in [since, until) with a carrier, one row each, for the carrier
        report (`ordertrack.domain.carrier_report`): an index range on `shipped_at`, and each
        order's status entries by its key."""
        entry_status = timeline_events.c.status

        def entered(status: OrderStatus) -> ColumnElement[int]:
            return func.coalesce(func.sum(case((entry_status == status.value, 1), else_=0)), 0)

        joined = orders.outerjoin(
            timeline_events,
            (timeline_events.c.order_id == orders.c.order_id)
            & (timeline_events.c.kind == EntryKind.STATUS.value),
        )
        o = orders.c
        keys = (o.order_id, o.carrier, o.status, o.shipped_at, o.promised_by)
        query = (
            select(
                *keys,
                func.max(case((entry_status == OrderStatus.DELIVERED.value, timeline_events.c.at))).label(
                    "delivered_at"
                ),
                entered(OrderStatus.DELIVERY_FAILED).label("failed_attempts"),
                entered(OrderStatus.EXCEPTION).label("exceptions"),
            )
            .select_from(joined)
            .where(orders.c.shipped_at >= since, orders.c.shipped_at < until, orders.c.carrier.is_not(None))
            .group_by(*keys)
        )
        return [
            Shipment(
                carrier=row["carrier"],
                shipped_at=row["shipped_at"],
                promised_by=row["promised_by"],
                delivered_at=row["delivered_at"] if row["status"] in _DELIVERED_NOW else None,
                failed_attempts=int(row["failed_attempts"]),
                exceptions=int(row["exceptions"]),
                lost=row["status"] == OrderStatus.LOST.value,
            )
            for row in await self._fetch(query)
        ]

    # -- the lookup form's rate limit --------------------------------------------------------------

    async def lookup_attempt(
        self, client: str, window: timedelta, attempts: int, now: datetime
    ) -> float | None:
        """Count one lookup by `client` (an opaque key) unless it already made `attempts` within
        `window`: None when allowed, else the seconds until its oldest attempt leaves the window.
        Expired attempts of every client are dropped on the way, so the table stays small."""
        since = now - window
        async with self._writing() as conn:
            await conn.execute(delete(lookup_attempts).where(lookup_attempts.c.at <= since))
            recent = (
                select(lookup_attempts.c.at)
                .where(lookup_attempts.c.client == client, lookup_attempts.c.at > since)
                .order_by(lookup_attempts.c.at)
            )
            seen = [row.at for row in await conn.execute(recent)]
            if len(seen) >= attempts:
                oldest = seen[len(seen) - attempts]
                return max((oldest + window - now).total_seconds(), 1.0)
            await conn.execute(lookup_attempts.insert().values(client=client, at=now))
        return None

    # -- notifications ------------------------------------------------------------------------

    async def claim_notification(
        self, key: NotificationKey, message_id: str, recipient: str
    ) -> NotificationRow:
        """Start (or retry) one message: a new row is `sending` with 1 attempt; a `sending` or `failed`
        one counts another attempt and is `sending` again. A `delivering`, `unconfirmed`, `sent` or
        `suppressed` one is left alone: its message may already be with the customer, or must not go.
        Returns the row as it is now.
        """
        claim = (
            self._insert(notifications)
            .values(
                **key.columns(),
                message_id=message_id,
                recipient=recipient,
                status="sending",
                attempts=1,
                created_at=_now(),
            )
            .on_conflict_do_update(
                index_elements=list(key.columns()),
                set_={"status": "sending", "attempts": notifications.c.attempts + 1},
                where=notifications.c.status.in_(_CLAIMABLE),
            )
        )
        async with self._writing() as conn:
            await conn.execute(claim)
            query = select(*_NOTIFICATION_COLUMNS).filter_by(**key.columns())
            row = (await conn.execute(query)).mappings().one()
        return NotificationRow.model_validate(row)

    async def mark_notification_delivering(self, key: NotificationKey) -> None:
        """Record that the message is about to go out (SMTP DATA, the SMS request); only a `sending` row
        moves.

        Raises NotFoundError without a claimed row, and NotificationStateError when the row is in
        another status (a concurrent attempt got there first), so that this attempt sends nothing.
        """
        async with self._writing() as conn:
            result = await conn.execute(
                update(notifications)
                .where(*key.conditions(), notifications.c.status == "sending")
                .values(status="delivering")
            )
            if result.rowcount == 0:
                status = await conn.scalar(select(notifications.c.status).where(*key.conditions()))
                if status is None:
                    raise NotFoundError(f"no notification {key} was claimed")
                raise NotificationStateError(f"notification {key} is {status!r}, not 'sending'")

    async def mark_notification_unconfirmed(self, key: NotificationKey, note: str) -> None:
        """Record that an attempt may or may not have delivered and was not resent; `note` says why."""
        await self._mark(key, status="unconfirmed", server_reply=note, sent_at=_now())

    async def mark_notification_sent(self, key: NotificationKey, server_reply: str) -> None:
        """The provider accepted the message (from `sending` or `delivering`, or any status not `sent`)."""
        await self._mark(key, status="sent", server_reply=server_reply, sent_at=_now())

    async def mark_notification_failed(self, key: NotificationKey, error: str) -> None:
        """Record a failed attempt; the next claim retries it. A message already sent stays sent."""
        await self._mark(key, status="failed", last_error=error)

    async def mark_notification_suppressed(self, key: NotificationKey, note: str) -> None:
        """Record that a claimed message is not sent (the recipient unsubscribed); never claimed again."""
        await self._mark(key, status="suppressed", server_reply=note)

    async def list_notifications(self, order_id: str) -> list[NotificationRow]:
        """The order's messages on every channel, in the order they were first claimed."""
        query = select(*_NOTIFICATION_COLUMNS).where(notifications.c.order_id == order_id)
        query = query.order_by(
            notifications.c.created_at,
            notifications.c.channel,
            notifications.c.kind,
            notifications.c.dedupe_key,
        )
        return [NotificationRow.model_validate(row) for row in await self._fetch(query)]

    # -- unsubscribes ---------------------------------------------------------------------------

    async def unsubscribe_token_for(self, email: str) -> str:
        """The address's unsubscribe token, created on first use; concurrent callers get the same one."""
        address = _address(email)
        async with self._writing() as conn:
            await conn.execute(
                self._insert(mail_recipients)
                .values(email=address, unsubscribe_token=secrets.token_urlsafe(24), created_at=_now())
                .on_conflict_do_nothing(index_elements=[mail_recipients.c.email])
            )
            token = await conn.scalar(
                select(mail_recipients.c.unsubscribe_token).where(mail_recipients.c.email == address)
            )
        return str(token)  # inserted above, or by whoever won the race: rows are never deleted

    async def get_mail_recipient(self, token: str) -> MailRecipient | None:
        rows = await self._fetch(
            select(*_RECIPIENT_COLUMNS).where(mail_recipients.c.unsubscribe_token == token)
        )
        return MailRecipient.model_validate(rows[0]) if rows else None

    async def unsubscribe(self, token: str, order_id: str | None = None) -> str | None:
        """Unsubscribe the token's address from marketing mail; returns the address, or None for an
        unknown token. Repeating it changes nothing: the first time and order are kept."""
        by_token = mail_recipients.c.unsubscribe_token == token
        async with self._writing() as conn:
            await conn.execute(
                update(mail_recipients)
                .where(by_token, mail_recipients.c.unsubscribed_at.is_(None))
                .values(unsubscribed_at=_now(), unsubscribed_order_id=order_id)
            )
            email = await conn.scalar(select(mail_recipients.c.email).where(by_token))
        return None if email is None else str(email)

    async def is_unsubscribed(self, email: str) -> bool:
        async with self._engine.connect() as conn:
            return await _exists(
                conn,
                mail_recipients.c.email == _address(email),
                mail_recipients.c.unsubscribed_at.is_not(None),
            )

    # -- helpers ------------------------------------------------------------------------------

    async def _insert_entries(
        self, conn: AsyncConnection, order_id: str, entries: tuple[TimelineEntry, ...]
    ) -> None:
        if entries:
            await conn.execute(
                self._insert(timeline_events).on_conflict_do_nothing(
                    index_elements=[timeline_events.c.order_id, timeline_events.c.seq]
                ),
                _entry_rows(order_id, entries),
            )
        shipped = [e.at for e in entries if e.kind == EntryKind.STATUS and e.status == OrderStatus.SHIPPED]
        if shipped:  # the first time only: an operator may set `shipped` again later
            await conn.execute(
                update(orders)
                .where(orders.c.order_id == order_id, orders.c.shipped_at.is_(None))
                .values(shipped_at=min(shipped))
            )

    async def _one_order(self, condition: ColumnElement[bool]) -> StoredOrder | None:
        rows = await self._fetch(select(*_ORDER_COLUMNS).where(condition))
        return StoredOrder.model_validate(rows[0]) if rows else None

    async def _fetch(self, query: Select[Any]) -> list[Mapping[str, Any]]:
        async with self._engine.connect() as conn:
            return list((await conn.execute(query)).mappings().all())

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction. On SQLite the file has one writer at a time, so this process's
        writers queue in turn and each takes the write lock as it begins: when they queued for the
        pool's connections and upgraded to the lock mid-transaction instead, a burst of orders (500
        starting at once in bench/scale.py) left writes failing by the hundred on the pool's timeout
        and on `database is locked`, and workflow tasks waiting past their timeout."""
        if self._write_turn is None:
            async with self._engine.begin() as conn:
                yield conn
            return
        async with self._write_turn, self._write_engine.begin() as conn:
            yield conn

    async def _mark(self, key: NotificationKey, **values: Any) -> None:
        async with self._writing() as conn:
            result = await conn.execute(
                update(notifications)
                .where(*key.conditions(), notifications.c.status != "sent")
                .values(**values)
            )
            if result.rowcount == 0 and not await _exists(conn, *key.conditions()):
                raise NotFoundError(f"no notification {key} was claimed")
