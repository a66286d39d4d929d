"""Order validation: what a shop must send for an order to be shippable, with field-level messages."""

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from ordertrack.domain.durations import format_duration, parse_duration
from ordertrack.domain.models import Order
from ordertrack.domain.policy import TimingPolicy
from tests.factories import BOLETO_LINE, PIX_CODE, order_data


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


def pending_with(**instructions: object) -> dict[str, object]:
    return {"status": "pending", "method": "pix", "instructions": instructions}


@pytest.mark.parametrize(
    "instructions",
    [
        {"kind": "pix", "code": PIX_CODE},
        {"kind": "pix", "code": PIX_CODE[:-4] + "1d3d"},  # the checksum's hex in either case
        {"kind": "boleto", "line": BOLETO_LINE},
        {
            "kind": "boleto",
            "line": BOLETO_LINE.replace(".", "").replace(" ", ""),
            "url": "https://b.example/1",
        },
        {"kind": "boleto", "line": "8" * 48},  # a bill's 48 digits
        {"kind": "url", "url": "https://pay.example.com/checkout/cs_1001?lang=pt-BR#step-2"},
    ],
    ids=["pix", "pix-lowercase-checksum", "boleto", "boleto-digits-and-link", "bill", "url"],
)
def test_payment_instructions_of_each_kind_are_kept(instructions: dict[str, str]):
    order = Order.model_validate(order_data(payment=pending_with(**instructions)))
    kept = order.payment.instructions
    assert kept is not None and kept.model_dump(exclude_none=True) == instructions


@pytest.mark.parametrize(
    ("instructions", "field", "message"),
    [
        ({"kind": "pix"}, "code", "required for a pix payment"),
        ({"kind": "pix", "code": PIX_CODE.replace("Fulano", "Fulana")}, "code", "checksum does not match"),
        ({"kind": "pix", "code": PIX_CODE[:-20]}, "code", "not a Pix copy-and-paste code"),
        ({"kind": "pix", "code": "000201" + "9" * 600 + "6304ABCD"}, "code", "at most 512 characters"),
        ({"kind": "pix", "code": PIX_CODE, "url": "https://pay.example"}, "url", "not part of a pix payment"),
        ({"kind": "boleto", "url": "https://b.example/1"}, "line", "required for a boleto payment"),
        ({"kind": "boleto", "line": BOLETO_LINE[:-1]}, "line", "not a boleto digitable line"),
        ({"kind": "boleto", "line": BOLETO_LINE + "x"}, "line", "not a boleto digitable line"),
        ({"kind": "boleto", "line": BOLETO_LINE, "code": PIX_CODE}, "code", "which takes line, url"),
        ({"kind": "url"}, "url", "required for a url payment"),
        ({"kind": "url", "url": "http://pay.example.com/1"}, "url", "not an https:// URL"),
        ({"kind": "url", "url": "javascript:alert(1)"}, "url", "not an https:// URL"),
        ({"kind": "url", "url": "https:///no-host"}, "url", "not an https:// URL"),
        ({"kind": "url", "url": "https://pay.example.com/a b"}, "url", "no spaces or control characters"),
        (
            {"kind": "url", "url": "https://pay.example.com/a\u2028b"},
            "url",
            "no spaces or control characters",
        ),
        ({"kind": "pix", "code": PIX_CODE.replace("Tal", "T\nl")}, "code", "not a Pix copy-and-paste code"),
        ({"kind": "url", "url": "https://pay.example.com/" + "a" * 1000}, "url", "at most 1000 characters"),
        ({"kind": "card", "url": "https://pay.example.com/1"}, "kind", "'pix', 'boleto' or 'url'"),
    ],
)
def test_bad_payment_instructions_name_the_field_and_the_problem(
    instructions: dict[str, str], field: str, message: str
):
    found = errors_of(payment=pending_with(**instructions))
    assert list(found) == [f"payment.instructions.{field}"]
    assert message in found[f"payment.instructions.{field}"]


def test_an_order_without_instructions_serializes_as_before_they_existed():
    """The start's order digest must not change for orders already started (retries find them)."""
    assert Order.model_validate(order_data()).model_dump(mode="json")["payment"] == {
        "status": "paid",
        "method": "pix",
    }


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "examples").glob("*.json")), ids=str)
def test_the_example_orders_are_valid(path: Path):
    Order.model_validate_json(path.read_text(), strict=True)
