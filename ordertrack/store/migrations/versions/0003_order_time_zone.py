"""The order's time zone in the read model, so the tracking page shows times where the customer is.

Nullable: rows written before it have none, and the page shows them in its configured default zone.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("time_zone", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("time_zone")
