"""`ordertrack serve`, and the HTTP part of `ordertrack up`."""

import asyncio
import socket
from collections.abc import Coroutine
from typing import Any

from starlette.types import ASGIApp
from temporalio.client import Client
from temporalio.runtime import MetricBuffer

from ordertrack.connection import ConnectionSettingsError
from ordertrack.logs import configure_logging
from ordertrack.serving import listen, serve_app, serve_workers
from ordertrack.settings import Settings, get_settings, split_bind
from ordertrack.startup import prepare_database
from ordertrack.web import codec, ops
from ordertrack.web.app import App, create_app


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
    codec_sock = metrics_sock = None
    try:
        if settings.encryption_keys and settings.codec_bind:
            codec_sock = _listen_bind(settings.codec_bind, "codec server", "CODEC_BIND")
        if settings.http_metrics_bind:
            metrics_sock = _listen_bind(settings.http_metrics_bind, "metrics server", "HTTP_METRICS_BIND")
        await prepare_database(settings)
    except BaseException:
        for bound in (sock, codec_sock, metrics_sock):
            if bound is not None:
                bound.close()
        raise
    stopping = stop or asyncio.Event()
    refused: list[ConnectionSettingsError] = []

    def stop_for_good(err: ConnectionSettingsError) -> None:
        refused.append(err)
        stopping.set()

    app = create_app(settings, temporal=temporal, sdk_metrics=sdk_metrics, on_temporal_refused=stop_for_good)
    listeners = [
        serve_app(app, host, port, stop=stopping, sock=sock, forwarded_allow_ips=settings.forwarded_allow_ips)
    ]
    if codec_sock:
        listeners.append(_serve_on(codec.standalone_app(settings), codec_sock, stopping))
    if metrics_sock:
        listeners.append(_serve_on(ops.metrics_app(app.state.metrics_registry), metrics_sock, stopping))

    async def together(listener: Coroutine[Any, Any, None]) -> None:
        try:
            await listener
        finally:  # one stopped (a signal reaches only one uvicorn): stop them all
            stopping.set()

    async with asyncio.TaskGroup() as servers:
        for listener in listeners:
            servers.create_task(together(listener))
    if refused:
        raise refused[0]


def _listen_bind(bind: str, what: str, setting: str) -> socket.socket:
    host, port = split_bind(bind) or ("", 0)  # validated with the settings
    return listen(host, port, what=what, moved_by=f"ORDERTRACK_{setting}")


async def _serve_on(app: ASGIApp, sock: socket.socket, stop: asyncio.Event) -> None:
    host, port = sock.getsockname()[:2]
    await serve_app(app, host, port, stop=stop, sock=sock)


def placements(settings: Settings) -> list[str]:
    """Where this server puts the codec and its metrics, for the start-up banner."""
    return [codec.placement(settings), _metrics_placement(settings)]


def _metrics_placement(settings: Settings) -> str:
    if settings.http_metrics_bind:
        return f"metrics on http://{settings.http_metrics_bind}/metrics (ORDERTRACK_HTTP_METRICS_BIND)"
    if settings.metrics_token is not None:
        return "metrics at /metrics behind ORDERTRACK_METRICS_TOKEN"
    return "metrics off: set ORDERTRACK_HTTP_METRICS_BIND or ORDERTRACK_METRICS_TOKEN"


def app_from_environment() -> App:
    """The app of one `ordertrack serve --workers N` process: settings from the environment."""
    configure_logging()
    return create_app(get_settings())


def serve_in_workers(host: str, port: int, workers: int) -> None:
    """`workers` server processes on one port. Each keeps its own read cache (the lookup rate limit
    is shared through the database) and migrates the schema at start unless MIGRATE_ON_START is off
    (concurrent upgrades are serialised). The codec and metrics listeners are `serve`'s alone."""
    serve_workers(f"{__name__}:{app_from_environment.__name__}", host, port, workers)
