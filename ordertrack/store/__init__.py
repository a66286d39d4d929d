"""The read model: orders, their timelines, the notification log and unsubscribes, in SQLite or PostgreSQL.

Workflows own the truth; this store is what HTTP, the CLI and the senders read, written only by
activities (idempotent, version-guarded) and the unsubscribe page, and shaped only by the Alembic
migrations.
"""

from ordertrack.store.engine import create_engine, create_sessionmaker
from ordertrack.store.migrate import migrate
from ordertrack.store.repository import (
    MailRecipient,
    NotFoundError,
    NotificationKey,
    NotificationRow,
    Store,
    StoredOrder,
)

__all__ = [
    "MailRecipient",
    "NotFoundError",
    "NotificationKey",
    "NotificationRow",
    "Store",
    "StoredOrder",
    "create_engine",
    "create_sessionmaker",
    "migrate",
]
