"""Schema migrations from code: `migrate(url)` runs `alembic upgrade head` without an alembic.ini."""

import asyncio
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Alembic's `context` is process-global, so upgrades in one process run one at a time; across
# processes env.py serializes them with a database lock.
_UPGRADE_LOCK = threading.Lock()


def _config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    # Passed as an attribute, not an ini option, so a password's `%` needs no escaping.
    config.attributes["database_url"] = database_url
    return config


def _upgrade(config: Config, revision: str) -> None:
    with _UPGRADE_LOCK:
        command.upgrade(config, revision)


async def migrate(database_url: str, revision: str = "head") -> None:
    """Bring the schema to the newest revision (or to `revision`, for testing an upgrade from it);
    safe to call from several workers at once.

    Runs in a thread because env.py drives its own event loop (as it does under the `alembic` CLI).
    """
    await asyncio.to_thread(_upgrade, _config(database_url), revision)
