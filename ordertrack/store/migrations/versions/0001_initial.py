"""Initial schema: orders, their timeline events, and the notification log.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out here rather than imported, so this revision never changes when the app's types do.
TIMESTAMP = sa.DateTime(timezone=True)
DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
MONEY = sa.Numeric(14, 2).with_variant(sa.String(32), "sqlite")  # exact decimal string on SQLite


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("workflow_id", sa.String(128), nullable=False),
        sa.Column("tracking_token", sa.String(128), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_since", TIMESTAMP, nullable=False),
        sa.Column("delayed", sa.Boolean(), nullable=False),
        sa.Column("delay_reason", sa.Text()),
        sa.Column("delay_kind", sa.String(32)),
        sa.Column("carrier", sa.String(32)),
        sa.Column("tracking_number", sa.String(64)),
        sa.Column("estimated_delivery", TIMESTAMP),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("address_version", sa.Integer(), nullable=False),
        sa.Column("customer_name", sa.String(200), nullable=False),
        sa.Column("customer_email", sa.String(254), nullable=False),
        sa.Column("locale", sa.String(35), nullable=False),
        sa.Column("ship_city", sa.String(100), nullable=False),
        sa.Column("ship_country", sa.String(2), nullable=False),
        sa.Column("shipping_address", DOCUMENT, nullable=False),
        sa.Column("items", DOCUMENT, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("placed_at", TIMESTAMP, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_orders_tracking_token", "orders", ["tracking_token"], unique=True)
    op.create_index("ix_orders_tracking_number", "orders", ["tracking_number"])
    op.create_index("ix_orders_created_at", "orders", ["created_at"])
    op.create_index("ix_orders_status_created_at", "orders", ["status", "created_at"])

    op.create_table(
        "timeline_events",
        sa.Column(
            "order_id",
            sa.String(64),
            sa.ForeignKey("orders.order_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("location", sa.Text()),
        sa.Column("code", sa.String(32)),
    )

    op.create_table(
        "notifications",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("dedupe_key", sa.String(200), primary_key=True),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("server_reply", sa.Text()),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("sent_at", TIMESTAMP),
        sa.CheckConstraint(
            "status IN ('sending', 'delivering', 'sent', 'unconfirmed', 'failed')",
            name="ck_notifications_status",
        ),
    )


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("timeline_events")
    op.drop_index("ix_orders_status_created_at", table_name="orders")
    op.drop_index("ix_orders_created_at", table_name="orders")
    op.drop_index("ix_orders_tracking_number", table_name="orders")
    op.drop_index("ix_orders_tracking_token", table_name="orders")
    op.drop_table("orders")
