"""Standard Webhooks signing and verification (ordertrack.webhooks), checked against the spec's formula,
and how the `deliver_shop_event` activity signs, sends and classifies answers."""

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.webhooks import ShopWebhookActivities
from ordertrack.domain.records import ShopEvent
from ordertrack.domain.statuses import OrderStatus
from ordertrack.webhooks import (
    WebhookVerificationError,
    secret_key,
    sign,
    signature_headers,
    verify,
)

KEY = b"a 24-byte key for tests!"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
MSG_ID = "evt_1001_3"
NOW = 1_790_000_000
BODY = b'{"event_id":"evt_1001_3","order_id":"1001","status":"confirmed","seq":3}'


def spec_signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The spec's formula by hand: v1,base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))."""
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def test_round_trip_returns_the_payload():
    headers = signature_headers(SECRET, MSG_ID, BODY, timestamp=NOW)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == MSG_ID and headers["webhook-timestamp"] == str(NOW)
    assert verify(SECRET, headers, BODY, now=NOW) == json.loads(BODY)


def test_signature_matches_a_vector_computed_from_the_spec():
    expected = spec_signature(KEY, MSG_ID, NOW, BODY)
    assert sign(SECRET, MSG_ID, NOW, BODY) == expected
    assert sign(SECRET, MSG_ID, NOW, BODY.decode()) == expected  # str body: its UTF-8 bytes
    headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(NOW), "webhook-signature": expected}
    assert verify(SECRET, headers, BODY, now=NOW)["order_id"] == "1001"


