"""The HTTP API against the real app, a real Temporal dev server and an in-process worker."""

import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig
from temporalio.testing import WorkflowEnvironment

from ordertrack.domain import machine
from ordertrack.domain.messages import FulfillmentUpdate
from ordertrack.domain.models import Order
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.records import ChangeRecord, OrderRecord
from ordertrack.domain.statuses import FulfillmentEvent
from ordertrack.domain.view import order_view
from ordertrack.mail.sink import MailSink
from ordertrack.store import Store
from ordertrack.web.middleware import MAX_BODY_BYTES
from tests.factories import PIX_CODE, order_data
from tests.web.conftest import (
    OPERATOR_NAME,
    PUBLIC_URL,
    SHOP_KEY,
    Api,
    CountingStore,
    api_settings,
    new_order_id,
    running_api,
)

NOW = datetime(2026, 11, 20, 14, 3, tzinfo=UTC)
ADDRESS = {
    "name": "Ana Souza",
    "line1": "Rua Oscar Freire 10",
    "city": "São Paulo",
    "postal_code": "01426-000",
    "country": "BR",
}


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], str) and error["message"], error
    return error


def fields_of(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] in ("invalid_request", "invalid_json")
    return {entry["field"]: entry["message"] for entry in error["fields"]}


async def ship(api: Api, order_id: str) -> None:
    url = f"/api/orders/{order_id}/fulfillment"
    for event in (
        {"event": "picking_started"},
        {"event": "packed", "carrier": "simulated", "tracking_number": f"SIM-ONTIME-{order_id}"},
        {"event": "shipped"},
    ):
        response = await api.http.post(url, json=event, headers=api.shop)
        assert response.status_code == 200, response.text


# -- starting orders ---------------------------------------------------------------------------


async def test_start_answers_201_and_the_read_model_has_the_order(api: Api) -> None:
    order_id, response = await api.start()

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["order_id"] == order_id
    assert body["workflow_id"] == f"order-{order_id}"
    assert body["tracking_url"].startswith(f"{PUBLIC_URL}/t/")
    assert len(body["tracking_url"].rsplit("/", 1)[1]) >= 22
    assert response.headers["x-request-id"]

    order = await api.read(order_id, until="confirmed")
    assert order["tracking_url"] == body["tracking_url"]
    assert order["delayed"] is False
    assert order["total"] == "79.80" and order["currency"] == "BRL"
    assert order["items"] == [{"sku": "TSHIRT-M", "name": "T-shirt M", "quantity": 2, "unit_price": "39.90"}]
    assert order["shipping_city"] == "São Paulo"
    assert [entry["status"] for entry in order["timeline"]][-1] == "confirmed"
    text = json.dumps(order, ensure_ascii=False)
    for private in ("ana@example.com", "Rua Augusta", "+5511999990000"):
        assert private not in text


async def test_the_same_order_again_is_200_with_the_same_body(api: Api) -> None:
    order_id, first = await api.start()
    assert first.status_code == 201, first.text

    again = await api.http.post("/api/orders", json=order_data(order_id=order_id), headers=api.shop)

    assert again.status_code == 200, again.text
    assert again.json() == first.json()


async def test_the_same_id_with_other_contents_is_a_409(api: Api) -> None:
    order_id, first = await api.start()
    assert first.status_code == 201

    other = order_data(order_id=order_id, currency="EUR")
    response = await api.http.post("/api/orders", json=other, headers=api.shop)

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "order_conflict"
    assert order_id in error["message"]


async def test_an_invalid_order_is_a_422_naming_each_bad_field(app_only: Api) -> None:
    data = order_data(order_id=new_order_id(), currency="real")
    data["customer"] = {**data["customer"], "email": "not-an-email"}
    data["items"] = [{**data["items"][0], "quantity": 0}]
    data["shipping_address"] = {**data["shipping_address"], "country": "Brazil"}
    del data["placed_at"]

    response = await app_only.http.post("/api/orders", json=data, headers=app_only.shop)

    fields = fields_of(response)
    assert {
        "customer.email",
        "items[0].quantity",
        "currency",
        "shipping_address.country",
        "placed_at",
    } <= set(fields)
    assert "email" in fields["customer.email"]
    assert "ISO 4217" in fields["currency"]
    assert "customer.email" in error_of(response)["message"]


