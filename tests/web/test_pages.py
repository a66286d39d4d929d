"""The tracking page and the lost-link lookup against the real app and read model (no Temporal).

Orders are seeded with the real state machine and Store, so the page sees exactly what a
workflow would have written.
"""

import html
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import column, table

from ordertrack.domain import machine
from ordertrack.domain.messages import (
    AddressChangeRequest,
    CancelRequest,
    FulfillmentUpdate,
    TokenRotationRequest,
)
from ordertrack.domain.models import Order
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.progress import DelayKind
from ordertrack.domain.records import ChangeRecord, OrderRecord
from ordertrack.domain.state import OrderState
from ordertrack.domain.statuses import FulfillmentEvent, OrderStatus
from ordertrack.domain.timeline import EntryKind, TimelineEntry
from ordertrack.domain.tracking import TrackingEvent, TrackingSnapshot
from ordertrack.domain.view import order_view
from ordertrack.locales import SUPPORTED_LOCALES, negotiate, resolve_locale
from ordertrack.locales.translations import SOURCE_LOCALE, catalog_path
from ordertrack.mail.catalogs import TEMPLATE, read_catalog
from ordertrack.settings import Settings
from ordertrack.store import create_engine, migrate
from ordertrack.store.repository import Store
from ordertrack.store.tables import orders, timeline_events
from ordertrack.web.app import create_app
from ordertrack.web.locales import _DATE_PATTERNS, PageLocale
from ordertrack.web.pages import (
    DELAY_TEXTS,
    PAGE_HEADERS,
    SIDE_STATES,
    SIDE_TEXTS,
    STATUS_LABELS,
    TRACKING_PAGE_HEADERS,
    LookupLimiter,
    RateLimit,
    render,
)
from tests.factories import order_data
from tests.web.conftest import CountingStore

T0 = datetime(2026, 11, 20, 14, 3, tzinfo=UTC)
BRT = timezone(timedelta(hours=-3))
CARRIER_SITE = "https://carrier.example"
TOKEN = "tok_Q2hlY2tUaGVUb2tlbkxlbmd0aDMy"
PRIVATE = ("Rua Augusta", "apto 12", "01304-001", "ana@example.com", "+5511999990000", "Souza")


# -- seeding -----------------------------------------------------------------------------------


@dataclass
class Seeded:
    order: Order
    state: OrderState
    token: str

    @property
    def time_zone(self) -> str:
        """As the workflow names it: the customer's zone, else the policy's default."""
        return self.order.customer.time_zone or TimingPolicy().default_time_zone


async def _apply(store: Store, seeded: Seeded, outcome: machine.Outcome) -> None:
    seeded.state = outcome.state
    if outcome.entries:
        view = order_view(seeded.order, outcome.state, seeded.token)
        change = ChangeRecord(view=view, entries=outcome.entries, time_zone=seeded.time_zone)
        await store.record_change(change)


async def seed_order(
    store: Store,
    *,
    token: str = TOKEN,
    order_id: str = "1001",
    locale: str = "pt-BR",
    journey: str = "in_transit",
    items: list[dict[str, Any]] | None = None,
    time_zone: str | None = "America/Sao_Paulo",
    first_estimate: datetime = datetime(2026, 11, 24, tzinfo=BRT),  # a date, as carriers give it
) -> Seeded:
    """An order taken through a journey with the real machine:

    `confirmed`, `in_transit` (two scans), `delayed` (the carrier then moves the estimate a day
    later), `exception`, `delivered`, `cancelled`.
    """
    data = order_data(order_id=order_id)
    data["customer"] = {**data["customer"], "locale": locale, "time_zone": time_zone}
    if items is not None:
        data["items"] = items
        data["total"] = str(sum(float(i["unit_price"]) * i["quantity"] for i in items))
    order = Order.model_validate(data)
    start = machine.on_start(order, TimingPolicy(), T0)
    seeded = Seeded(order, start.state, token)
    view = order_view(order, start.state, token)
    await store.save_order(
        OrderRecord(
            order=order,
            workflow_id=f"order-{order_id}",
            tracking_token=token,
            view=view,
            time_zone=seeded.time_zone,
        )
    )
    if journey == "confirmed":
        return seeded
    if journey == "cancelled":
        cancel = CancelRequest(reason="customer asked", operator="rita")
        await _apply(store, seeded, machine.on_cancel(seeded.state, cancel, T0 + timedelta(hours=1)))
        return seeded

    number = f"SIM-{'DELAYED' if journey == 'delayed' else 'ONTIME'}-{order_id}"
    for event, hours in ((FulfillmentEvent.PACKED, 2), (FulfillmentEvent.SHIPPED, 3)):
        update = FulfillmentUpdate(event=event, carrier="simulated", tracking_number=number)
        await _apply(store, seeded, machine.on_fulfillment(seeded.state, update, T0 + timedelta(hours=hours)))
    scans = [
        TrackingEvent(
            at=T0 + timedelta(hours=5),
            status=OrderStatus.IN_TRANSIT,
            message="Picked up",
            location="São Paulo, SP",
        ),
        TrackingEvent(
            at=T0 + timedelta(hours=20),
            status=OrderStatus.IN_TRANSIT,
            message="Arrived at sorting facility",
            location="Curitiba, PR",
        ),
    ]
    policy = TimingPolicy()

    async def carrier(status: OrderStatus, estimate: datetime, hours: int, *extra: TrackingEvent) -> None:
        snapshot = TrackingSnapshot(
            carrier="simulated",
            tracking_number=number,
            status=status,
            events=[*scans, *extra],
            estimated_delivery=estimate,
        )
        outcome = machine.on_tracking(seeded.state, snapshot, policy, T0 + timedelta(hours=hours))
        await _apply(store, seeded, outcome)

    await carrier(OrderStatus.IN_TRANSIT, first_estimate, 21)
    # For ops only: must never reach the customer's page.
    error = machine.on_tracking_error(
        seeded.state, "carrier answered 401: check the API key", T0 + timedelta(hours=22)
    )
    await _apply(store, seeded, error)
    if journey == "delayed":
        await carrier(OrderStatus.IN_TRANSIT, first_estimate + timedelta(days=1), 30)
    elif journey == "exception":
        problem = TrackingEvent(
            at=T0 + timedelta(hours=29), status=OrderStatus.EXCEPTION, message="Damaged label"
        )
        await carrier(OrderStatus.EXCEPTION, first_estimate, 30, problem)
    elif journey == "delivered":
        done = TrackingEvent(at=T0 + timedelta(hours=40), status=OrderStatus.DELIVERED, message="Delivered")
        await carrier(OrderStatus.DELIVERED, first_estimate, 41, done)
    return seeded


