"""Table definitions for queries; the schema itself is created only by the Alembic migrations."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    func,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and reads back aware UTC datetimes: SQLite keeps no offset, so one is restored."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: the store keeps aware UTC times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Money(TypeDecorator[Decimal]):
    """NUMERIC on PostgreSQL; a decimal string on SQLite, whose NUMERIC would round-trip through float."""

    impl = Numeric(14, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        impl: TypeEngine[Any] = String(32) if dialect.name == "sqlite" else Numeric(14, 2, asdecimal=True)
        return dialect.type_descriptor(impl)

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Decimal | str | None:
        if value is None or dialect.name != "sqlite":
            return value
        return str(value)

    def process_result_value(self, value: object, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(str(value))


Document = JSON().with_variant(postgresql.JSONB(), "postgresql")

metadata = MetaData()

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("workflow_id", String(128), nullable=False),
    Column("tracking_token", String(128), nullable=False),
    # The order's progress (`OrderProgress`), read into `StoredOrder` and written from the view by
    # name; spelled out here because the migrations own the schema (lengths, types, nullability).
    Column("status", String(32), nullable=False),
    Column("status_since", UTCDateTime(), nullable=False),
    Column("delayed", Boolean(), nullable=False),
    Column("delay_reason", Text()),
    Column("delay_kind", String(32)),
    Column("carrier", String(32)),
    Column("tracking_number", String(64)),
    Column("estimated_delivery", UTCDateTime()),
    Column("version", Integer(), nullable=False),
    # The version of the last address written: an operator's change may land after a newer status.
    Column("address_version", Integer(), nullable=False),
    Column("customer_name", String(200), nullable=False),
    Column("customer_email", String(254), nullable=False),
    Column("locale", String(35), nullable=False),
    # IANA name of the zone the order's times are shown in (the customer's, else the policy's
    # default); NULL on rows written before migration 0003.
    Column("time_zone", String(64)),
    Column("ship_city", String(100), nullable=False),
    Column("ship_country", String(2), nullable=False),
    Column("shipping_address", Document, nullable=False),
    Column("items", Document, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total", Money(), nullable=False),
    Column("placed_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # For the carrier report: when the order was first shipped, and when its first estimate counted
    # as missed (the delay flag's deadline); NULL until then, and for estimates before migration 0006.
    Column("shipped_at", UTCDateTime()),
    Column("promised_by", UTCDateTime()),
    Index("ix_orders_tracking_token", "tracking_token", unique=True),
    Index("ix_orders_tracking_number", "tracking_number"),
    Index("ix_orders_created_at", "created_at"),
    Index("ix_orders_status_created_at", "status", "created_at"),
    Index("ix_orders_shipped_at", "shipped_at"),
)
# Support tools look an order up by the customer's email, whatever its case.
Index("ix_orders_customer_email_lower", func.lower(orders.c.customer_email))

timeline_events = Table(
    "timeline_events",
    metadata,
    Column("order_id", String(64), ForeignKey("orders.order_id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer(), primary_key=True, autoincrement=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("message", Text(), nullable=False),
    Column("actor", Text(), nullable=False),
    Column("reason", Text()),
    Column("location", Text()),
    Column("code", String(32)),
)

# No foreign key to orders: the mailer's log must not depend on the order row's write landing first.
notifications = Table(
    "notifications",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("channel", String(8), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("dedupe_key", String(200), primary_key=True),
    Column("message_id", String(255), nullable=False),
    Column("recipient", String(254), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("last_error", Text()),
    Column("server_reply", Text()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime()),
    CheckConstraint(
        "status IN ('sending', 'delivering', 'sent', 'unconfirmed', 'failed', 'suppressed')",
        name="ck_notifications_status",
    ),
)

# One row per email address we have put an unsubscribe link in front of; keyed by the lowercased
# address, so an unsubscribe is honoured for every later order to it.
mail_recipients = Table(
    "mail_recipients",
    metadata,
    Column("email", String(254), primary_key=True),
    Column("unsubscribe_token", String(64), nullable=False),
    Column("unsubscribed_at", UTCDateTime()),
    Column("unsubscribed_order_id", String(64)),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_mail_recipients_unsubscribe_token", "unsubscribe_token", unique=True),
)

# Lookup-form attempts per client, shared by every HTTP process over the read model's database: the
# rate limit holds however many `serve` processes answer. The client is kept as a hash, not an address.
lookup_attempts = Table(
    "lookup_attempts",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("client", String(64), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_lookup_attempts_client_at", "client", "at"),
    Index("ix_lookup_attempts_at", "at"),
)