async def test_bad_payment_instructions_are_a_422_naming_the_field(app_only: Api) -> None:
    bad = [
        (
            {"kind": "pix", "code": PIX_CODE[:-1]},
            "payment.instructions.code",
            "not a Pix copy-and-paste code",
        ),
        ({"kind": "boleto", "line": "123"}, "payment.instructions.line", "not a boleto digitable line"),
        ({"kind": "url", "url": "http://pay.example.com/1"}, "payment.instructions.url", "https://"),
        ({"kind": "url"}, "payment.instructions.url", "required for a url payment"),
    ]
    for instructions, field, message in bad:
        payment = {"status": "pending", "method": "pix", "instructions": instructions}
        response = await app_only.http.post(
            "/api/orders", json=order_data(order_id=new_order_id(), payment=payment), headers=app_only.shop
        )
        assert list(fields_of(response)) == [field], response.text
        assert message in fields_of(response)[field]


async def test_an_order_awaiting_payment_keeps_its_instructions(api: Api) -> None:
    instructions = {"kind": "pix", "code": PIX_CODE}
    order_id, response = await api.start(
        payment={"status": "pending", "method": "pix", "instructions": instructions}
    )
    assert response.status_code == 201, response.text
    assert (await api.read(order_id))["status"] == "received"
    again = await api.http.post(
        "/api/orders",
        json=order_data(
            order_id=order_id, payment={"status": "pending", "method": "pix", "instructions": instructions}
        ),
        headers=api.shop,
    )
    assert again.status_code == 200, again.text  # the same order, instructions included


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["items"][0].update(quantity="2"), "items[0].quantity"),
        (lambda d: d["items"][0].update(unit_price=39.9), "items[0].unit_price"),
        (lambda d: d.update(total=79.8), "total"),
        (lambda d: d["notify"].update(email="true"), "notify.email"),
        (lambda d: d.update(order_id=1001), "order_id"),
        (lambda d: d.update(placed_at="2026-11-20T14:03:00"), "placed_at"),
        (lambda d: d.update(surprise=True), "surprise"),
    ],
    ids=[
        "int-as-string",
        "price-as-number",
        "total-as-number",
        "bool-as-string",
        "id-as-int",
        "naive",
        "extra",
    ],
)
async def test_json_types_are_not_coerced(app_only: Api, change: Any, field: str) -> None:
    data = order_data(order_id=new_order_id())
    change(data)

    response = await app_only.http.post("/api/orders", json=data, headers=app_only.shop)

    assert field in fields_of(response)


async def test_malformed_json_duplicate_keys_and_other_media_types_are_refused(app_only: Api) -> None:
    url = "/api/orders"
    headers = {**app_only.shop, "Content-Type": "application/json"}

    broken = await app_only.http.post(url, content=b'{"order_id": ', headers=headers)
    assert fields_of(broken).keys() == {"body"}

    duplicate = await app_only.http.post(url, content=b'{"order_id": "1", "order_id": "2"}', headers=headers)
    assert "duplicate key" in fields_of(duplicate)["body"]

    nan = json.dumps(order_data(order_id=new_order_id())).replace('"79.80"', "NaN").encode()
    assert "NaN" in fields_of(await app_only.http.post(url, content=nan, headers=headers))["body"]

    text = await app_only.http.post(
        url, content=b"order_id=1", headers={**app_only.shop, "Content-Type": "text/plain"}
    )
    assert text.status_code == 415
    assert error_of(text)["code"] == "unsupported_media_type"


