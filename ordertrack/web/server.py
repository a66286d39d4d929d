"""`ordertrack serve`, and the HTTP part of `ordertrack up`."""

import asyncio

from temporalio.client import Client
from temporalio.runtime import MetricBuffer

from ordertrack.serving import serve_app
from ordertrack.settings import Settings
from ordertrack.web.app import create_app


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