# -- the app -----------------------------------------------------------------------------------


@dataclass
class Site:
    app: FastAPI
    store: Store
    client: httpx.AsyncClient


SCRAPE_TOKEN = "pages-scrape-token"


@asynccontextmanager
async def open_site(database_url: str, default_time_zone: str = "UTC", **changes: Any) -> AsyncIterator[Site]:
    """The app on `database_url` (migrated on start); settings spelled out, none from the environment
    that matter to a page."""
    settings = Settings(
        database_url=database_url,
        simulated_carrier_url=CARRIER_SITE,
        default_time_zone=default_time_zone,
        metrics_token=SCRAPE_TOKEN,
        **changes,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        store: Store = app.state.resources.store
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Site(app, store, client)


def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'var' / 'ordertrack.db'}"


def database_url_of(site: Site) -> str:
    url: str = site.app.state.resources.settings.database_url
    return url


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with open_site(database_url(tmp_path)) as site:
        yield site


def text_of(page: str) -> str:
    """The page's visible text, tags dropped and entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.split("</style>")[-1])).split())


def assert_hygiene(response: httpx.Response, expected: Mapping[str, str] = PAGE_HEADERS) -> None:
    for name, value in expected.items():
        assert response.headers.get(name) == value, name


# -- the tracking page -------------------------------------------------------------------------


async def test_hit_shows_status_steps_carrier_items_and_city_but_nothing_private(site: Site) -> None:
    await seed_order(site.store, locale="en")

    response = await site.client.get(f"/t/{TOKEN}")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page, text = response.text, text_of(response.text)
    assert '<html lang="en">' in page
    assert "Order 1001" in text
    assert re.search(r'<h1 id="status">In transit</h1>', page)
    steps = re.findall(r'<li class="(done|current|todo)"[^>]*>([^<]+)</li>', page)
    assert [label for _, label in steps] == [
        "Order received", "Confirmed", "Being prepared", "Packed", "Shipped", "In transit",
        "Out for delivery", "Delivered",
    ]  # fmt: skip
    assert [state for state, _ in steps] == ["done"] * 5 + ["current", "todo", "todo"]
    assert '<li class="current" aria-current="step">In transit</li>' in page
    link = f'href="{CARRIER_SITE}/track/SIM-ONTIME-1001" rel="noopener noreferrer"'
    assert link in page
    # The carrier by its display name, never its code.
    assert "SIM-ONTIME-1001" in text and "Simulated Carrier" in text and "simulated" not in text
    assert "Estimated delivery: Tue 24 Nov 2026" in text
    assert "T-shirt M \u00d7 2" in text
    assert "R$79.80" in text
    assert "São Paulo, BR" in text
    for private in PRIVATE:
        assert private not in page
    assert "Your order is delayed" not in text


async def test_delay_banner_gives_the_reason_and_the_new_date_in_the_customers_language(site: Site) -> None:
    await seed_order(site.store, journey="delayed")  # pt-BR

    response = await site.client.get(f"/t/{TOKEN}")

    text = text_of(response.text)
    assert '<html lang="pt-BR">' in response.text
    assert "Seu pedido está atrasado" in text
    assert "A transportadora alterou a previsão de entrega." in text
    assert "Nova previsão de entrega: qua., 25 de nov. de 2026" in text
    assert "Em trânsito" in text and "Pedido 1001" in text
    assert "R$ 79,80" in text


@pytest.mark.parametrize(
    ("locale", "lang", "words"),
    [
        ("pt-BR", "pt-BR", ["Em trânsito", "Itens", "Histórico", "Rastrear no site da transportadora"]),
        ("pt", "pt-BR", ["Em trânsito", "Previsão de entrega: ter., 24 de nov. de 2026"]),
        ("es", "es", ["En tránsito", "Artículos", "Historial", "Entrega estimada: mar, 24 nov 2026"]),
        ("es-MX", "es", ["En tránsito", "79,80 BRL"]),
        ("en-GB", "en", ["In transit", "Items"]),
        ("fr", "en", ["In transit", "Items", "History"]),
        ("de-DE", "en", ["In transit"]),
    ],
)
async def test_page_speaks_the_orders_locale_or_the_nearest_or_english(
    site: Site, locale: str, lang: str, words: list[str]
) -> None:
    await seed_order(site.store, locale=locale)

    response = await site.client.get(f"/t/{TOKEN}")

    assert f'<html lang="{lang}">' in response.text
    text = text_of(response.text)
    for word in words:
        assert word in text


HEADINGS = {"ca": "Comanda 1001", "ko": "주문 1001"}
STEP_LABELS = {
    "ca": [
        *("Comanda rebuda", "Confirmada", "En preparació", "Empaquetada", "Enviada", "En trànsit"),
        *("En repartiment", "Lliurada"),
    ],
    "ko": [
        *("주문 접수", "주문 확인", "상품 준비 중", "포장 완료", "발송 완료", "배송 중"),
        *("배송 출발", "배송 완료"),
    ],
}
CA_LINK = "Segueix-la al web de l'empresa de transport"
CA_DELAYED = [
    "La teva comanda s'ha endarrerit",
    "L'empresa de transport ha endarrerit la data prevista de lliurament.",
    "Nova data de lliurament prevista: dimecres, 25 de novembre de 2026",
]
KO_DELAYED = [
    "배송이 지연되고 있습니다",
    "택배사의 배송 예정일이 뒤로 변경되었습니다.",
    "변경된 도착 예정일: 2026년 11월 25일 (수)",
]


@pytest.mark.parametrize(
    ("locale", "journey", "status", "words"),
    [
        ("ca", "confirmed", "Confirmada", ["Progrés", "Historial", "Articles", "Lliurament a"]),
        ("ca", "in_transit", "En trànsit", ["Lliurament previst: dimarts, 24 de novembre de 2026", CA_LINK]),
        ("ca", "delayed", "En trànsit", CA_DELAYED),
        ("ca", "exception", "Incidència en el lliurament", ["informat d'una incidència amb el teu paquet"]),
        ("ca", "delivered", "Lliurada", ["Lliurada el diumenge, 22 de novembre de 2026"]),
        ("ca", "cancelled", "Cancel·lada", ["Aquesta comanda s'ha cancel·lat."]),
        ("ko", "confirmed", "주문 확인", ["진행 상황", "상세 내역", "주문 상품", "배송지"]),
        (
            "ko",
            "in_transit",
            "배송 중",
            ["도착 예정일: 2026년 11월 24일 (화)", "택배사 웹사이트에서 조회하기"],
        ),
        ("ko", "delayed", "배송 중", KO_DELAYED),
        ("ko", "exception", "배송 문제 발생", ["상품 배송 중 문제가 발생했다고 알려 왔습니다."]),
        ("ko", "delivered", "배송 완료", ["배송 완료일 2026년 11월 22일 (일)"]),
        ("ko", "cancelled", "주문 취소", ["이 주문은 취소되었습니다."]),
    ],
)
async def test_page_speaks_catalan_and_korean_in_every_state(
    site: Site, locale: str, journey: str, status: str, words: list[str]
) -> None:
    await seed_order(site.store, locale=f"{locale}-{'ES' if locale == 'ca' else 'KR'}", journey=journey)

    page = (await site.client.get(f"/t/{TOKEN}")).text

    text = text_of(page)
    assert f'<html lang="{locale}">' in page
    assert f'<h1 id="status">{status}</h1>' in page
    assert f"{HEADINGS[locale]} " in text
    assert re.findall(r'<li class="(?:done|current|todo)"[^>]*>([^<]+)</li>', page) == STEP_LABELS[locale]
    for word in words:
        assert word in text
    for english in ("Order 1001", "Progress", "History", "Items", "Estimated delivery", "Last update"):
        assert english not in text


def catalog_words(locale: str) -> dict[tuple[str, str | None], str]:
    """(msgid, context) -> the locale's word, read straight from its `.po` file (English: the msgid)."""
    if locale == SOURCE_LOCALE:
        return {(str(m.id), m.context): str(m.id) for m in read_catalog(TEMPLATE) if m.id}
    catalog = read_catalog(catalog_path(locale), locale)
    return {(str(m.id), m.context): str(m.string) for m in catalog if m.id}