async def test_a_body_over_the_limit_is_a_413(app_only: Api) -> None:
    data = order_data(order_id=new_order_id())
    data["customer"] = {**data["customer"], "name": "A" * (MAX_BODY_BYTES + 1)}

    declared = await app_only.http.post("/api/orders", json=data, headers=app_only.shop)
    assert declared.status_code == 413
    assert error_of(declared)["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        payload = json.dumps(data).encode()
        for start in range(0, len(payload), 8192):
            yield payload[start : start + 8192]

    streamed = await app_only.http.post(
        "/api/orders", content=chunks(), headers={**app_only.shop, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert error_of(streamed)["code"] == "payload_too_large"


# -- keys and roles ----------------------------------------------------------------------------


async def test_401_without_a_valid_key_and_403_without_the_role(app_only: Api) -> None:
    data = order_data(order_id=new_order_id())

    missing = await app_only.http.post("/api/orders", json=data)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert error_of(missing)["code"] == "missing_api_key"

    wrong = await app_only.http.post("/api/orders", json=data, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    assert error_of(wrong)["code"] == "invalid_api_key"

    basic = await app_only.http.get("/api/orders/1", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401
    assert error_of(basic)["code"] == "invalid_authorization_header"

    # A shop key may not do an operator's job; the refusal comes before the body is even looked at.
    forbidden = await app_only.http.post(
        "/api/orders/whatever/cancel", json={"reason": "x"}, headers=app_only.shop
    )
    assert forbidden.status_code == 403
    assert error_of(forbidden)["code"] == "insufficient_role"
    assert "operator" in error_of(forbidden)["message"]

    # An unauthenticated caller learns nothing about the body either.
    assert (await app_only.http.post("/api/orders", json={"bad": 1})).status_code == 401

    by_header = await app_only.http.get("/api/orders/unknown-1", headers={"X-API-Key": SHOP_KEY})
    assert by_header.status_code == 404  # authenticated, the order just does not exist


async def test_operator_actions_are_audited_under_the_keys_name(api: Api) -> None:
    order_id, response = await api.start()
    assert response.status_code == 201
    await api.read(order_id, until="confirmed")
    url = f"/api/orders/{order_id}"

    smuggled = await api.http.post(
        f"{url}/corrections",
        json={"status": "picking", "reason": "warehouse said so", "operator": "someone-else"},
        headers=api.operator,
    )
    assert "operator" in fields_of(smuggled)
    assert "API key" in fields_of(smuggled)["operator"]

    corrected = await api.http.post(
        f"{url}/corrections", json={"status": "picking", "reason": "warehouse said so"}, headers=api.operator
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["status"] == "picking"
    assert corrected.json()["timeline"][-1]["actor"] == OPERATOR_NAME

    moved = await api.http.put(
        f"{url}/shipping-address", json={"address": ADDRESS, "reason": "customer moved"}, headers=api.operator
    )
    assert moved.status_code == 200, moved.text

    old_link = response.json()["tracking_url"]
    rotated = await api.http.post(
        f"{url}/tracking-token", json={"reason": "link leaked"}, headers=api.operator
    )
    assert rotated.status_code == 200, rotated.text
    new_link = rotated.json()["tracking_url"]
    assert new_link != old_link and new_link.startswith(f"{PUBLIC_URL}/t/")

    cancelled = await api.http.post(f"{url}/cancel", json={"reason": "customer asked"}, headers=api.operator)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"

    order = await api.read(order_id, until="cancelled")
    assert order["tracking_url"] == new_link
    by_operator = [entry for entry in order["timeline"] if entry["actor"] == OPERATOR_NAME]
    assert {entry["reason"] for entry in by_operator} >= {
        "warehouse said so",
        "customer moved",
        "link leaked",
        "customer asked",
    }
    assert not [entry for entry in order["timeline"] if entry["actor"] == "someone-else"]


async def test_a_request_retried_with_its_idempotency_key_gets_the_first_answer(api: Api) -> None:
    order_id, response = await api.start()
    assert response.status_code == 201
    url = f"/api/orders/{order_id}"
    correction = {"status": "picking", "reason": "warehouse phoned"}
    key = {**api.operator, "Idempotency-Key": secrets.token_hex(16)}

    first = await api.http.post(f"{url}/corrections", json=correction, headers=key)
    again = await api.http.post(f"{url}/corrections", json=correction, headers=key)
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    # Without the key the same body is a second change, which the order refuses: it is picking.
    unkeyed = await api.http.post(f"{url}/corrections", json=correction, headers=api.operator)
    assert unkeyed.status_code == 409 and "already" in error_of(unkeyed)["message"]

    # A rotation retried with its key keeps the first new link (the client draws a token each time).
    rotation_key = {**api.operator, "Idempotency-Key": secrets.token_hex(16)}
    rotated = [
        await api.http.post(f"{url}/tracking-token", json={"reason": "leaked"}, headers=rotation_key)
        for _ in range(2)
    ]
    assert (
        rotated[0].json()["tracking_url"]
        == rotated[1].json()["tracking_url"]
        != response.json()["tracking_url"]
    )
    # The same key on another operation is another request.
    moved = await api.http.put(
        f"{url}/shipping-address", json={"address": ADDRESS, "reason": "moved"}, headers=rotation_key
    )
    assert moved.status_code == 200, moved.text
    order = await api.read(order_id)
    timeline_reasons = [entry["reason"] for entry in order["timeline"] if entry["actor"] == OPERATOR_NAME]
    assert timeline_reasons.count("warehouse phoned") == timeline_reasons.count("leaked") == 1


async def test_a_malformed_idempotency_key_is_a_422(app_only: Api) -> None:
    headers = {**app_only.operator, "Idempotency-Key": "has spaces"}
    response = await app_only.http.post(
        "/api/orders/any-1/cancel", json={"reason": "customer asked"}, headers=headers
    )
    assert response.status_code == 422
    assert "Idempotency-Key" in str(fields_of(response))


async def test_an_operator_can_act_without_telling_the_customer(
    api: Api, dev_env: WorkflowEnvironment
) -> None:
    order_id, response = await api.start()
    assert response.status_code == 201
    url = f"/api/orders/{order_id}"
    quiet = {"notify_customer": False}
    not_a_flag = await api.http.post(
        f"{url}/cancel", json={"reason": "fraud check failed", "notify_customer": "no"}, headers=api.operator
    )
    assert "notify_customer" in fields_of(not_a_flag)
    moved = await api.http.put(
        f"{url}/shipping-address",
        json={"address": ADDRESS, "reason": "typo fixed", **quiet},
        headers=api.operator,
    )
    assert moved.status_code == 200, moved.text
    cancelled = await api.http.post(
        f"{url}/cancel", json={"reason": "fraud check failed", **quiet}, headers=api.operator
    )
    assert cancelled.status_code == 200, cancelled.text

    await dev_env.client.get_workflow_handle(f"order-{order_id}").result()  # every message sent by now
    log = await api.http.get(f"{url}/notifications", headers=api.shop)
    assert [row["kind"] for row in log.json()["notifications"]] == ["confirmation"]


# -- updates -----------------------------------------------------------------------------------


async def test_a_refused_update_is_a_409_with_the_workflows_reason(api: Api) -> None:
    order_id, response = await api.start()
    assert response.status_code == 201
    url = f"/api/orders/{order_id}"

    early = await api.http.post(f"{url}/fulfillment", json={"event": "shipped"}, headers=api.shop)
    assert early.status_code == 409, early.text
    assert error_of(early)["code"] == "request_refused"

    await ship(api, order_id)
    late = await api.http.post(f"{url}/cancel", json={"reason": "customer asked"}, headers=api.operator)

    assert late.status_code == 409
    error = error_of(late)
    assert error["code"] == "request_refused"
    assert "shipped" in error["message"] and "cancel" in error["message"]
    address = await api.http.put(
        f"{url}/shipping-address", json={"address": ADDRESS, "reason": "too late"}, headers=api.operator
    )
    assert address.status_code == 409
    order = await api.read(order_id, until="shipped")
    assert order["carrier"] == "simulated" and order["tracking_number"] == f"SIM-ONTIME-{order_id}"


async def test_fulfillment_answers_the_orders_view(api: Api) -> None:
    order_id, _ = await api.start()

    response = await api.http.post(
        f"/api/orders/{order_id}/fulfillment", json={"event": "picking_started"}, headers=api.shop
    )

    assert response.status_code == 200, response.text
    view = response.json()
    assert view["order_id"] == order_id and view["status"] == "picking"
    assert view["tracking_url"].startswith(f"{PUBLIC_URL}/t/")
    assert view["timeline"][-1]["actor"] == "shop"


async def test_unknown_orders_are_404_and_bad_ids_422(app_only: Api) -> None:
    unknown = new_order_id("missing")
    requests = [
        app_only.http.get(f"/api/orders/{unknown}", headers=app_only.shop),
        app_only.http.post(
            f"/api/orders/{unknown}/fulfillment", json={"event": "picking_started"}, headers=app_only.shop
        ),
        app_only.http.post(
            f"/api/orders/{unknown}/cancel", json={"reason": "customer asked"}, headers=app_only.operator
        ),
        app_only.http.post(
            f"/api/orders/{unknown}/corrections",
            json={"status": "picking", "reason": "why"},
            headers=app_only.operator,
        ),
        app_only.http.post(
            f"/api/orders/{unknown}/tracking-token", json={"reason": "leak"}, headers=app_only.operator
        ),
    ]
    for request in requests:
        response = await request
        assert response.status_code == 404, response.text
        assert error_of(response)["code"] == "order_not_found"

    bad = await app_only.http.get("/api/orders/not%20an%20id", headers=app_only.shop)
    assert "order_id" in fields_of(bad)

    nowhere = await app_only.http.get("/api/nothing-here", headers=app_only.shop)
    assert nowhere.status_code == 404
    assert error_of(nowhere)["code"] == "not_found"


async def test_get_reads_the_read_model_only(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    order_id, _ = await api.start()
    await api.read(order_id)

    async def no_temporal(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("GET must not talk to Temporal")

    monkeypatch.setattr(Client, "get_workflow_handle", no_temporal)
    monkeypatch.setattr(Client, "get_workflow_handle_for", no_temporal)

    response = await api.http.get(f"/api/orders/{order_id}", headers=api.shop)
    assert response.status_code == 200
    assert response.json()["order_id"] == order_id


async def test_a_read_is_one_lookup_while_the_order_is_unchanged(app_only: Api) -> None:
    """The answer is made once per change of the order and kept; each read asks only whether the
    order changed (`Store.order_stamp`)."""
    store: Store = app_only.app.state.resources.store
    order = Order.model_validate(order_data(order_id=new_order_id()))
    started = machine.on_start(order, TimingPolicy(), NOW)
    token = "read-path-token-" + "x" * 16
    view = order_view(order, started.state, token)
    await store.save_order(OrderRecord(order=order, workflow_id="w", tracking_token=token, view=view))
    counting = CountingStore(store)
    app_only.app.state.resources.store = counting
    path = f"/api/orders/{order.order_id}"

    reads = [await app_only.http.get(path, headers=app_only.shop) for _ in range(2)]
    calls, counting.calls = counting.calls, []
    picking = machine.on_fulfillment(
        started.state, FulfillmentUpdate(event=FulfillmentEvent.PICKING_STARTED), NOW + timedelta(hours=1)
    )
    await store.record_change(
        ChangeRecord(view=order_view(order, picking.state, token), entries=picking.entries)
    )
    changed = await app_only.http.get(path, headers=app_only.shop)

    assert calls == ["order_stamp", "get_order_with_timeline", "order_stamp"]
    assert counting.calls == ["order_stamp", "get_order_with_timeline"]
    assert reads[0].content == reads[1].content
    assert reads[0].headers["content-type"] == "application/json"
    assert reads[0].json()["status"] == "confirmed" and changed.json()["status"] == "picking"
    assert [entry["status"] for entry in changed.json()["timeline"]][-1] == "picking"


# -- errors, health, metrics, schema -----------------------------------------------------------


async def test_an_unexpected_error_is_a_500_without_a_trace(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(order_id: str) -> None:
        raise RuntimeError("secret internals at /srv/db")

    monkeypatch.setattr(api.app.state.resources.store, "order_stamp", broken)

    response = await api.http.get("/api/orders/1001", headers=api.shop)

    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "internal_error"
    assert error["request_id"] == response.headers["x-request-id"]
    assert "secret" not in response.text and "Traceback" not in response.text

    async def unreachable() -> None:
        raise OSError("database is gone")

    monkeypatch.setattr(api.app.state.resources.store, "ping", unreachable)
    health = await api.http.get("/healthz")
    assert health.status_code == 503
    assert error_of(health)["code"] == "database_unavailable"


async def test_healthz(app_only: Api) -> None:
    response = await app_only.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_metrics_count_requests_by_route_template_and_status(app_only: Api) -> None:
    await app_only.http.get("/api/orders/nope-1", headers=app_only.shop)
    await app_only.http.get("/api/orders/nope-2", headers=app_only.shop)
    await app_only.http.get("/api/orders/nope-3")

    response = await app_only.http.get("/metrics", headers=app_only.scraper)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'ordertrack_http_requests_total{method="GET",route="/api/orders/{order_id}",status="404"} 2.0' in text
    )
    assert (
        'ordertrack_http_requests_total{method="GET",route="/api/orders/{order_id}",status="401"} 1.0' in text
    )
    assert "ordertrack_http_request_duration_seconds_bucket{" in text
    assert "nope-1" not in text


async def test_metrics_include_the_sdks_when_the_worker_runs_in_process(
    dev_env: WorkflowEnvironment, tmp_path: Path, mail_sink: MailSink
) -> None:
    buffer = MetricBuffer(100_000)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    client = await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=dev_env.client.namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )
    settings = api_settings(tmp_path, mail_sink.port)
    async with running_api(client, settings, mail_sink, sdk_metrics=buffer) as api:
        order_id, started = await api.start()
        assert started.status_code == 201
        await api.read(order_id, until="confirmed")

        text = (await api.http.get("/metrics", headers=api.scraper)).text

    assert "ordertrack_http_requests_total" in text
    assert "temporal_request_total{" in text  # client calls
    assert "temporal_workflow_task_execution_latency_bucket{" in text  # the worker ran a workflow task
    assert f'task_queue="{settings.task_queue}"' in text


async def test_openapi_documents_the_api(app_only: Api) -> None:
    schema = (await app_only.http.get("/openapi.json")).json()

    paths = schema["paths"]
    assert {"post"} <= set(paths["/api/orders"])
    assert "put" in paths["/api/orders/{order_id}/shipping-address"]
    order = schema["components"]["schemas"]["Order"]
    assert {"order_id", "customer", "items", "total"} <= set(order["properties"])
    assert order["properties"]["total"]["type"] == "string"
    assert "ErrorResponse" in schema["components"]["schemas"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schema["components"]["securitySchemes"])
    for path, method in [
        ("/api/orders/{order_id}/fulfillment", "post"),
        ("/api/orders/{order_id}/corrections", "post"),
        ("/api/orders/{order_id}/cancel", "post"),
        ("/api/orders/{order_id}/shipping-address", "put"),
        ("/api/orders/{order_id}/tracking-token", "post"),
    ]:
        headers = [p for p in paths[path][method]["parameters"] if p["in"] == "header"]
        assert [p["name"] for p in headers] == ["Idempotency-Key"], path
    assert (await app_only.http.get("/docs")).status_code == 200


# -- listing and search --------------------------------------------------------------------------


async def test_orders_are_listed_newest_first_with_filters_and_stable_pages(api: Api) -> None:
    tag = new_order_id("list")
    started = []
    for n in range(3):
        order_id, response = await api.start(
            order_id=f"{tag}-{n}", customer={"name": "Ana", "email": f"{tag}-{n}@Example.com", "locale": "en"}
        )
        assert response.status_code == 201, response.text
        await api.read(order_id, until="confirmed")
        started.append(order_id)
    await ship(api, started[1])
    await api.read(started[1], until="shipped")

    async def listed(**params: Any) -> dict[str, Any]:
        response = await api.http.get("/api/orders", params=params, headers=api.shop)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    assert [row["order_id"] for row in (await listed())["orders"]] == started[::-1]  # this test's database
    by_email = await listed(email=f"{tag}-2@example.COM")
    assert [row["order_id"] for row in by_email["orders"]] == [started[2]]
    by_number = await listed(tracking_number=f"SIM-ONTIME-{started[1]}")
    assert [row["order_id"] for row in by_number["orders"]] == [started[1]]
    both = await listed(status=["shipped", "in_transit"], carrier="simulated", email=f"{tag}-1@example.com")
    assert [row["order_id"] for row in both["orders"]] == [started[1]]
    row = both["orders"][0]
    assert row["tracking_url"].startswith(f"{PUBLIC_URL}/t/") and "timeline" not in row

    # Page by page, one order a page; an order started after the first page shifts nothing.
    seen: list[str] = []
    cursor = None
    while True:
        page = await listed(limit=1, **({"cursor": cursor} if cursor else {}))
        seen += [row["order_id"] for row in page["orders"]]
        if len(seen) == 1:
            late, _ = await api.start(order_id=f"{tag}-late")
            await api.read(late)
        if not (cursor := page["next_cursor"]):
            break
    assert seen == started[::-1]  # each once, in order; the late one sorts before the first page


async def test_listing_refuses_bad_filters_and_needs_a_key(app_only: Api) -> None:
    async def refused(**params: Any) -> set[str]:
        response = await app_only.http.get("/api/orders", params=params, headers=app_only.shop)
        assert response.status_code == 422, response.text
        return set(fields_of(response))

    assert "status" in str(await refused(status="shipping"))
    assert "limit" in str(await refused(limit=0)) and "limit" in str(await refused(limit=201))
    assert "created_since" in str(await refused(created_since="2026-11-01T00:00:00"))  # no offset
    assert await refused(cursor="not-a-cursor") == {"cursor"}
    assert await refused(stauts="shipped") == {"stauts"}  # a misspelt filter lists nothing
    assert (await app_only.http.get("/api/orders")).status_code == 401
