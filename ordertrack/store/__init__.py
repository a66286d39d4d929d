"""The read model: orders, their timelines and the notification log, in SQLite or PostgreSQL.

Workflows own the truth; this store is what HTTP, the CLI and the mailer read, written only by
the store activities (idempotent, version-guarded) and shaped only by the Alembic migrations.
"""

from ordertrack.store.engine import create_engine, create_sessionmaker
from ordertrack.store.migrate import migrate
from ordertrack.store.repository import NotFoundError, NotificationRow, Store, StoredOrder

__all__ = [
    "NotFoundError",
    "NotificationRow",
    "Store",
    "StoredOrder",
    "create_engine",
    "create_sessionmaker",
    "migrate",
]