PAGE_WORDS = [
    *(
        (message, None)
        for message in (
            "Progress", "History", "Items", "Shipping to", "Your order is delayed", "In transit", "Delay",
            "Estimated delivery updated", "This page is private to you: do not share its link.",
            DELAY_TEXTS[DelayKind.ESTIMATE_MOVED],
        )
    ),
    ("Tracking number", "tracking page"),
    ("Carrier", "tracking page"),
]  # fmt: skip


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
async def test_each_locale_shows_the_words_of_its_catalog(site: Site, locale: str) -> None:
    await seed_order(site.store, locale=locale, journey="delayed")
    await seed_order(site.store, locale=locale, journey="exception", order_id="1002", token="token-1002")

    delayed = text_of((await site.client.get(f"/t/{TOKEN}")).text)
    exception = text_of((await site.client.get("/t/token-1002")).text)

    words = catalog_words(locale)
    for key in PAGE_WORDS:
        assert words[key] in delayed, key
    assert words["Order %(order_id)s", None].replace("%(order_id)s", "1001") in delayed
    assert words[STATUS_LABELS[OrderStatus.EXCEPTION], None] in exception
    assert words[SIDE_TEXTS[OrderStatus.EXCEPTION], None] in exception


async def test_lookup_and_not_found_pages_follow_the_browser_into_catalan_and_korean(site: Site) -> None:
    lookup = await site.client.get("/t", headers={"Accept-Language": "ko-KR,ko;q=0.9,en-US;q=0.8"})
    missing = await site.client.get("/t/unknown", headers={"Accept-Language": "ca-ES,ca;q=0.9,es;q=0.8"})

    assert '<html lang="ko">' in lookup.text and "주문 찾기" in text_of(lookup.text)
    assert "주문 번호" in text_of(lookup.text)
    assert '<html lang="ca">' in missing.text
    assert "No s'ha trobat la pàgina de seguiment" in text_of(missing.text)


