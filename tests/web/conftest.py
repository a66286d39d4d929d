"""The real app against the dev server: an in-process worker, a temp SQLite read model, the mail sink.

Each `api` gets its own task queue and database, so tests do not see each other's workers; order
ids must still be unique per session (the dev server is shared), hence `new_order_id()`.
"""

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.runtime import MetricBuffer
from temporalio.testing import WorkflowEnvironment

from ordertrack.mail.sink import MailSink
from ordertrack.settings import ApiKey, Settings
from ordertrack.store import Store
from ordertrack.web.app import create_app
from tests.factories import order_data
from worker import order_worker

SHOP_KEY = "shop-key-" + secrets.token_urlsafe(16)
OPERATOR_KEY = "operator-key-" + secrets.token_urlsafe(16)
OPERATOR_NAME = "rita"
PUBLIC_URL = "https://track.example"
NO_CARRIER = "http://127.0.0.1:9"
METRICS_TOKEN = "metrics-" + secrets.token_urlsafe(16)
READ_TIMEOUT = 30.0  # seconds for the worker to bring the read model up to date (on a loaded machine)


def new_order_id(prefix: str = "api") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def api_settings(tmp_path: Path, smtp_port: int, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "task_queue": f"api-{secrets.token_hex(4)}",
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'var' / 'ordertrack.db'}",
        "smtp_port": smtp_port,
        "public_url": PUBLIC_URL,
        "review_url": "https://shop.example/review/{order_id}",  # a shop with a review page
        # Orders stay put until told to move: no deadline fires during a test, and no carrier answers
        # (nothing listens on the discard port), so a shipped order stays shipped.
        "ship_by": timedelta(days=7),
        "payment_timeout": timedelta(days=7),
        "simulated_carrier_url": NO_CARRIER,
        # Real time cannot be skipped: messages go at once, whatever the hour (a test that is about
        # quiet hours sets them).
        "daytime_starts": time(0),
        "daytime_ends": time(0),
        "default_time_zone": "UTC",
        "metrics_token": METRICS_TOKEN,  # /metrics on the app's own port, as the tests read it
        "api_keys": {
            SHOP_KEY: ApiKey(role="shop", name="acme-shop"),
            OPERATOR_KEY: ApiKey(role="operator", name=OPERATOR_NAME),
        },
    }
    values.update(changes)
    return Settings(**values)


class CountingStore:
    """Records the read model calls a request makes."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self._store, name)


@dataclass
class Api:
    app: FastAPI
    http: httpx.AsyncClient
    settings: Settings
    mail: MailSink

    shop = {"Authorization": f"Bearer {SHOP_KEY}"}
    operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    scraper = {"Authorization": f"Bearer {METRICS_TOKEN}"}

    async def start(self, **changes: Any) -> tuple[str, httpx.Response]:
        order_id = changes.pop("order_id", None) or new_order_id()
        response = await self.http.post(
            "/api/orders", json=order_data(order_id=order_id, **changes), headers=self.shop
        )
        return order_id, response

    async def read(
        self, order_id: str, *, until: str | None = None, reached: str | None = None
    ) -> dict[str, Any]:
        """The order from the read model, once it is there and in status `until`, or once its
        timeline shows it reached status `reached` (wherever it went next: that cannot be missed)."""
        async with asyncio.timeout(READ_TIMEOUT):
            while True:
                response = await self.http.get(f"/api/orders/{order_id}", headers=self.shop)
                assert response.status_code in (200, 404), response.text
                if response.status_code == 200:
                    body: dict[str, Any] = response.json()
                    if (until is None or body["status"] == until) and (
                        reached is None or reached in statuses_of(body)
                    ):
                        return body
                await asyncio.sleep(0.1)


def statuses_of(order: dict[str, Any]) -> list[str]:
    """The statuses the order went through, in order, from its timeline."""
    return [entry["status"] for entry in order["timeline"] if entry["kind"] == "status"]


@asynccontextmanager
async def running_api(
    client: Client,
    settings: Settings,
    mail: MailSink,
    *,
    sdk_metrics: MetricBuffer | None = None,
    worker: bool = True,
) -> AsyncIterator[Api]:
    """The app (lifespan entered) and, unless `worker` is False, a worker on the settings' task queue,
    until the block ends."""
    app = create_app(settings, temporal=client, sdk_metrics=sdk_metrics)
    async with AsyncExitStack() as stack:
        if worker:
            polling = await stack.enter_async_context(order_worker(client, settings))
            serving = asyncio.create_task(polling.run())

            async def drain() -> None:
                await polling.shutdown()
                await serving

            stack.push_async_callback(drain)
        await stack.enter_async_context(app.router.lifespan_context(app))
        http = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")
        )
        yield Api(app=app, http=http, settings=settings, mail=mail)


@pytest.fixture
async def api(dev_env: WorkflowEnvironment, tmp_path: Path, mail_sink: MailSink) -> AsyncIterator[Api]:
    async with running_api(dev_env.client, api_settings(tmp_path, mail_sink.port), mail_sink) as running:
        yield running


@pytest.fixture
async def app_only(dev_env: WorkflowEnvironment, tmp_path: Path, mail_sink: MailSink) -> AsyncIterator[Api]:
    """The app without a worker, for requests answered before any workflow would run (refusals,
    unknown orders, health, metrics, the schema): no worker to start and drain."""
    settings = api_settings(tmp_path, mail_sink.port)
    async with running_api(dev_env.client, settings, mail_sink, worker=False) as running:
        yield running
