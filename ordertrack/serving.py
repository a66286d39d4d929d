"""Run an ASGI app with uvicorn: inside this process's event loop (the web app, the simulator, the
worker's health endpoint), or as several worker processes (`ordertrack serve --workers N`)."""

import asyncio
import errno
import socket
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvicorn
from starlette.types import ASGIApp

from ordertrack.startup import StartupError

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


def port_problem(what: str, host: str, port: int, err: OSError, moved_by: str | None) -> StartupError:
    """One line for a port that cannot be had: what wanted it, why, and what moves it."""
    if err.errno == errno.EADDRINUSE:
        why = "is already in use (another ordertrack, or another program?)"
    elif err.errno == errno.EACCES:
        why = "needs privileges this process lacks (ports below 1024)"
    elif err.errno == errno.EADDRNOTAVAIL:
        why = "is not an address of this machine"
    else:
        why = f"cannot be used: {err.strerror or err}"
    fix = f"set {moved_by} to a free port" if moved_by else "stop what holds it"
    return StartupError(f"{what}: {host}:{port} {why}; {fix}")


def listen(host: str, port: int, *, what: str, moved_by: str | None = None) -> socket.socket:
    """A socket bound to `host:port` for `serve_app`, so a port that cannot be had fails here as a
    `StartupError` naming `what` wanted it and the setting or flag (`moved_by`) that moves it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise port_problem(what, host, port, err, moved_by) from None
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


async def serve_app(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    stop: asyncio.Event | None = None,
    sock: socket.socket | None = None,
    what: str = "HTTP server",
    moved_by: str | None = None,
    forwarded_allow_ips: str | None = None,
) -> None:
    """Serve until `stop` is set or the task is cancelled (shutdown runs, then the cancellation
    propagates); run in the main thread without `stop`, SIGINT/SIGTERM end it (uvicorn's handling).

    `sock`: already bound by `listen()`; without it the port is bound here, and a port that cannot
    be had is a `StartupError` naming `what` and `moved_by`. `forwarded_allow_ips`: the proxies
    whose X-Forwarded-For/-Proto are believed (none by default: the peer is the client)."""
    if sock is None:
        sock = listen(host, port, what=what, moved_by=moved_by)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            **UVICORN_OPTIONS,
            proxy_headers=forwarded_allow_ips is not None,
            forwarded_allow_ips=forwarded_allow_ips,
        )
    )

    async def stop_on_event(event: asyncio.Event) -> None:
        await event.wait()
        server.should_exit = True

    watcher = asyncio.create_task(stop_on_event(stop)) if stop is not None else None
    try:
        await server.serve(sockets=[sock])
    except asyncio.CancelledError:
        if server.started:
            await server.shutdown()
        raise
    finally:
        if watcher is not None:
            watcher.cancel()
        sock.close()


def serve_workers(factory: str, host: str, port: int, workers: int) -> None:
    """Serve the app that `factory` (`module:function`, called in each process) builds from `workers`
    processes sharing the port, until SIGINT/SIGTERM; uvicorn restarts a worker that dies."""
    uvicorn.run(factory, factory=True, host=host, port=port, workers=workers, **UVICORN_OPTIONS)