async def test_times_show_in_the_orders_time_zone(site: Site) -> None:
    """The same journey for a customer in Seoul and one in São Paulo: each reads their own clock."""
    estimate = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # a moment, not a date: Wednesday in Seoul
    await seed_order(site.store, locale="en", time_zone="Asia/Seoul", first_estimate=estimate)
    await seed_order(
        site.store, locale="en", first_estimate=estimate, order_id="1002", token="token-1002"
    )  # America/Sao_Paulo

    seoul = text_of((await site.client.get(f"/t/{TOKEN}")).text)
    sao_paulo = text_of((await site.client.get("/t/token-1002")).text)

    # Picked up at 19:03 UTC on 20 November; the last entry (for ops only) at 12:03 UTC on the 21st.
    assert "21 Nov, 04:03 Picked up" in seoul
    assert "20 Nov, 16:03 Picked up" in sao_paulo
    assert "Estimated delivery: Wed 25 Nov 2026" in seoul
    assert "Estimated delivery: Tue 24 Nov 2026" in sao_paulo
    assert "Last update: 21 Nov, 21:03 · Times in Seoul." in seoul
    assert "Last update: 21 Nov, 09:03 · Times in São Paulo." in sao_paulo


async def test_an_order_without_a_zone_of_its_own_shows_the_policy_default(site: Site) -> None:
    await seed_order(site.store, locale="ko", time_zone=None)  # the workflow names the default, UTC

    text = text_of((await site.client.get(f"/t/{TOKEN}")).text)

    assert "11월 20일 19:03 Picked up" in text and "시간은 UTC 기준입니다." in text


async def test_a_row_from_before_the_time_zone_column_shows_in_the_default_zone(tmp_path: Path) -> None:
    url = database_url(tmp_path)
    await migrate(url, "0002")
    order = Order.model_validate(order_data())
    row = {
        "order_id": "1001", "workflow_id": "order-1001", "tracking_token": TOKEN, "status": "confirmed",
        "status_since": T0, "delayed": False, "version": 2, "address_version": 2,
        "customer_name": "Ana Souza", "customer_email": "ana@example.com", "locale": "en",
        "ship_city": "São Paulo", "ship_country": "BR",
        "shipping_address": order.shipping_address.model_dump(mode="json"),
        "items": [item.model_dump(mode="json") for item in order.items], "currency": "BRL",
        "total": order.total, "placed_at": T0, "created_at": T0, "updated_at": T0,
    }  # fmt: skip
    entry = {"order_id": "1001", "seq": 1, "at": T0, "kind": "status", "status": "confirmed"}
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            # The table as 0002 left it: no time_zone column.
            before = table("orders", *(column(name, orders.c[name].type) for name in row))
            await conn.execute(before.insert().values(row))
            await conn.execute(timeline_events.insert().values(**entry, message="Confirmed", actor="shop"))
    finally:
        await engine.dispose()

    async with open_site(url, default_time_zone="Asia/Seoul") as site:  # migrates to the newest
        stored = await site.store.get_order("1001")
        response = await site.client.get(f"/t/{TOKEN}")

    assert stored is not None and stored.time_zone is None
    assert response.status_code == 200
    text = text_of(response.text)
    assert "20 Nov, 23:03 Confirmed" in text and "Times in Seoul." in text


SUPPORT = {
    "shop_name": "Loja Aurora",
    "support_email": "ajuda@aurora.example",
    "support_url": "https://aurora.example/ajuda",
    "support_phone": "+55 11 3333-4444",
}


async def test_the_page_names_the_shop_and_how_to_reach_its_support(tmp_path: Path) -> None:
    async with open_site(database_url(tmp_path), **SUPPORT) as site:
        await seed_order(site.store)
        page = (await site.client.get(f"/t/{TOKEN}")).text

    [block] = re.findall(r'<section[^>]*data-block="support".*?</section>', page, re.S)
    text = text_of(block)
    assert "Precisa de ajuda?" in text and "Dúvidas sobre o seu pedido? A Loja Aurora está aqui" in text
    assert 'href="mailto:ajuda@aurora.example?subject=Pedido%201001"' in block
    assert 'href="tel:+551133334444"' in block and "Ligar para +55 11 3333-4444" in text
    assert 'href="https://aurora.example/ajuda" rel="noopener noreferrer"' in block
    assert '<p class="shop">Loja Aurora</p>' in page and "· Loja Aurora</title>" in page


