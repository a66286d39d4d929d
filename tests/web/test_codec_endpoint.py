"""The codec server for the Temporal UI: `/codec/encode` and `/codec/decode` through the real app."""

import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from ordertrack.web import codec
from ordertrack.web.app import create_app
from tests.web.conftest import api_settings

KEY = base64.b64encode(os.urandom(32)).decode()
UI = "http://localhost:8233"
TOKEN = "codec-token-" + base64.urlsafe_b64encode(os.urandom(12)).decode()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def plain_payloads(*texts: str) -> dict[str, Any]:
    return {
        "payloads": [{"metadata": {"encoding": b64(b"json/plain")}, "data": b64(t.encode())} for t in texts]
    }


@asynccontextmanager
async def codec_app(tmp_path: Path, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = api_settings(tmp_path, 1025, **changes)
    # With a token the codec is on the public app; without one only on its own listener's app.
    app = create_app(settings) if settings.codec_auth_token is not None else codec.standalone_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as http,
    ):
        yield http


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with codec_app(tmp_path, encryption_keys={"k1": KEY}) as client:
        yield client


async def test_encode_then_decode_round_trip(http: httpx.AsyncClient):
    sent = plain_payloads('"ana@example.com"', '{"name": "Ana Souza"}')
    encoded = await http.post("/codec/encode", json=sent, headers={"X-Namespace": "default"})
    assert encoded.status_code == 200, encoded.text
    payloads = encoded.json()["payloads"]
    assert len(payloads) == 2
    for payload in payloads:
        assert base64.b64decode(payload["metadata"]["encoding"]) == b"binary/encrypted"
        assert base64.b64decode(payload["metadata"]["encryption-key-id"]) == b"k1"
    assert "ana@example.com" not in encoded.text and b64(b'"ana@example.com"') not in encoded.text

    decoded = await http.post("/codec/decode", json=encoded.json(), headers={"X-Namespace": "default"})
    assert decoded.status_code == 200, decoded.text
    assert decoded.json() == sent


async def test_decode_passes_plain_payloads_through(http: httpx.AsyncClient):
    sent = plain_payloads('"hello"')
    decoded = await http.post("/codec/decode", json=sent)
    assert decoded.json() == sent


async def test_bad_bodies_and_undecryptable_payloads_are_422(http: httpx.AsyncClient):
    bad = await http.post("/codec/decode", content=b"not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_payloads"
    foreign = {
        "payloads": [
            {
                "metadata": {"encoding": b64(b"binary/encrypted"), "encryption-key-id": b64(b"gone")},
                "data": b64(os.urandom(40)),
            }
        ]
    }
    refused = await http.post("/codec/decode", json=foreign)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "undecryptable_payload"
    assert "'gone', which is not configured" in refused.json()["error"]["message"]


async def test_cors_preflight_for_the_ui(http: httpx.AsyncClient):
    preflight = await http.options(
        "/codec/decode",
        headers={
            "Origin": UI,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == UI
    assert "POST" in preflight.headers["access-control-allow-methods"]
    allowed = {h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "x-namespace", "authorization"} <= allowed

    answered = await http.post("/codec/decode", json=plain_payloads('"x"'), headers={"Origin": UI})
    assert answered.headers["access-control-allow-origin"] == UI


async def test_cors_refuses_other_origins_and_other_paths(http: httpx.AsyncClient):
    evil = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    refused = await http.options("/codec/decode", headers=evil)
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    # The rest of the app is not opened to the UI's origin.
    api = await http.options("/api/orders", headers={"Origin": UI, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in api.headers


async def test_auth_when_a_token_is_configured(tmp_path: Path):
    async with codec_app(tmp_path, encryption_keys={"k1": KEY}, codec_auth_token=TOKEN) as http:
        body = plain_payloads('"x"')
        missing = await http.post("/codec/encode", json=body, headers={"Origin": UI})
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "missing_codec_token"
        assert missing.headers["access-control-allow-origin"] == UI  # the UI can read why
        wrong = await http.post("/codec/decode", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"] == "invalid_codec_token"
        # Preflights carry no credentials and are answered anyway.
        preflight = await http.options(
            "/codec/decode",
            headers={
                "Origin": UI,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code == 200
        ok = await http.post("/codec/encode", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        back = await http.post("/codec/decode", json=ok.json(), headers={"Authorization": f"Bearer {TOKEN}"})
        assert back.json() == body


async def test_no_keys_no_codec(tmp_path: Path):
    async with codec_app(tmp_path) as http:
        response = await http.post("/codec/decode", json=plain_payloads('"x"'))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "codec_not_configured"
