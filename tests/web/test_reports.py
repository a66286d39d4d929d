"""The carrier report over HTTP: `GET /api/reports/carriers` and the operators' page `/ops/carriers`,
against the real app and a read model seeded with a few thousand orders (no Temporal)."""

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from ordertrack.domain.carrier_report import Shipment, carrier_report
from ordertrack.settings import ApiKey, Settings
from ordertrack.store import create_engine
from ordertrack.store.tables import orders
from ordertrack.web.app import create_app
from ordertrack.web.auth import OPERATOR_COOKIE
from ordertrack.web.charts import on_time_chart
from ordertrack.web.pages import PAGE_HEADERS
from tests.shipments import EXPECTED, seed_shipments
from tests.web.conftest import OPERATOR_KEY, OPERATOR_NAME, SHOP_KEY
from tests.web.test_pages import assert_hygiene, text_of

OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
SHOP = {"Authorization": f"Bearer {SHOP_KEY}"}
HOSTILE_CARRIER = "<img src=x onerror=alert(1)>"


def basic(key: str, user: str = "ops") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()}


@dataclass
class Site:
    client: httpx.AsyncClient
    database_url: str


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'var' / 'ordertrack.db'}"
    settings = Settings(
        database_url=database_url,
        public_url="https://track.example",
        simulated_carrier_url="https://carrier.example",
        api_keys={
            SHOP_KEY: ApiKey(role="shop", name="acme-shop"),
            OPERATOR_KEY: ApiKey(role="operator", name=OPERATOR_NAME),
        },
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
            yield Site(client, database_url)


@pytest.fixture
async def seeded(site: Site) -> Site:
    # Seeded around the real clock, days away from every edge of the window: any hour will do.
    await seed_shipments(site.database_url, datetime.now(UTC))
    return site


# -- the API -------------------------------------------------------------------------------------


async def test_report_gives_each_carriers_figures(seeded: Site) -> None:
    response = await seeded.client.get("/api/reports/carriers", headers=OPERATOR)

    assert response.status_code == 200, response.text
    body = response.json()
    assert datetime.fromisoformat(body["until"]) - datetime.fromisoformat(body["since"]) == timedelta(days=30)
    figures = {c.pop("carrier"): c for c in body["carriers"]}
    weeks = {carrier: figures[carrier].pop("weeks") for carrier in figures}
    assert figures == EXPECTED
    assert sum(week["on_time"] for week in weeks["dhl"]) == EXPECTED["dhl"]["on_time"]
    assert set(weeks["dhl"][0]) == {"week", "on_time", "late"}


async def test_a_shorter_window_reads_fewer_orders(seeded: Site) -> None:
    response = await seeded.client.get("/api/reports/carriers", params={"since": "12h"}, headers=OPERATOR)

    assert response.status_code == 200, response.text
    assert response.json()["carriers"] == []  # the newest seeded shipment left 4 days ago


async def test_the_report_needs_an_operator_key(site: Site) -> None:
    missing = await site.client.get("/api/reports/carriers")
    shop = await site.client.get("/api/reports/carriers", headers=SHOP)

    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    assert shop.status_code == 403 and shop.json()["error"]["code"] == "insufficient_role"


@pytest.mark.parametrize(
    ("since", "says"),
    [
        ("last week", "'last week': use a duration (7d, 36h, 90m) or an ISO date"),
        ("", "'': use a duration"),
        ("0d", "'0d': use a duration"),
        ("2999-01-01", "is not before now"),
        ("400d", "reaches back more than 366 days; a report covers a year at most"),
        ("9999999999d", "reaches back before the calendar starts"),
        ("1" * 41, "is longer than a duration or a date can be"),
    ],
)
async def test_a_bad_since_is_refused_saying_why(site: Site, since: str, says: str) -> None:
    response = await site.client.get("/api/reports/carriers", params={"since": since}, headers=OPERATOR)

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    [field] = error["fields"]
    assert field["field"] == "since" and says in field["message"]


async def test_an_unknown_filter_is_refused(site: Site) -> None:
    response = await site.client.get("/api/reports/carriers", params={"carrier": "dhl"}, headers=OPERATOR)

    assert response.status_code == 422
    [field] = response.json()["error"]["fields"]
    assert (field["field"], field["message"]) == ("carrier", "unknown filter; known: since")


# -- the operators' page -------------------------------------------------------------------------


async def test_the_page_asks_for_a_key(site: Site) -> None:
    response = await site.client.get("/ops/carriers")

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Basic realm="ordertrack operators"')
    assert_hygiene(response)
    assert 'action="/ops/login"' in response.text and "figures" not in response.text
    wrong = await site.client.get("/ops/carriers", headers=basic("not-a-key"))
    assert wrong.status_code == 401


async def test_the_page_with_basic_auth_shows_the_table_and_the_chart(seeded: Site) -> None:
    response = await seeded.client.get("/ops/carriers", headers=basic(OPERATOR_KEY))

    assert response.status_code == 200, response.text
    assert_hygiene(response)
    text = text_of(response.text)
    assert "dhl 1500 1200 600 400 200 60% 3 5 200 100 100" in text
    assert "ups 850 800 400 400 0 50% 2.25 2.5 0 0 0" in text
    assert "dhl, week of " in text and "% on time (" in text  # each point's tooltip
    assert response.text.count("<polyline") >= 2 and "<script" not in response.text
    assert OPERATOR_NAME in text


async def test_a_shop_key_is_not_enough_for_the_page(site: Site) -> None:
    response = await site.client.get("/ops/carriers", headers=basic(SHOP_KEY))

    assert response.status_code == 403
    assert "this page needs an operator key" in text_of(response.text)


async def test_login_keeps_the_key_in_a_strict_cookie_and_logout_drops_it(site: Site) -> None:
    refused = await site.client.post("/ops/login", data={"key": "nope"})
    assert refused.status_code == 401 and "That key is not valid." in refused.text
    shop = await site.client.post("/ops/login", data={"key": SHOP_KEY})
    assert shop.status_code == 403 and OPERATOR_COOKIE not in shop.headers.get("set-cookie", "")

    login = await site.client.post("/ops/login", data={"key": OPERATOR_KEY})

    assert login.status_code == 303 and login.headers["location"] == "/ops/carriers"
    cookie = login.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=strict", "Secure", "Path=/ops", "Max-Age=28800"):
        assert attribute.lower() in cookie.lower(), attribute
    page = await site.client.get("/ops/carriers")  # the client keeps the cookie
    assert page.status_code == 200 and "No order was shipped in this window." in page.text

    logout = await site.client.post("/ops/logout")
    assert logout.status_code == 303
    assert (await site.client.get("/ops/carriers")).status_code == 401


async def test_a_bad_since_on_the_page_says_why(site: Site) -> None:
    response = await site.client.get("/ops/carriers", params={"since": "soon"}, headers=basic(OPERATOR_KEY))

    assert response.status_code == 422
    assert_hygiene(response, PAGE_HEADERS)
    assert "Cannot show the report for “soon”: 'soon': use a duration" in text_of(response.text)
    assert 'value="soon"' in response.text


async def test_the_page_escapes_what_it_shows(seeded: Site) -> None:
    engine = create_engine(seeded.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(orders).where(orders.c.order_id == "seed-00000").values(carrier=HOSTILE_CARRIER)
            )
    finally:
        await engine.dispose()

    response = await seeded.client.get(
        "/ops/carriers", params={"since": '"><script>x</script>'}, headers=basic(OPERATOR_KEY)
    )
    assert response.status_code == 422 and "<script>x" not in response.text
    shown = await seeded.client.get("/ops/carriers", headers=basic(OPERATOR_KEY))
    assert HOSTILE_CARRIER not in shown.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in shown.text


# -- the chart's geometry ------------------------------------------------------------------------


def test_the_chart_breaks_a_line_at_a_week_without_deliveries() -> None:
    monday = datetime(2026, 11, 2, 9, tzinfo=UTC)
    week = timedelta(weeks=1)
    shipments = [
        Shipment("dhl", monday, monday + 2 * week, monday),  # on time, week 0
        Shipment("dhl", monday, monday, monday + week),  # late, week 1
        Shipment("dhl", monday, monday + 9 * week, monday + 3 * week),  # on time, week 3 (2 has none)
        Shipment("ups", monday, monday + 9 * week, monday + week),  # on time, week 1
    ]
    chart = on_time_chart(carrier_report(shipments, monday - 5 * week, monday + 4 * week))

    assert chart is not None
    dhl, ups = chart.series
    assert [p.y for p in dhl.points] == [chart.plot[1], chart.plot[3], chart.plot[1]]  # 100%, 0%, 100%
    assert len(dhl.segments) == 2 and dhl.segments[1].count(",") == 1  # week 3 stands alone
    assert [tick.label for tick in chart.x_ticks] == ["Nov 2", "Nov 9", "Nov 16", "Nov 23"]
    assert ups.points[0].x == dhl.points[1].x and ups.colour != dhl.colour
    assert ups.points[0].label == "ups, week of 2026-11-09: 100% on time (1 of 1)"


def test_no_chart_without_a_judged_delivery() -> None:
    monday = datetime(2026, 11, 2, tzinfo=UTC)
    report = carrier_report([Shipment("dhl", monday, None, monday)], monday - timedelta(days=1), monday)
    assert on_time_chart(report) is None
