"""The FastAPI application: `create_app(settings)` wires the routers, the store and Temporal."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.client import Client
from temporalio.runtime import MetricBuffer

from ordertrack.carriers.registry import build_registry
from ordertrack.connection import ConnectionSettingsError
from ordertrack.settings import Settings
from ordertrack.store.migrate import migrate
from ordertrack.store.repository import Store
from ordertrack.web import (
    api,
    carrier_webhooks,
    codec,
    errors,
    openapi,
    operator_pages,
    ops,
    pages,
    reports,
    unsubscribe,
)
from ordertrack.web.deps import Resources
from ordertrack.web.metrics import HttpMetrics, SdkMetrics, draining
from ordertrack.web.middleware import ApiMiddleware
from ordertrack.web.readcache import ReadCache
from ordertrack.web.temporal import TemporalLink


class App(FastAPI):
    """FastAPI, plus fast lanes: a GET whose path falls under a lane goes straight to the lane's
    ASGI app, wrapped only in `ApiMiddleware` (request id, the 500 catch-all, the HTTP metrics).

    Profiling `GET /t/{token}` showed about ten layers before the page's own code ran (Starlette's
    error and exception middleware, FastAPI's telemetry, body-limit and exit-stack middleware, the
    codec's CORS, the router's matching, dependency injection), together costing more than serving
    a cached page. A lane's route is registered with the router too, so other methods get the
    router's answers (405) and the route is listed like any other.
    """

    def __init__(self, *, http_metrics: HttpMetrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.http_metrics = http_metrics
        self._lanes: list[tuple[str, ASGIApp]] = []

    def add_fast_lane(self, path: str, endpoint: ASGIApp) -> None:
        """Serve GET `path`, a template ending in its one `{name:path}` parameter, by `endpoint`."""
        prefix, brace, parameter = path.partition("{")
        if not brace or parameter.count("{") or not parameter.endswith(":path}"):
            raise ValueError(f"a fast lane's path ends in its only parameter, a `:path` one: {path!r}")
        self.router.add_route(path, endpoint, methods=["GET"], include_in_schema=False)  # type: ignore[arg-type]
        self._lanes.append((prefix, ApiMiddleware(endpoint, metrics=self.http_metrics, route=path)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            for prefix, lane in self._lanes:
                if scope["path"].startswith(prefix):
                    scope["app"] = self
                    await lane(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings,
    *,
    temporal: Client | None = None,
    sdk_metrics: MetricBuffer | None = None,
    on_temporal_refused: Callable[[ConnectionSettingsError], None] | None = None,
) -> App:
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
        cache = ReadCache(max_bytes=int(settings.read_cache_mb * 1024 * 1024))
        app.state.resources = Resources(
            settings=settings, store=store, carriers=carriers, temporal=link, cache=cache
        )
        try:
            async with draining(sdk):
                yield
        finally:
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connecting
            await carriers.aclose()
            await store.close()

    registry = CollectorRegistry()  # what `GET /metrics` serves: HTTP metrics, and the SDK's if given
    http_metrics = HttpMetrics(registry)
    app = App(title="ordertrack", version="0.1.0", lifespan=lifespan, http_metrics=http_metrics)
    app.state.metrics_registry = registry
    app.include_router(api.router)
    app.include_router(ops.router)
    app.include_router(reports.router)
    app.include_router(operator_pages.router)
    app.add_middleware(ApiMiddleware, metrics=http_metrics)
    errors.install(app)
    openapi.install(app)
    if sdk is not None:
        registry.register(sdk)
    pages.install(app)
    unsubscribe.install(app)
    carrier_webhooks.install(app)
    codec.install(app, settings)
    return app
