"""`ordertrack serve --workers N`: several server processes on one port, as in production."""

import asyncio
import os
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from ordertrack.domain import machine
from ordertrack.domain.models import Order
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.records import OrderRecord
from ordertrack.domain.view import order_view
from ordertrack.store import Store, migrate
from tests.conftest import free_port
from tests.e2e.stack import ORDERTRACK
from tests.factories import order_data

pytestmark = pytest.mark.e2e

TOKEN = "workers-token-" + "x" * 18
STARTUP = 120.0  # seconds for the processes to import and migrate, on a loaded machine


async def test_workers_share_the_port_and_serve_the_same_page(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'ordertrack.db'}"
    await migrate(database_url)
    store = Store.from_url(database_url)
    order = Order.model_validate(order_data(order_id="1001"))
    view = order_view(
        order, machine.on_start(order, TimingPolicy(), datetime(2026, 11, 20, tzinfo=UTC)).state, TOKEN
    )
    await store.save_order(OrderRecord(order=order, workflow_id="w", tracking_token=TOKEN, view=view))
    await store.close()
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        *(ORDERTRACK, "serve", "--port", str(port), "--workers", "2"),
        env={**os.environ, "ORDERTRACK_DATABASE_URL": database_url},  # conftest cleared ORDERTRACK_*
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            async with asyncio.timeout(STARTUP):
                while True:
                    try:
                        if (await http.get("/livez")).status_code == 200:  # no Temporal here
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.2)
            pages = [await http.get(f"/t/{TOKEN}") for _ in range(8)]
            etag = pages[0].headers["etag"]
            revisit = await http.get(f"/t/{TOKEN}", headers={"If-None-Match": etag})
            unknown = await http.get("/t/unknown")

        assert {(page.status_code, page.headers["etag"]) for page in pages} == {(200, etag)}
        assert revisit.status_code == 304
        assert unknown.status_code == 404
    finally:
        server.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            output = (await server.communicate())[0].decode()
    assert server.returncode == 0, output
    assert f"on http://127.0.0.1:{port} in 2 processes" in output
