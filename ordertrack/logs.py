"""Logging for every ordertrack process: worker, HTTP server, simulated carrier, `ordertrack up`."""

import logging


def configure_logging() -> None:
    """One line per thing that happened; per-request chatter from libraries only on warnings."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpcore", "mail.log", "alembic.runtime.migration"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
