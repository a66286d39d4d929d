"""`ordertrack up --demo`: sample orders with different journeys, moved along by a pretend warehouse."""

import asyncio
import logging
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal

from temporalio.client import Client

from ordertrack import orders
from ordertrack.domain.messages import FulfillmentUpdate
from ordertrack.domain.models import Order
from ordertrack.domain.statuses import FulfillmentEvent
from ordertrack.settings import Settings
from ordertrack.tracking_link import tracking_url

log = logging.getLogger("ordertrack.demo")

# (customer, locale, city, country, journey prefix or None for an order that never ships, paid)
CASTING = [
    ("Ana Souza", "pt-BR", "São Paulo", "BR", "SIM-ONTIME-", True),
    ("João Silva", "pt-BR", "Lisboa", "PT", "SIM-DELAYED-", True),
    ("Marta García", "es", "Barcelona", "ES", "SIM-FAILED-", True),
    ("Min-jun Kim", "ko", "Seoul", "KR", "SIM-EXCEPTION-", True),
    ("Emily Clarke", "en", "Leeds", "GB", "SIM-LOST-", True),
    ("Jordi Puig", "ca", "Girona", "ES", "SIM-RETURNED-", True),
    # Payment never arrives: told how to pay, reminded, then cancelled on timeout.
    ("Sam Taylor", "en", "Austin", "US", None, False),
]

# Where the demo customers live, for quiet hours and the times in their messages.
TIME_ZONES = {
    "BR": "America/Sao_Paulo",
    "PT": "Europe/Lisbon",
    "ES": "Europe/Madrid",
    "KR": "Asia/Seoul",
    "GB": "Europe/London",
    "US": "America/Chicago",
}
# These customers also asked for text messages (they land in the SMS sink under var/sms/).
TEXTED = {"Ana Souza": "+5511999990000", "Marta García": "+34600111222"}

WAREHOUSE = [FulfillmentEvent.PICKING_STARTED, FulfillmentEvent.PACKED, FulfillmentEvent.SHIPPED]


def sample_order(order_id: str, name: str, locale: str, city: str, country: str, paid: bool) -> Order:
    """A valid order for demos and tests (the contract's shape, made-up people)."""
    mailbox = "".join(
        ch for ch in unicodedata.normalize("NFKD", name.lower()) if ch.isascii() and ch.isalnum()
    )
    return Order.model_validate(
        {
            "order_id": order_id,
            "placed_at": datetime.now(UTC).isoformat(),
            "customer": {
                "name": name,
                "email": f"{mailbox}@example.com",
                "locale": locale,
                "time_zone": TIME_ZONES[country],
                "phone": TEXTED.get(name),
            },
            "shipping_address": {
                "name": name,
                "line1": "1 Sample Street",
                "city": city,
                "postal_code": "01000-000",
                "country": country,
            },
            "items": [
                {"sku": "TSHIRT-M", "name": "T-shirt M", "quantity": 2, "unit_price": "39.90"},
                {"sku": "MUG", "name": "Mug", "quantity": 1, "unit_price": "15.00"},
            ],
            "currency": "EUR",
            "total": str(Decimal("39.90") * 2 + Decimal("15.00")),
            "payment": (
                {"status": "paid", "method": "card"}
                if paid
                else {
                    "status": "pending",
                    "method": "card",
                    "instructions": {"kind": "url", "url": f"https://pay.example.com/{order_id}"},
                }
            ),
            "notify": {"email": True, "sms": name in TEXTED},
        }
    )


async def _walk(client: Client, order: Order, prefix: str, pause: float) -> None:
    tracking_number = f"{prefix}{order.order_id.upper()}"
    for event in WAREHOUSE:
        await asyncio.sleep(pause)
        labelled = event != FulfillmentEvent.PICKING_STARTED
        update = FulfillmentUpdate(
            event=event,
            carrier="simulated" if labelled else None,
            tracking_number=tracking_number if labelled else None,
        )
        await orders.record_fulfillment(client, order.order_id, update)
        log.info("demo order %s: %s", order.order_id, event.value)


async def feed_demo_orders(client: Client, settings: Settings, pause: float = 4.0) -> None:
    """Start one order per journey, then walk the shipped ones through the warehouse."""
    batch = datetime.now(UTC).strftime("%H%M%S")
    walks = []
    for number, (name, locale, city, country, prefix, paid) in enumerate(CASTING, start=1):
        order = sample_order(f"demo-{batch}-{number}", name, locale, city, country, paid)
        started = await orders.start_order(
            client,
            order,
            settings.timing_policy(),
            settings.task_queue,
            shop_webhooks=bool(settings.shop_webhook_url),
        )
        log.info(
            "demo order %s started: %s",
            order.order_id,
            tracking_url(settings.public_url, started.tracking_token),
        )
        if prefix:
            walks.append(_walk(client, order, prefix, pause + number))
    await asyncio.gather(*walks)
    log.info("demo orders are with the carrier; watch them at http://localhost:8233")
