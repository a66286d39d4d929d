"""`ordertrack serve`, and the HTTP part of `ordertrack up`."""

import asyncio

from temporalio.client import Client

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
) -> None:
    await serve_app(create_app(settings, temporal=temporal), host, port, stop=stop)
