"""`ordertrack serve` without Temporal: it answers at once (pages, reads, `/livez`), says why on
`/healthz` (503 `temporal_unavailable`), connects in the background, and stops for settings the
server will never accept."""

import secrets
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from ordertrack.connection import ConnectionRefusedForGood
from ordertrack.web.app import create_app
from ordertrack.web.server import serve
from tests.conftest import eventually, free_port, start_dev_server
from tests.factories import order_data
from tests.web.conftest import SHOP_KEY, api_settings, new_order_id


async def test_serve_answers_before_temporal_and_connects_once_it_is_up(tmp_path: Path) -> None:
    port = free_port()
    settings = api_settings(tmp_path, free_port(), temporal_address=f"127.0.0.1:{port}")
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as http,
    ):
        assert (await http.get("/livez")).status_code == 200

        async def says_why() -> str | None:
            response = await http.get("/healthz")
            assert response.status_code == 503
            error = response.json()["error"]
            assert error["code"] == "temporal_unavailable"
            return error["message"] if "attempt" in error["message"] else None

        message = await eventually(says_why, "/healthz naming the failed attempt")
        assert message.startswith(f"not connected to Temporal at 127.0.0.1:{port} yet (connection refused")
        started = await http.post(
            "/api/orders",
            json=order_data(order_id=new_order_id()),
            headers={"Authorization": f"Bearer {SHOP_KEY}"},
        )
        assert started.status_code == 503
        assert started.json()["error"]["code"] == "temporal_unavailable"

        env = await start_dev_server(port)
        try:

            async def healthy() -> bool:
                return (await http.get("/healthz")).status_code == 200

            await eventually(healthy, "/healthz once Temporal is up", within=90)
            assert (await http.get("/healthz")).json() == {"status": "ok"}
        finally:
            await env.shutdown()


async def test_serve_stops_for_a_namespace_the_server_does_not_have(
    tmp_path: Path, dev_env: WorkflowEnvironment
) -> None:
    settings = api_settings(
        tmp_path,
        free_port(),
        temporal_address=dev_env.client.service_client.config.target_host,
        temporal_namespace=f"absent-{secrets.token_hex(3)}",
    )
    with pytest.raises(ConnectionRefusedForGood, match="ORDERTRACK_TEMPORAL_NAMESPACE"):
        await serve(settings, "127.0.0.1", free_port())
