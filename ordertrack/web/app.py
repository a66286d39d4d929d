"""The FastAPI application: `create_app(settings)` wires the routers, the store and Temporal."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from temporalio.client import Client
from temporalio.runtime import MetricBuffer

from ordertrack.carriers.registry import build_registry
from ordertrack.connection import ConnectionSettingsError
from ordertrack.settings import Settings
from ordertrack.store.migrate import migrate
from ordertrack.store.repository import Store
from ordertrack.web import api, carrier_webhooks, codec, errors, openapi, ops, pages, unsubscribe
from ordertrack.web.deps import Resources
from ordertrack.web.metrics import HttpMetrics, SdkMetrics, draining
from ordertrack.web.middleware import ApiMiddleware
from ordertrack.web.temporal import TemporalLink


def create_app(
    settings: Settings,
    *,
    temporal: Client | None = None,
    sdk_metrics: MetricBuffer | None = None,
    on_temporal_refused: Callable[[ConnectionSettingsError], None] | None = None,
) -> FastAPI:
    """The app for `ordertrack serve`; `temporal` lets a process that has a client share it.

    Without one, the app connects in the background once started (retrying while the server is
    down; `/healthz` says 503 meanwhile); `on_temporal_refused` hears of settings the server will
    never accept (bad TLS material, refused credentials, an unknown namespace).

    `sdk_metrics`: the `MetricBuffer` of the Temporal `Runtime` this process's worker runs on; its
    metrics are then served by `GET /metrics` beside the HTTP ones.
    """
    sdk = SdkMetrics(sdk_metrics) if sdk_metrics is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            await migrate(settings.database_url)
        store = Store.from_url(settings.database_url)
        carriers = build_registry(settings)
        link = TemporalLink(settings, temporal)
        connecting = asyncio.create_task(link.run(on_temporal_refused), name="temporal-connect")
        app.state.resources = Resources(settings=settings, store=store, carriers=carriers, temporal=link)
        try:
            async with draining(sdk):
                yield
        finally:
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connecting
            await carriers.aclose()
            await store.close()

    app = FastAPI(title="ordertrack", version="0.1.0", lifespan=lifespan)
    registry = CollectorRegistry()  # what `GET /metrics` serves: HTTP metrics, and the SDK's if given
    app.state.metrics_registry = registry
    app.include_router(api.router)
    app.include_router(ops.router)
    app.add_middleware(ApiMiddleware, metrics=HttpMetrics(registry))
    errors.install(app)
    openapi.install(app)
    if sdk is not None:
        registry.register(sdk)
    pages.install(app)
    unsubscribe.install(app)
    carrier_webhooks.install(app)
    codec.install(app, settings)
    return app
