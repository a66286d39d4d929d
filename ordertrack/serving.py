"""Run an ASGI app with uvicorn: inside this process's event loop (the web app and the simulator),
or as several worker processes (`ordertrack serve --workers N`)."""

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvicorn
from starlette.types import ASGIApp

T = TypeVar("T")

# The same for one process and for workers: quiet, no per-request log line, no Server header.
UVICORN_OPTIONS: dict[str, Any] = {
    "log_level": "warning",
    "access_log": False,
    "server_header": False,
    "timeout_graceful_shutdown": 5,
}


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a server's main coroutine on uvloop when it is installed (`uvicorn[standard]` brings it,
    and uvicorn's own runner picks it too), else on asyncio's loop. Profiling the tracking page under
    load put about a fifth of the server's CPU in the stock loop's selector and socket writes."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is not built for every platform (Windows)
        return asyncio.run(main)
    return uvloop.run(main)


async def serve_app(app: ASGIApp, host: str, port: int, *, stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` is set or the task is cancelled (shutdown runs, then the cancellation
    propagates); run in the main thread without `stop`, SIGINT/SIGTERM end it (uvicorn's handling)."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **UVICORN_OPTIONS))

    async def stop_on_event(event: asyncio.Event) -> None:
        await event.wait()
        server.should_exit = True

    watcher = asyncio.create_task(stop_on_event(stop)) if stop is not None else None
    try:
        await server.serve()
    except asyncio.CancelledError:
        if server.started:
            await server.shutdown()
        raise
    finally:
        if watcher is not None:
            watcher.cancel()


def serve_workers(factory: str, host: str, port: int, workers: int) -> None:
    """Serve the app that `factory` (`module:function`, called in each process) builds from `workers`
    processes sharing the port, until SIGINT/SIGTERM; uvicorn restarts a worker that dies."""
    uvicorn.run(factory, factory=True, host=host, port=port, workers=workers, **UVICORN_OPTIONS)
