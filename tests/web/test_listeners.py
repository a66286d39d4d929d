"""`ordertrack serve`'s listeners: nothing decrypts or reports metrics to strangers on the public port,
and behind a proxy the lookup form's rate limit counts the client the proxy names."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from ordertrack.web.server import serve
from tests.conftest import free_port, until_listening
from tests.web.conftest import api_settings
from tests.web.test_codec_endpoint import KEY, plain_payloads


@asynccontextmanager
async def serving(dev_env: WorkflowEnvironment, tmp_path: Path, **changes: Any) -> AsyncIterator[str]:
    """The real `serve` on a free port with these settings, until the block ends; yields its URL."""
    settings = api_settings(tmp_path, free_port(), **{"metrics_token": None, **changes})
    port, stop = free_port(), asyncio.Event()
    task = asyncio.create_task(serve(settings, "127.0.0.1", port, stop=stop, temporal=dev_env.client))
    url = f"http://127.0.0.1:{port}"
    await until_listening(url, task, "/livez")
    try:
        yield url
    finally:
        stop.set()
        await task


async def test_codec_and_metrics_answer_on_their_own_listeners_only(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    codec_port, metrics_port = free_port(), free_port()
    binds = {"codec_bind": f"127.0.0.1:{codec_port}", "http_metrics_bind": f"127.0.0.1:{metrics_port}"}
    async with (
        serving(dev_env, tmp_path, encryption_keys={"k1": KEY}, **binds) as public,
        httpx.AsyncClient() as http,
    ):
        payloads = plain_payloads('"hello"')
        assert (await http.post(f"{public}/codec/decode", json=payloads)).status_code == 404
        hidden = await http.get(f"{public}/metrics")
        assert hidden.status_code == 404 and "HTTP_METRICS_BIND" in hidden.json()["error"]["message"]

        decoded = await http.post(f"http://127.0.0.1:{codec_port}/codec/decode", json=payloads)
        assert decoded.status_code == 200 and decoded.json() == payloads
        scraped = await http.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert scraped.status_code == 200
        assert 'ordertrack_http_requests_total{method="GET",route="/metrics",status="404"}' in scraped.text


async def test_without_a_bind_or_token_metrics_are_off_and_a_token_guards_them(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with serving(dev_env, tmp_path) as public, httpx.AsyncClient() as http:
        off = await http.get(f"{public}/metrics")
        assert off.status_code == 404 and off.json()["error"]["code"] == "metrics_off"
    async with (
        serving(dev_env, tmp_path, metrics_token="s3cret-scrape") as public,
        httpx.AsyncClient() as http,
    ):
        assert (await http.get(f"{public}/metrics")).json()["error"]["code"] == "missing_metrics_token"
        wrong = await http.get(f"{public}/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = await http.get(f"{public}/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
        assert ok.status_code == 200 and "ordertrack_http_requests_total" in ok.text


async def lookups(url: str, clients: list[str]) -> list[int]:
    """One failed lookup per entry, each as forwarded by a proxy for that client address."""
    async with httpx.AsyncClient() as http:
        return [
            (
                await http.post(
                    f"{url}/t",
                    data={"order_id": "nope-1", "email": "x@example.com"},
                    headers={"X-Forwarded-For": client},
                )
            ).status_code
            for client in clients
        ]


async def test_behind_a_proxy_the_lookup_limit_counts_the_forwarded_client(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with serving(dev_env, tmp_path, forwarded_allow_ips="127.0.0.1") as url:
        guesser, someone_else = "203.0.113.7", "198.51.100.9"
        assert await lookups(url, [guesser] * 6 + [someone_else]) == [400] * 5 + [429, 400]


async def test_without_trusted_proxies_the_forwarded_header_is_ignored(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with serving(dev_env, tmp_path) as url:  # every address a client claims is the peer
        claimed = [f"203.0.113.{n}" for n in range(6)]
        assert await lookups(url, claimed) == [400] * 5 + [429]