async def test_without_support_settings_the_page_offers_the_shops_sending_address(site: Site) -> None:
    await seed_order(site.store, locale="en")
    page = (await site.client.get(f"/t/{TOKEN}")).text

    [block] = re.findall(r'<section[^>]*data-block="support".*?</section>', page, re.S)
    assert "Questions about your order? We are here to help." in text_of(block)
    assert 'href="mailto:orders@localhost?subject=Order%201001"' in block  # MAIL_FROM's address
    assert "tel:" not in block and 'class="shop"' not in page


@pytest.mark.parametrize(
    ("setting", "value"),
    [("support_url", "javascript:alert(1)"), ("support_phone", "+55 11 3333"), ("review_url", "ftp://x")],
)
def test_support_settings_that_would_mislead_customers_are_refused(setting: str, value: str) -> None:
    with pytest.raises(ValueError, match=setting.upper()):
        Settings(**{setting: value})


async def test_timeline_is_newest_first_without_internal_entries(site: Site) -> None:
    await seed_order(site.store, locale="en", journey="delayed")

    response = await site.client.get(f"/t/{TOKEN}")

    history = text_of(response.text.split('id="history"')[1].split("</section>")[0])
    order = [
        "Delay",
        "Arrived at sorting facility",
        "Curitiba, PR",
        "Picked up",
        "São Paulo, SP",
        "Shipped",
        "Packed",
        "Confirmed",
        "Order received",
    ]
    positions = [history.index(part) for part in order]
    assert positions == sorted(positions), history
    assert "401" not in response.text and "API key" not in response.text  # carrier_error is for ops
    assert "customer asked" not in response.text


async def test_side_states_show_a_banner_and_keep_the_step_bar_where_it_stopped(site: Site) -> None:
    await seed_order(site.store, locale="en", journey="exception")
    await seed_order(site.store, locale="en", journey="cancelled", order_id="1002", token="other-token-1002")

    exception = (await site.client.get(f"/t/{TOKEN}")).text
    cancelled = (await site.client.get("/t/other-token-1002")).text

    assert 'data-state="exception"' in exception
    assert "The carrier reported a problem with your parcel" in text_of(exception)
    assert "Damaged label" in text_of(exception)
    assert '<li class="done">In transit</li>' in exception and "aria-current" not in exception
    assert 'data-state="cancelled"' in cancelled and "This order was cancelled." in text_of(cancelled)
    assert 'class="steps halted"' in cancelled


async def test_delivered_shows_the_delivery_date_and_every_step_done(site: Site) -> None:
    await seed_order(site.store, locale="en", journey="delivered")

    page = (await site.client.get(f"/t/{TOKEN}")).text

    assert re.findall(r'<li class="(\w+)"', page.split('class="steps')[1].split("</ol>")[0]) == ["done"] * 8
    assert "Delivered on Sun 22 Nov 2026" in text_of(page)


async def test_hostile_item_names_are_escaped(site: Site) -> None:
    hostile = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    await seed_order(
        site.store, items=[{"sku": "X-1", "name": hostile, "quantity": 1, "unit_price": "10.00"}]
    )

    page = (await site.client.get(f"/t/{TOKEN}")).text

    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in page


async def test_unknown_token_is_a_404_page(site: Site) -> None:
    await seed_order(site.store)

    near = await site.client.get(f"/t/{TOKEN[:-1]}X")
    absurd = await site.client.get("/t/" + "a" * 129)
    mangled = await site.client.get(f"/t/{TOKEN}/extra")

    for response in (near, absurd, mangled):
        assert_hygiene(response)
        assert response.status_code == 404
        assert "Tracking page not found" in text_of(response.text)
        assert '<form method="post" action="/t">' in response.text
        assert "1001" not in response.text
    assert near.text == absurd.text


async def test_a_rotated_token_serves_the_new_link_and_404s_the_old(site: Site) -> None:
    seeded = await seed_order(site.store)
    assert (await site.client.get(f"/t/{TOKEN}")).status_code == 200  # the old link's page is kept
    request = TokenRotationRequest(
        tracking_token="fresh-token-after-rotation", reason="leaked", operator="rita"
    )
    outcome = machine.on_token_rotation(seeded.state, request, TOKEN, T0 + timedelta(days=1))
    seeded.token = request.tracking_token
    await _apply(site.store, seeded, outcome)

    assert (await site.client.get(f"/t/{TOKEN}")).status_code == 404
    fresh = await site.client.get("/t/fresh-token-after-rotation")
    assert fresh.status_code == 200
    assert "leaked" not in fresh.text  # the operator's reason stays internal


async def test_a_miss_does_the_same_work_as_a_hit(site: Site) -> None:
    """One lookup by token either way, then bytes already made: the page kept for the order's
    version, or the not-found page. Only the first view of a version renders (see TrackingPage)."""
    await seed_order(site.store)
    counting = CountingStore(site.store)
    site.app.state.resources.store = counting

    first = await site.client.get(f"/t/{TOKEN}")
    first_calls, counting.calls = counting.calls, []
    hit = await site.client.get(f"/t/{TOKEN}")
    hit_calls, counting.calls = counting.calls, []
    miss = await site.client.get(f"/t/{TOKEN[:-1]}X")

    assert (first.status_code, hit.status_code, miss.status_code) == (200, 200, 404)
    assert first_calls == ["tracking_stamp", "get_tracking"]
    assert hit_calls == counting.calls == ["tracking_stamp"]
    assert hit.text == first.text


