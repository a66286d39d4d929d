"""`ordertrack serve`, and the HTTP part of `ordertrack up`."""

import asyncio

from temporalio.client import Client
from temporalio.runtime import MetricBuffer

from ordertrack.connection import ConnectionSettingsError
from ordertrack.serving import listen, serve_app
from ordertrack.settings import Settings
from ordertrack.startup import prepare_database
from ordertrack.web.app import create_app


async def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    stop: asyncio.Event | None = None,
    temporal: Client | None = None,
    sdk_metrics: MetricBuffer | None = None,
    moved_by: str = "--port",
) -> None:
    """Serve until `stop` (or a signal); `sdk_metrics`: the buffer of the Runtime this process's
    worker uses, shown on /metrics.

    A port that cannot be had or a database that cannot be reached is a `StartupError` before
    anything is served; Temporal may come later (the app connects in the background), but settings
    it refuses for good stop the server and are raised here (`ConnectionSettingsError`)."""
    sock = listen(host, port, what="HTTP server", moved_by=moved_by)
    try:
        await prepare_database(settings)
    except BaseException:
        sock.close()
        raise
    stopping = stop or asyncio.Event()
    refused: list[ConnectionSettingsError] = []

    def stop_for_good(err: ConnectionSettingsError) -> None:
        refused.append(err)
        stopping.set()

    app = create_app(settings, temporal=temporal, sdk_metrics=sdk_metrics, on_temporal_refused=stop_for_good)
    await serve_app(app, host, port, stop=stopping, sock=sock)
    if refused:
        raise refused[0]
