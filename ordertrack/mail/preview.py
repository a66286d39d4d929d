"""Realistic sample messages, to look at every kind in every language without running an order.

`preview(kind, locale, fmt)` renders what a customer of that locale would get; the samples are also
the fixtures of the rendering tests and snapshots.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Literal
from urllib.parse import quote

from ordertrack.domain.models import (
    Address,
    Customer,
    Item,
    Order,
    Payment,
    PaymentInstructions,
    PaymentKind,
    PaymentStatus,
)
from ordertrack.domain.notices import MARKETING, PAYMENT_PENDING, MessageKind
from ordertrack.domain.progress import DelayKind
from ordertrack.domain.records import NotificationRequest
from ordertrack.domain.statuses import OrderStatus
from ordertrack.domain.view import OrderView
from ordertrack.locales import resolve_locale
from ordertrack.mail.render import MessageLinks, render_email, render_sms

PLACED_AT = datetime(2026, 11, 20, 14, 3, tzinfo=UTC)
TRACKING_TOKEN = "k7Qm2xVb9RtL"
PAYMENT_TIMEOUT = timedelta(days=3)


@dataclass(frozen=True)
class _Sample:
    """What differs between locales: a typical customer, their address, shop items and carrier."""

    customer: Customer
    address: Address
    items: tuple[Item, ...]
    currency: str
    carrier: str
    tracking_number: str
    carrier_offset: timedelta  # the carrier's local offset, in which it gives date-only estimates
    pickup_location: str
    payment: PaymentInstructions  # how the shop's checkout asks this customer to pay, when pending


def _item(sku: str, name: str, quantity: int, unit_price: str) -> Item:
    return Item(sku=sku, name=name, quantity=quantity, unit_price=Decimal(unit_price))


def _payment_page(host: str) -> PaymentInstructions:
    return PaymentInstructions(kind=PaymentKind.URL, url=f"https://{host}/pay/1001")


# The Pix example of the Banco Central's BR Code manual (a real code's shape and checksum).
SAMPLE_PIX_CODE = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)


_SAMPLES: dict[str, _Sample] = {
    "en": _Sample(
        Customer(name="Emily Carter", email="emily@example.com", locale="en", time_zone="America/New_York"),
        Address(
            name="Emily Carter",
            line1="350 Hudson Street",
            line2="Apt 4B",
            city="New York",
            region="NY",
            postal_code="10014",
            country="US",
        ),
        (
            _item("SWEATER-M", "Merino wool sweater", 1, "89.00"),
            _item("TEE-S", "Organic cotton T-shirt", 2, "24.50"),
        ),
        "USD",
        "UPS",
        "1Z999AA10123456784",
        timedelta(hours=-5),
        "The UPS Store, 1357 Broadway",
        _payment_page("shop.example.com"),
    ),
    "pt-BR": _Sample(
        Customer(name="Ana Souza", email="ana@example.com", locale="pt-BR", time_zone="America/Sao_Paulo"),
        Address(
            name="Ana Souza",
            line1="Rua Augusta 1500",
            line2="apto 12",
            city="São Paulo",
            region="SP",
            postal_code="01304-001",
            country="BR",
        ),
        (
            _item("CAMISETA-M", "Camiseta de algodão", 2, "39.90"),
            _item("CANECA", "Caneca de cerâmica", 1, "45.00"),
        ),
        "BRL",
        "Correios",
        "NL123456785BR",
        timedelta(hours=-3),
        "Agência Correios Consolação, Rua da Consolação 2145",
        PaymentInstructions(kind=PaymentKind.PIX, code=SAMPLE_PIX_CODE),
    ),
    "es": _Sample(
        Customer(name="Lucía García", email="lucia@example.com", locale="es-ES", time_zone="Europe/Madrid"),
        Address(
            name="Lucía García",
            line1="Calle de Alcalá 42",
            line2="3.º B",
            city="Madrid",
            postal_code="28014",
            country="ES",
        ),
        (_item("JERSEY-M", "Jersey de lana", 1, "59.95"), _item("TAZA", "Taza de cerámica", 2, "12.50")),
        "EUR",
        "Correos",
        "PQ4F6P0701234560128001M",
        timedelta(hours=1),
        "Oficina de Correos, Calle de Atocha 62",
        _payment_page("tienda.example.es"),
    ),
    "ca": _Sample(
        Customer(name="Jordi Puig", email="jordi@example.com", locale="ca-ES", time_zone="Europe/Madrid"),
        Address(
            name="Jordi Puig",
            line1="Carrer de Mallorca 401",
            line2="2n 1a",
            city="Barcelona",
            postal_code="08013",
            country="ES",
        ),
        (
            _item("SAMARRETA-M", "Samarreta de cotó", 2, "19.90"),
            _item("TASSA", "Tassa de ceràmica", 1, "12.50"),
        ),
        "EUR",
        "Correos",
        "PQ4F6P0701234560108013X",
        timedelta(hours=1),
        "Oficina de Correos, Carrer d'Aragó 282",
        _payment_page("botiga.example.cat"),
    ),
    "ko": _Sample(
        Customer(name="김민준", email="minjun@example.com", locale="ko-KR", time_zone="Asia/Seoul"),
        Address(
            name="김민준",
            line1="강남구 테헤란로 152",
            line2="강남파이낸스센터 10층",
            city="서울특별시",
            postal_code="06236",
            country="KR",
        ),
        (_item("TEE-M", "오가닉 코튼 티셔츠", 2, "29000"), _item("MUG", "세라믹 머그컵", 1, "15000")),
        "KRW",
        "CJ대한통운",
        "684512345678",
        timedelta(hours=9),
        "CU 역삼센터점",
        _payment_page("shop.example.kr"),
    ),
}

# What a real order carries for each kind: where it stands and the details its notice holds.
_STATUS: dict[MessageKind, OrderStatus] = {
    MessageKind.CONFIRMATION: OrderStatus.CONFIRMED,
    MessageKind.SHIPPED: OrderStatus.SHIPPED,
    MessageKind.OUT_FOR_DELIVERY: OrderStatus.OUT_FOR_DELIVERY,
    MessageKind.DELAYED: OrderStatus.IN_TRANSIT,
    MessageKind.DELIVERY_FAILED: OrderStatus.DELIVERY_FAILED,
    MessageKind.AVAILABLE_FOR_PICKUP: OrderStatus.AVAILABLE_FOR_PICKUP,
    MessageKind.DELIVERED: OrderStatus.DELIVERED,
    MessageKind.REVIEW_REQUEST: OrderStatus.COMPLETED,
    MessageKind.CANCELLED: OrderStatus.CANCELLED,
    MessageKind.ADDRESS_CHANGED: OrderStatus.IN_TRANSIT,
    MessageKind.RETURNED: OrderStatus.RETURNED,
    MessageKind.LOST: OrderStatus.LOST,
    MessageKind.AWAITING_PAYMENT: OrderStatus.RECEIVED,
    MessageKind.PAYMENT_REMINDER: OrderStatus.RECEIVED,
}
_NOT_SHIPPED = frozenset({MessageKind.CONFIRMATION, MessageKind.CANCELLED, *PAYMENT_PENDING})


def _details(kind: MessageKind, sample: _Sample) -> dict[str, str]:
    new_date = datetime(2026, 11, 27, tzinfo=timezone(sample.carrier_offset))
    return {
        MessageKind.DELAYED: {
            "delay_kind": DelayKind.ESTIMATE_MOVED.value,
            "new_date": new_date.isoformat(),
            "reason": "carrier moved the estimate from 2026-11-24 to 2026-11-27",
        },
        MessageKind.OUT_FOR_DELIVERY: {"attempt": "1"},
        MessageKind.DELIVERY_FAILED: {"attempt": "1"},
        MessageKind.AVAILABLE_FOR_PICKUP: {"location": sample.pickup_location},
        MessageKind.CANCELLED: {"cause": "payment_timeout"},
        **{pending: {"pay_by": (PLACED_AT + PAYMENT_TIMEOUT).isoformat()} for pending in PAYMENT_PENDING},
    }.get(kind, {})


def sample_request(kind: MessageKind, locale: str) -> NotificationRequest:
    """A realistic request of `kind` for a customer of `locale`, as the workflow would send it."""
    sample = _SAMPLES[resolve_locale(locale)]
    items = list(sample.items)
    order = Order(
        order_id="1001",
        placed_at=PLACED_AT,
        customer=sample.customer,
        shipping_address=sample.address,
        items=items,
        currency=sample.currency,
        total=sum((item.subtotal for item in items), Decimal(0)),
        payment=(
            Payment(status=PaymentStatus.PENDING, instructions=sample.payment)
            if kind in PAYMENT_PENDING
            else Payment(status=PaymentStatus.PAID)
        ),
    )
    shipped = kind not in _NOT_SHIPPED
    details = _details(kind, sample)
    view = OrderView(
        order_id=order.order_id,
        status=_STATUS[kind],
        status_since=PLACED_AT + timedelta(days=2),
        delayed=kind == MessageKind.DELAYED,
        delay_reason=details.get("reason"),
        delay_kind=DelayKind(details["delay_kind"]) if "delay_kind" in details else None,
        carrier=sample.carrier if shipped else None,
        tracking_number=sample.tracking_number if shipped else None,
        estimated_delivery=(
            datetime(2026, 11, 24, tzinfo=timezone(sample.carrier_offset)) if shipped else None
        ),
        tracking_token=TRACKING_TOKEN,
        version=4,
    )
    return NotificationRequest(
        kind=kind, dedupe_key=f"{kind.value}-1", order=order, view=view, details=details
    )


def sample_links(request: NotificationRequest) -> MessageLinks:
    """Links as the sending activity builds them: a carrier page once shipped, unsubscribe on marketing."""
    carrier, number = request.view.carrier, request.view.tracking_number
    return MessageLinks(
        tracking_url=f"https://track.example-shop.com/t/{TRACKING_TOKEN}",
        review_url=f"https://shop.example.com/review/{request.order.order_id}",
        support_email="help@example-shop.com",
        carrier_url=f"https://carrier.example.com/{quote(carrier)}/{number}" if carrier and number else None,
        unsubscribe_url=(
            f"https://track.example-shop.com/unsubscribe/{TRACKING_TOKEN}"
            if request.kind in MARKETING
            else None
        ),
    )


def preview(kind: MessageKind, locale: str, fmt: Literal["html", "text", "sms"]) -> str:
    """The sample message as the customer sees it; `text` starts with a `Subject:` line."""
    request = sample_request(kind, locale)
    links = sample_links(request)
    if fmt == "sms":
        return render_sms(request, links) + "\n"
    rendered = render_email(request, links)
    return rendered.html if fmt == "html" else f"Subject: {rendered.subject}\n\n{rendered.text}"