async def test_a_revisit_of_an_unchanged_order_is_a_304(site: Site) -> None:
    await seed_order(site.store)

    first = await site.client.get(f"/t/{TOKEN}")
    etag = first.headers["etag"]
    again = await site.client.get(f"/t/{TOKEN}", headers={"If-None-Match": etag})
    weak_in_a_list = await site.client.get(f"/t/{TOKEN}", headers={"If-None-Match": f'"x", W/{etag}'})
    other = await site.client.get(f"/t/{TOKEN}", headers={"If-None-Match": '"another-version"'})

    assert first.status_code == 200 and etag.startswith('"')
    assert_hygiene(first, TRACKING_PAGE_HEADERS)
    assert first.headers["cache-control"] == "private, no-cache"  # the browser only, revalidated
    for response in (again, weak_in_a_list):
        assert (response.status_code, response.content) == (304, b"")
        assert response.headers["etag"] == etag
        assert_hygiene(response, TRACKING_PAGE_HEADERS)
        assert "content-length" not in response.headers or response.headers["content-length"] == "0"
    assert (other.status_code, other.text, other.headers["etag"]) == (200, first.text, etag)


async def test_an_unknown_token_is_a_404_whatever_etag_it_sends(site: Site) -> None:
    await seed_order(site.store)
    etag = (await site.client.get(f"/t/{TOKEN}")).headers["etag"]

    for tag in (etag, "*"):
        response = await site.client.get(f"/t/{TOKEN[:-1]}X", headers={"If-None-Match": tag})
        assert response.status_code == 404
        assert "etag" not in response.headers
        assert_hygiene(response)


async def test_a_change_of_the_order_shows_at_once_under_a_new_etag(site: Site) -> None:
    seeded = await seed_order(site.store, locale="en")
    before = await site.client.get(f"/t/{TOKEN}")
    assert re.search(r'<h1 id="status">In transit</h1>', before.text)

    done = TrackingEvent(at=T0 + timedelta(hours=40), status=OrderStatus.DELIVERED, message="Delivered")
    snapshot = TrackingSnapshot(
        carrier="simulated",
        tracking_number="SIM-ONTIME-1001",
        status=OrderStatus.DELIVERED,
        events=[done],
        estimated_delivery=datetime(2026, 11, 24, tzinfo=BRT),
    )
    delivered = machine.on_tracking(seeded.state, snapshot, TimingPolicy(), T0 + timedelta(hours=41))
    await _apply(site.store, seeded, delivered)
    after = await site.client.get(f"/t/{TOKEN}", headers={"If-None-Match": before.headers["etag"]})

    assert after.status_code == 200
    assert re.search(r'<h1 id="status">Delivered</h1>', after.text)
    assert after.headers["etag"] != before.headers["etag"]


async def test_an_entry_or_an_address_landing_late_still_shows(site: Site) -> None:
    """A change older than the stored one leaves the version alone, but its timeline entry and its
    address still land in the read model, and so on the page."""
    seeded = await seed_order(site.store, locale="en", journey="confirmed")
    older = seeded.state
    new_address = seeded.order.shipping_address.model_copy(update={"city": "Campinas"})
    change_address = AddressChangeRequest(address=new_address, reason="moved", operator="rita")
    moved = machine.on_address_change(older, change_address, T0 + timedelta(hours=1))
    picking = FulfillmentUpdate(event=FulfillmentEvent.PICKING_STARTED)
    newer = machine.on_fulfillment(moved.state, picking, T0 + timedelta(hours=2))
    await _apply(site.store, seeded, newer)  # the newer change lands first
    first = await site.client.get(f"/t/{TOKEN}")

    late = ChangeRecord(
        view=order_view(seeded.order, moved.state, TOKEN),
        entries=moved.entries,
        shipping_address=new_address,
        time_zone=seeded.time_zone,
    )
    assert await site.store.record_change(late) is True  # the address lands; the version stays
    after = await site.client.get(f"/t/{TOKEN}")

    assert "São Paulo, BR" in text_of(first.text) and "Campinas, BR" in text_of(after.text)
    assert after.headers["etag"] != first.headers["etag"]


async def test_a_timeline_entry_landing_late_shows(site: Site) -> None:
    seeded = await seed_order(site.store, locale="en")
    first = await site.client.get(f"/t/{TOKEN}")
    scan = TimelineEntry(
        seq=len(seeded.state.timeline) + 5,  # as an older change's entry would, after a newer one
        at=T0 + timedelta(hours=21),
        kind=EntryKind.SCAN,
        status=OrderStatus.IN_TRANSIT,
        message="Left the sorting facility",
        actor="carrier",
    )
    view = order_view(seeded.order, seeded.state, TOKEN)
    assert await site.store.record_change(ChangeRecord(view=view, entries=(scan,))) is False

    after = await site.client.get(f"/t/{TOKEN}")

    assert "Left the sorting facility" not in first.text
    assert "Left the sorting facility" in text_of(after.text)


