"""Order validation: what a shop must send for an order to be shippable, with field-level messages."""

from decimal import Decimal

import pytest
from pydantic import TypeAdapter, ValidationError

from ordertrack.domain.durations import format_duration, parse_duration
from ordertrack.domain.models import NewOrder, Order
from ordertrack.domain.policy import TimingPolicy
from tests.factories import order_data, sample_order


def errors_of(**changes: object) -> dict[str, str]:
    with pytest.raises(ValidationError) as invalid:
        Order.model_validate(order_data(**changes))
    return {".".join(map(str, e["loc"])): e["msg"] for e in invalid.value.errors()}


def test_the_contract_sample_is_valid():
    order = Order.model_validate(order_data())
    assert order.total == Decimal("79.80") and order.customer.locale == "pt-BR"


@pytest.mark.parametrize(
    ("field", "change", "message"),
    [
        ("shipping_address.city", {"city": " "}, "must not be empty"),
        ("shipping_address.postal_code", {"postal_code": ""}, "must not be empty"),
        ("shipping_address.country", {"country": "Brazil"}, "ISO 3166-1 alpha-2"),
    ],
)
def test_missing_address_parts_are_named(field: str, change: dict[str, str], message: str):
    address = {**order_data()["shipping_address"], **change}
    assert message in errors_of(shipping_address=address)[field]


def test_address_without_line1_is_refused():
    address = {k: v for k, v in order_data()["shipping_address"].items() if k != "line1"}
    assert "shipping_address.line1" in errors_of(shipping_address=address)


@pytest.mark.parametrize(
    "email", ["ana", "ana@", "@example.com", "ana@example", "ana smith@example.com", "joão@example.com"]
)
def test_bad_email_is_refused(email: str):
    customer = {**order_data()["customer"], "email": email}
    assert "customer.email" in errors_of(customer=customer)


def test_international_domain_is_kept_deliverable():
    customer = {**order_data()["customer"], "email": "ana@exämple.com"}
    order = Order.model_validate(order_data(customer=customer))
    assert order.customer.email == "ana@xn--exmple-cua.com"


def test_no_items_and_non_positive_quantities_are_refused():
    assert "items" in errors_of(items=[])
    item = {**order_data()["items"][0], "quantity": 0}
    assert "greater than 0" in errors_of(items=[item])["items.0.quantity"]


def test_total_must_match_the_items():
    assert "does not match the items, which add up to 79.80" in errors_of(total="80.00")["total"]


def test_unknown_fields_and_naive_times_are_refused():
    assert "surprise" in errors_of(surprise=True)
    assert "placed_at" in errors_of(placed_at="2026-11-20T14:03:00")


def test_a_newline_in_a_name_cannot_reach_a_header():
    customer = {**order_data()["customer"], "name": "Eve\r\nBcc: evil@example.com"}
    assert Order.model_validate(order_data(customer=customer)).customer.name == "Eve Bcc: evil@example.com"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("36h", 129600), ("7d", 604800), ("1h30m", 5400), ("250ms", 0.25)]
)
def test_durations(text: str, seconds: float):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "7", "d", "-5s", "0s", "7 days"])
def test_bad_durations_name_the_input(text: str):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_policy_round_trips_as_short_durations():
    policy = TimingPolicy(ship_by="36h", review_request_delay="7d")  # type: ignore[arg-type]
    assert policy.model_dump(mode="json")["ship_by"] == "36h"
    assert TimingPolicy.model_validate_json(policy.model_dump_json()) == policy
    assert format_duration(policy.review_request_delay) == "1w"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "America/Nowhere", "../etc/passwd", "UTC+3"])
def test_unknown_time_zone_is_refused(zone: str):
    customer = {**order_data()["customer"], "time_zone": zone}
    assert "known IANA time zone" in errors_of(customer=customer)["customer.time_zone"]


@pytest.mark.parametrize("zone", ["Asia/Seoul", "America/Sao_Paulo", "Europe/Madrid", "UTC"])
def test_known_time_zones_are_kept(zone: str):
    order = Order.model_validate(order_data(customer={**order_data()["customer"], "time_zone": zone}))
    assert order.customer.time_zone == zone


def test_a_new_order_asking_for_texts_keeps_its_phone_in_e164() -> None:
    data = order_data(notify={"email": True, "whatsapp": True})
    data["customer"] = {**data["customer"], "phone": "+55 11 99999 0000"}
    order = TypeAdapter(NewOrder).validate_python(data)
    assert order.customer.phone == "+5511999990000" and order.notify.texts


def test_the_phone_check_is_for_new_orders_only_so_running_orders_still_read() -> None:
    data = order_data(notify={"email": True, "sms": True})
    data["customer"] = {**data["customer"], "phone": "+5511999"}  # accepted before the check existed
    assert Order.model_validate(data).customer.phone == "+5511999"
    with pytest.raises(ValidationError) as refused:
        TypeAdapter(NewOrder).validate_python(data)
    [error] = refused.value.errors()
    assert error["loc"] == ("customer", "phone") and error["type"] == "phone_number"


def test_whatsapp_is_written_only_when_asked_for() -> None:
    """An order without it serializes as before the channel existed: same digest, same payload."""
    assert "whatsapp" not in sample_order().model_dump_json()
    assert '"whatsapp":true' in sample_order(notify={"whatsapp": True}).model_dump_json()
