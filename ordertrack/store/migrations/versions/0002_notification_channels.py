"""Notification channels and unsubscribes: `notifications` is keyed by channel too (rows so far were
all email) and may be `suppressed`; `mail_recipients` holds each address's unsubscribe token.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
# PostgreSQL's name for the primary key 0001 created; SQLite's has none, so batch mode is told to
# give it the same name when it reads the table.
PRIMARY_KEY = "notifications_pkey"
NAMING = {"pk": "%(table_name)s_pkey"}
STATUS_CHECK = "ck_notifications_status"
OLD_STATUSES = "status IN ('sending', 'delivering', 'sent', 'unconfirmed', 'failed')"
NEW_STATUSES = "status IN ('sending', 'delivering', 'sent', 'unconfirmed', 'failed', 'suppressed')"


def upgrade() -> None:
    with op.batch_alter_table("notifications", naming_convention=NAMING) as batch:
        batch.add_column(sa.Column("channel", sa.String(8), nullable=False, server_default="email"))
        batch.drop_constraint(PRIMARY_KEY, type_="primary")
        batch.create_primary_key(PRIMARY_KEY, ["order_id", "channel", "kind", "dedupe_key"])
        batch.drop_constraint(STATUS_CHECK, type_="check")
        batch.create_check_constraint(STATUS_CHECK, NEW_STATUSES)
    # The default only filled the existing rows; every insert names its channel.
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column("channel", existing_type=sa.String(8), server_default=None)

    op.create_table(
        "mail_recipients",
        sa.Column("email", sa.String(254), primary_key=True),
        sa.Column("unsubscribe_token", sa.String(64), nullable=False),
        sa.Column("unsubscribed_at", TIMESTAMP),
        sa.Column("unsubscribed_order_id", sa.String(64)),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_index(
        "ix_mail_recipients_unsubscribe_token", "mail_recipients", ["unsubscribe_token"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_mail_recipients_unsubscribe_token", table_name="mail_recipients")
    op.drop_table("mail_recipients")
    # What 0001 cannot hold: other channels' messages, and suppressed ones (never sent).
    op.execute("DELETE FROM notifications WHERE channel <> 'email' OR status = 'suppressed'")
    with op.batch_alter_table("notifications", naming_convention=NAMING) as batch:
        batch.drop_constraint(STATUS_CHECK, type_="check")
        batch.create_check_constraint(STATUS_CHECK, OLD_STATUSES)
        batch.drop_constraint(PRIMARY_KEY, type_="primary")
        batch.create_primary_key(PRIMARY_KEY, ["order_id", "kind", "dedupe_key"])
        batch.drop_column("channel")
