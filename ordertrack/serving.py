"""Run an ASGI app with uvicorn inside this process's event loop: the web app and the simulator."""

import asyncio

import uvicorn
from starlette.types import ASGIApp


async def serve_app(app: ASGIApp, host: str, port: int, *, stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` is set or the task is cancelled (shutdown runs, then the cancellation
    propagates); run in the main thread without `stop`, SIGINT/SIGTERM end it (uvicorn's handling)."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
    )

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