@pytest.mark.parametrize(
    ("column_name", "value", "shown"),
    [("locale", "ko", '<html lang="ko">'), ("time_zone", "Asia/Seoul", "Times in Seoul.")],
)
async def test_the_orders_locale_and_time_zone_are_part_of_what_the_page_is_kept_for(
    site: Site, column_name: str, value: str, shown: str
) -> None:
    """Written without a new version (a repair by hand): the kept page still is not served."""
    await seed_order(site.store, locale="en")
    first = await site.client.get(f"/t/{TOKEN}")
    engine = create_engine(database_url_of(site))
    try:
        async with engine.begin() as conn:
            await conn.execute(orders.update().values({column_name: value}))
    finally:
        await engine.dispose()

    after = await site.client.get(f"/t/{TOKEN}")

    assert shown not in first.text and shown in after.text


async def test_the_not_found_page_follows_each_visitors_language(site: Site) -> None:
    pages = {
        lang: await site.client.get("/t/unknown", headers={"Accept-Language": lang})
        for lang in ("ko", "ca", "ko", "pt-BR;q=0.9, en;q=0.1")
    }

    assert [re.search(r'<html lang="([^"]+)"', r.text).group(1) for r in pages.values()] == [  # type: ignore[union-attr]
        "ko",
        "ca",
        "pt-BR",
    ]
    for response in pages.values():
        assert response.status_code == 404
        assert_hygiene(response)


async def test_the_page_is_counted_and_carries_a_request_id(site: Site) -> None:
    await seed_order(site.store)

    hits = [await site.client.get(f"/t/{TOKEN}") for _ in range(2)]
    miss = await site.client.get("/t/unknown")
    posted = await site.client.post(f"/t/{TOKEN}")
    text = (await site.client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})).text

    assert all(len(r.headers["x-request-id"]) == 16 for r in (*hits, miss))
    assert hits[0].headers["x-request-id"] != hits[1].headers["x-request-id"]
    assert posted.status_code == 405
    for status, count in (("200", 2), ("404", 1)):
        line = f'ordertrack_http_requests_total{{method="GET",route="/t/{{token:path}}",status="{status}"}}'
        assert f"{line} {count:.1f}" in text


@pytest.mark.parametrize(
    ("path", "expected"),
    [(f"/t/{TOKEN}", TRACKING_PAGE_HEADERS), ("/t/unknown", PAGE_HEADERS), ("/t", PAGE_HEADERS)],
)
async def test_every_page_carries_capability_url_hygiene_headers(
    site: Site, path: str, expected: Mapping[str, str]
) -> None:
    await seed_order(site.store)

    response = await site.client.get(path)

    assert_hygiene(response, expected)
    assert '<meta name="robots" content="noindex, nofollow">' in response.text


async def test_no_external_link_without_noopener_noreferrer(site: Site) -> None:
    await seed_order(site.store)

    page = (await site.client.get(f"/t/{TOKEN}")).text

    for anchor in re.findall(r"<a [^>]*>", page):
        if 'href="http' in anchor:
            assert 'rel="noopener noreferrer"' in anchor


# -- lost-link lookup --------------------------------------------------------------------------


async def test_lookup_form_redirects_to_the_tracking_page(site: Site) -> None:
    await seed_order(site.store)
    form = await site.client.get("/t", headers={"Accept-Language": "pt-BR,pt;q=0.9,en;q=0.8"})
    assert form.status_code == 200
    assert "Encontre seu pedido" in text_of(form.text)

    response = await site.client.post("/t", data={"order_id": " #1001 ", "email": "  Ana@Example.COM "})

    assert response.status_code == 303
    assert response.headers["location"] == f"/t/{TOKEN}"
    assert_hygiene(response)


async def test_lookup_failure_is_one_generic_message(site: Site) -> None:
    await seed_order(site.store)

    wrong_email = await site.client.post("/t", data={"order_id": "1001", "email": "eve@example.com"})
    wrong_order = await site.client.post("/t", data={"order_id": "9999", "email": "ana@example.com"})
    nothing = await site.client.post("/t", content=b"\xff\x00garbage", headers={"content-type": "text/plain"})

    messages = set()
    for response in (wrong_email, wrong_order, nothing):
        assert response.status_code == 400
        assert_hygiene(response)
        messages.add(re.search(r'role="alert"><p>([^<]+)</p>', response.text).group(1))  # type: ignore[union-attr]
    assert messages == {"We could not find an order with those details."}
    assert TOKEN not in wrong_email.text + wrong_order.text


async def test_lookup_is_rate_limited_per_client(site: Site) -> None:
    await seed_order(site.store)
    for _ in range(5):
        assert (
            await site.client.post("/t", data={"order_id": "1001", "email": "x@example.com"})
        ).status_code == 400

    limited = await site.client.post("/t", data={"order_id": "1001", "email": "ana@example.com"})

    assert limited.status_code == 429
    assert 0 < int(limited.headers["retry-after"]) <= 600
    assert "Too many attempts" in text_of(limited.text)
    assert_hygiene(limited)


