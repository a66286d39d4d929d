"""Support tools find a customer's orders by email: an index on the lowered address.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_orders_customer_email_lower", "orders", [sa.text("lower(customer_email)")])


def downgrade() -> None:
    op.drop_index("ix_orders_customer_email_lower", table_name="orders")
