"""`ordertrack serve`, and the HTTP part of `ordertrack up`."""

import asyncio

from temporalio.client import Client
from temporalio.runtime import MetricBuffer

from ordertrack.logs import configure_logging
from ordertrack.serving import serve_app, serve_workers
from ordertrack.settings import Settings, get_settings
from ordertrack.web.app import App, create_app


async def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    stop: asyncio.Event | None = None,
    temporal: Client | None = None,
    sdk_metrics: MetricBuffer | None = None,
) -> None:
    """`sdk_metrics`: the buffer of the Runtime this process's worker uses, shown on /metrics."""
    app = create_app(settings, temporal=temporal, sdk_metrics=sdk_metrics)
    await serve_app(app, host, port, stop=stop)


def app_from_environment() -> App:
    """The app of one `ordertrack serve --workers N` process: settings from the environment."""
    configure_logging()
    return create_app(get_settings())


def serve_in_workers(host: str, port: int, workers: int) -> None:
    """`workers` server processes on one port. Each keeps its own read cache and lookup rate limit,
    and migrates the schema at start (concurrent upgrades are serialised)."""
    serve_workers(f"{__name__}:{app_from_environment.__name__}", host, port, workers)