def test_the_standard_webhooks_reference_vector():
    """The example in the Standard Webhooks reference libraries' test suites."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    msg_id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    timestamp = 1614265330
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(secret, msg_id, timestamp, body) == expected
    assert spec_signature(base64.b64decode(secret[6:]), msg_id, timestamp, body) == expected


def test_headers_in_any_case_and_several_signatures():
    headers = signature_headers(SECRET, MSG_ID, BODY, timestamp=NOW)
    other = spec_signature(b"an older secret", MSG_ID, NOW, BODY)
    mixed = {
        "Webhook-Id": headers["webhook-id"],
        "WEBHOOK-TIMESTAMP": headers["webhook-timestamp"],
        "Webhook-Signature": f"{other} v2,ignored {headers['webhook-signature']}",
    }
    assert verify(SECRET, mixed, BODY, now=NOW)


def test_tampered_body_is_rejected():
    headers = signature_headers(SECRET, MSG_ID, BODY, timestamp=NOW)
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify(SECRET, headers, BODY.replace(b"confirmed", b"cancelled"), now=NOW)


def test_tampered_id_or_timestamp_is_rejected():
    headers = signature_headers(SECRET, MSG_ID, BODY, timestamp=NOW)
    with pytest.raises(WebhookVerificationError):
        verify(SECRET, {**headers, "webhook-id": "evt_1001_4"}, BODY, now=NOW)
    with pytest.raises(WebhookVerificationError):
        verify(SECRET, {**headers, "webhook-timestamp": str(NOW + 1)}, BODY, now=NOW)


def test_wrong_secret_is_rejected():
    headers = signature_headers(SECRET, MSG_ID, BODY, timestamp=NOW)
    wrong = "whsec_" + base64.b64encode(b"another key").decode()
    with pytest.raises(WebhookVerificationError):
        verify(wrong, headers, BODY, now=NOW)


def test_stale_or_future_timestamp_is_rejected():
    headers = signature_headers(SECRET, MSG_ID, BODY, timestamp=NOW)
    assert verify(SECRET, headers, BODY, now=NOW + 299)
    with pytest.raises(WebhookVerificationError, match="away from now"):
        verify(SECRET, headers, BODY, now=NOW + 301)
    with pytest.raises(WebhookVerificationError, match="away from now"):
        verify(SECRET, headers, BODY, now=NOW - 301)
    assert verify(SECRET, headers, BODY, timedelta(minutes=10), now=NOW + 599)


def test_missing_or_malformed_headers_are_rejected():
    headers = signature_headers(SECRET, MSG_ID, BODY, timestamp=NOW)
    for name in headers:
        with pytest.raises(WebhookVerificationError, match="missing header"):
            verify(SECRET, {k: v for k, v in headers.items() if k != name}, BODY, now=NOW)
    with pytest.raises(WebhookVerificationError, match="invalid webhook-timestamp"):
        verify(SECRET, {**headers, "webhook-timestamp": "soon"}, BODY, now=NOW)
    with pytest.raises(WebhookVerificationError):
        verify(SECRET, {**headers, "webhook-signature": "v1"}, BODY, now=NOW)


def test_whsec_prefix_is_base64_and_a_raw_secret_is_its_utf8_bytes():
    assert secret_key(SECRET) == KEY
    assert secret_key("my shop secret") == b"my shop secret"
    assert secret_key(b"\x00\x01") == b"\x00\x01"
    raw_headers = signature_headers("my shop secret", MSG_ID, BODY, timestamp=NOW)
    assert raw_headers["webhook-signature"] == spec_signature(b"my shop secret", MSG_ID, NOW, BODY)
    assert verify("my shop secret", raw_headers, BODY, now=NOW)
    with pytest.raises(WebhookVerificationError):  # the prefixed and raw forms are different keys
        verify(
            SECRET.removeprefix("whsec_"),
            signature_headers(SECRET, MSG_ID, BODY, timestamp=NOW),
            BODY,
            now=NOW,
        )
    with pytest.raises(ValueError, match="base64"):
        secret_key("whsec_not base64!")
    with pytest.raises(ValueError, match="empty"):
        secret_key("whsec_")


# -- the deliver_shop_event activity, over httpx's mock transport -----------------------------------

EVENT = ShopEvent(
    event_id="evt_1001_3",
    order_id="1001",
    status=OrderStatus.CONFIRMED,
    delayed=False,
    at=datetime(2026, 11, 20, 15, 0, tzinfo=UTC),
    seq=3,
)


async def deliver(answer: Callable[[httpx.Request], httpx.Response]) -> tuple[Any, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        webhooks = ShopWebhookActivities("https://shop.example/hooks", SECRET, http=http)
        try:
            return await ActivityEnvironment().run(webhooks.deliver_shop_event, EVENT), seen
        except ApplicationError as err:
            return err, seen


async def test_delivery_posts_the_signed_compact_event():
    result, [request] = await deliver(lambda request: httpx.Response(204))
    assert result.status == "delivered" and result.status_code == 204
    body = request.content
    assert body == EVENT.model_dump_json().encode() and b" " not in body
    assert json.loads(body)["at"] == "2026-11-20T15:00:00Z"
    assert request.method == "POST" and str(request.url) == "https://shop.example/hooks"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("ordertrack/")
    assert request.headers["webhook-id"] == "evt_1001_3"
    assert verify(SECRET, request.headers, body)["seq"] == 3


@pytest.mark.parametrize("code", [400, 401, 403, 404, 410, 422])
async def test_a_4xx_is_a_rejection_not_retried(code: int):
    err, _ = await deliver(lambda request: httpx.Response(code, text="no thanks"))
    assert isinstance(err, ApplicationError) and err.type == "ShopWebhookRejected" and err.non_retryable
    assert f"HTTP {code}" in err.message and "no thanks" in err.message


@pytest.mark.parametrize("code", [408, 500, 502, 503, 301])
async def test_timeouts_server_errors_and_redirects_are_retried(code: int):
    err, _ = await deliver(lambda request: httpx.Response(code))
    assert isinstance(err, ApplicationError) and err.type == "ShopWebhookUnavailable"
    assert not err.non_retryable and err.next_retry_delay is None


async def test_a_429_is_retried_after_its_retry_after():
    err, _ = await deliver(lambda request: httpx.Response(429, headers={"Retry-After": "120"}))
    assert isinstance(err, ApplicationError) and err.type == "ShopWebhookRateLimited"
    assert not err.non_retryable and err.next_retry_delay == timedelta(seconds=120)
    err, _ = await deliver(lambda request: httpx.Response(429))
    assert isinstance(err, ApplicationError) and err.next_retry_delay is None


async def test_an_unreachable_receiver_is_retried():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    err, _ = await deliver(refuse)
    assert isinstance(err, ApplicationError) and err.type == "ShopWebhookUnavailable"
    assert not err.non_retryable


async def test_without_a_url_events_are_skipped_and_a_url_needs_a_secret():
    result = await ActivityEnvironment().run(ShopWebhookActivities(None, None).deliver_shop_event, EVENT)
    assert result.status == "skipped"
    with pytest.raises(ValueError, match="SHOP_WEBHOOK_SECRET"):
        ShopWebhookActivities("https://shop.example/hooks", None)
    with pytest.raises(ValueError, match="base64"):
        ShopWebhookActivities("https://shop.example/hooks", "whsec_???")
