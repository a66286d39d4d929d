"""What the carrier report reads from an order: when it was shipped, and when its first estimate
counted as missed.

`shipped_at` is filled from the timeline for orders already shipped (the first `shipped` status
entry). `promised_by` cannot be: the timeline keeps estimates only as text, so orders estimated
before this revision have none, and the report counts their deliveries as without an estimate.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out here rather than imported, so this revision never changes when the app's types do.
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("shipped_at", TIMESTAMP))
        batch.add_column(sa.Column("promised_by", TIMESTAMP))
    op.create_index("ix_orders_shipped_at", "orders", ["shipped_at"])
    orders = sa.table("orders", sa.column("order_id"), sa.column("shipped_at"))
    entries = sa.table(
        "timeline_events", sa.column("order_id"), sa.column("kind"), sa.column("status"), sa.column("at")
    )
    first_shipped = (
        sa.select(sa.func.min(entries.c.at))
        .where(
            entries.c.order_id == orders.c.order_id,
            entries.c.kind == "status",
            entries.c.status == "shipped",
        )
        .scalar_subquery()
    )
    op.execute(orders.update().values(shipped_at=first_shipped))


def downgrade() -> None:
    op.drop_index("ix_orders_shipped_at", table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("promised_by")
        batch.drop_column("shipped_at")