@pytest.mark.parametrize(
    ("lang", "minutes", "expected"),
    [("en", 1, "Please try again in 1 minute."), ("en", 10, "Please try again in 10 minutes."),
     ("pt-BR", 1, "Tente novamente em 1 minuto."), ("es", 7, "Vuelve a intentarlo en 7 minutos."),
     ("ca", 1, "Torna-ho a provar d'aquí a 1 minut."), ("ko", 3, "3분 후에 다시 시도해 주세요.")],
)  # fmt: skip
def test_the_wait_is_counted_in_the_visitors_language(lang: str, minutes: int, expected: str) -> None:
    context = {"lang": lang, "error": "too_many", "wait_minutes": minutes, "order_id": "", "email": ""}
    assert expected in text_of(render("lookup.html", context))


async def test_the_lookup_limit_slides_and_is_shared_by_every_process(sqlite_store: Store) -> None:
    now = [datetime(2026, 11, 30, 12, 0, tzinfo=UTC)]
    limit = RateLimit(attempts=2, window_seconds=60)
    one, other = (LookupLimiter(limit, clock=lambda: now[0]) for _ in range(2))  # two serve processes

    assert await one.attempt(sqlite_store, "203.0.113.7") is None
    now[0] += timedelta(seconds=30)
    assert await other.attempt(sqlite_store, "203.0.113.7") is None  # the same client, another process
    assert await one.attempt(sqlite_store, "203.0.113.7") == 30  # the first leaves the window at t=60
    assert await one.attempt(sqlite_store, "198.51.100.9") is None  # another client
    now[0] += timedelta(seconds=31)
    assert await other.attempt(sqlite_store, "203.0.113.7") is None


# -- locales -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "expected"),
    [("pt-BR", "pt-BR"), ("pt_br", "pt-BR"), ("pt", "pt-BR"), ("pt-PT", "pt-BR"), ("es-MX", "es"),
     ("ES", "es"), ("ca-ES", "ca"), ("ca", "ca"), ("ca-ES-valencia", "ca"), ("ko-KR", "ko"), ("ko_kr", "ko"),
     ("KO", "ko"), ("en-US", "en"), ("fr-CA", "en"), ("", "en"), ("x", "en"), (None, "en")],
)  # fmt: skip
def test_locale_resolution(tag: str | None, expected: str) -> None:
    assert resolve_locale(tag) == expected


def test_accept_language_negotiation() -> None:
    assert negotiate("fr-FR,fr;q=0.9,es;q=0.8,en;q=0.7") == "es"
    assert negotiate("de, pt-BR;q=0.5") == "pt-BR"
    assert negotiate("pt;q=0, en") == "en"
    assert negotiate("ko-KR,ko;q=0.9,en-US;q=0.8") == "ko"
    assert negotiate("ca-ES,ca;q=0.9,es;q=0.8,en;q=0.7") == "ca"
    assert negotiate("fr-FR, de;q=0.9") == "en"
    assert negotiate(None) == "en"


def test_every_code_the_page_shows_has_words_and_every_locale_a_date_format() -> None:
    """The catalogs check (tests/unit/test_render.py) covers the translations; this covers the codes."""
    assert set(STATUS_LABELS) == set(OrderStatus)
    assert set(SIDE_TEXTS) == SIDE_STATES
    assert set(DELAY_TEXTS) == set(DelayKind)
    # A customer's email and page speak the same languages (one list, `ordertrack.locales`).
    assert set(_DATE_PATTERNS) == set(SUPPORTED_LOCALES)


def test_money_and_dates_per_locale() -> None:
    from decimal import Decimal

    moment = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)
    tags = ("en", "pt-BR", "es", "ca", "ko")
    en, pt, es, ca, ko = (PageLocale.for_order(tag, "America/Sao_Paulo") for tag in tags)
    # Babel's (CLDR's) way, as in the emails; it separates with a no-break space.
    assert [tr.money(Decimal("1234.50"), "BRL").replace("\xa0", " ") for tr in (en, pt, es, ca, ko)] == [
        "R$1,234.50",
        "R$ 1.234,50",
        "1.234,50 BRL",
        "1.234,50 BRL",
        "R$1,234.50",
    ]
    assert en.money(Decimal("500"), "JPY") == "¥500"  # no decimals in yen
    assert ko.money(Decimal("79800"), "KRW") == "₩79,800"
    assert [tr.date(moment) for tr in (en, pt, es, ca, ko)] == [
        "Tue 24 Nov 2026",
        "ter., 24 de nov. de 2026",
        "mar, 24 nov 2026",
        "dimarts, 24 de novembre de 2026",
        "2026년 11월 24일 (화)",
    ]
    assert ca.date(datetime(2026, 10, 2, tzinfo=UTC)) == "divendres, 2 d\u2019octubre de 2026"
    assert ko.date(datetime(2026, 11, 27, tzinfo=UTC)) == "2026년 11월 27일 (금)"
    assert [tr.moment(moment) for tr in (pt, es, ca, ko)] == [  # São Paulo time
        "24 nov., 14:30",
        "24 nov, 14:30",
        "24 de nov., 14:30",
        "11월 24일 14:30",
    ]
    assert [tr.zone_label for tr in (en, pt, ko)] == ["São Paulo", "São Paulo", "상파울루"]
    for unknown in (None, "Mars/Olympus_Mons"):  # no zone, or one this machine lacks: UTC, said so
        utc = PageLocale.for_order("en", unknown)
        assert (utc.moment(moment), utc.zone_label) == ("24 Nov, 17:30", "UTC")
