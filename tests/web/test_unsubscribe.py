"""One-click unsubscribe (`/unsubscribe/{token}`) and the notification log (`/api/orders/{id}/notifications`)
against the real app and read model (no Temporal)."""

import html
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from temporalio.testing import ActivityEnvironment

from ordertrack.domain.notices import MessageKind
from ordertrack.mail.sink import MailSink
from ordertrack.mail.smtp import SmtpMailer
from ordertrack.settings import ApiKey, Settings
from ordertrack.store.repository import NotificationKey, Store
from ordertrack.web.app import create_app
from ordertrack.web.pages import PAGE_HEADERS
from tests.unit.test_mail import activities, make_request

SHOP_KEY = "shop-key-for-notifications"
EMAIL = "ana@example.com"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@dataclass
class Site:
    app: FastAPI
    store: Store
    http: httpx.AsyncClient


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'var' / 'ordertrack.db'}",
        api_keys={SHOP_KEY: ApiKey(role="shop", name="acme-shop")},
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Site(app, app.state.resources.store, http)


async def test_a_get_shows_the_button_and_unsubscribes_nobody(site: Site) -> None:
    token = await site.store.unsubscribe_token_for(EMAIL)

    response = await site.http.get(f"/unsubscribe/{token}", headers={"Accept-Language": "pt-BR"})

    assert response.status_code == 200
    assert '<form method="post">' in response.text and "Cancelar inscrição" in response.text
    assert '<html lang="pt-BR">' in response.text
    assert all(response.headers[name] == value for name, value in PAGE_HEADERS.items())
    assert not await site.store.is_unsubscribed(EMAIL)


async def test_the_language_the_link_names_wins_over_the_browsers(site: Site) -> None:
    token = await site.store.unsubscribe_token_for(EMAIL)
    asked = await site.http.get(f"/unsubscribe/{token}?lang=ko", headers={"Accept-Language": "en-US"})
    assert '<html lang="ko">' in asked.text and "수신 거부" in asked.text
    done = await site.http.post(f"/unsubscribe/{token}?lang=ca-ES", data=ONE_CLICK)
    assert '<html lang="ca">' in done.text and await site.store.is_unsubscribed(EMAIL)


async def test_a_one_click_post_unsubscribes(site: Site) -> None:
    token = await site.store.unsubscribe_token_for(EMAIL)

    response = await site.http.post(f"/unsubscribe/{token}", data=ONE_CLICK)

    assert response.status_code == 200 and "You are unsubscribed" in response.text
    assert "<form" not in response.text
    assert await site.store.is_unsubscribed(EMAIL)


async def test_a_multipart_one_click_post_unsubscribes(site: Site) -> None:
    token = await site.store.unsubscribe_token_for(EMAIL)
    response = await site.http.post(f"/unsubscribe/{token}", files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200 and await site.store.is_unsubscribed(EMAIL)


async def test_unsubscribing_again_changes_nothing(site: Site) -> None:
    token = await site.store.unsubscribe_token_for(EMAIL)
    first = await site.http.post(f"/unsubscribe/{token}", data=ONE_CLICK)
    recorded = await site.store.get_mail_recipient(token)

    again = await site.http.post(f"/unsubscribe/{token}", data=ONE_CLICK)
    page = await site.http.get(f"/unsubscribe/{token}")

    assert (first.status_code, again.status_code, page.status_code) == (200, 200, 200)
    assert await site.store.get_mail_recipient(token) == recorded
    assert "You are unsubscribed" in page.text and "<form" not in page.text


@pytest.mark.parametrize("token", ["not-a-token", "x" * 500, "a/b"])
async def test_an_unknown_token_is_404(site: Site, token: str) -> None:
    await site.store.unsubscribe_token_for(EMAIL)
    shown = await site.http.get(f"/unsubscribe/{token}")
    posted = await site.http.post(f"/unsubscribe/{token}", data=ONE_CLICK)
    assert (shown.status_code, posted.status_code) == (404, 404)
    assert "Link not valid" in posted.text
    assert not await site.store.is_unsubscribed(EMAIL)


async def test_a_later_review_request_to_that_address_is_suppressed(site: Site, mail_sink: MailSink) -> None:
    mailer = SmtpMailer(Settings(smtp_host=mail_sink.host, smtp_port=mail_sink.port))
    notify, env = activities(site.store, mailer), ActivityEnvironment()
    await env.run(notify.send_notification, make_request(MessageKind.REVIEW_REQUEST, dedupe_key="first"))
    [first] = mail_sink.messages
    link = first["List-Unsubscribe"].strip().strip("<>")
    assert link.startswith("https://track.example.com/unsubscribe/")

    response = await site.http.post(link.removeprefix("https://track.example.com"), data=ONE_CLICK)
    later = await env.run(
        notify.send_notification, make_request(MessageKind.REVIEW_REQUEST, dedupe_key="later")
    )

    assert response.status_code == 200 and later.status == "suppressed"
    assert len(mail_sink.messages) == 1
    statuses = [(row.dedupe_key, row.status) for row in await site.store.list_notifications("1001")]
    assert statuses == [("first", "sent"), ("later", "suppressed")]


@pytest.mark.parametrize(
    ("accept_language", "lang", "question", "button", "done"),
    [
        (
            "ca-ES,ca;q=0.9,es;q=0.8",
            "ca",
            "Vols donar-te de baixa",
            "Donar-me de baixa",
            "T'has donat de baixa",
        ),
        (
            "ko-KR,ko;q=0.9,en-US;q=0.8",
            "ko",
            "마케팅 메일 수신을 거부하시겠습니까?",
            "수신 거부",
            "수신 거부가 완료",
        ),
    ],
)
async def test_the_page_speaks_catalan_and_korean(
    site: Site, accept_language: str, lang: str, question: str, button: str, done: str
) -> None:
    token = await site.store.unsubscribe_token_for(EMAIL)
    headers = {"Accept-Language": accept_language}

    shown = await site.http.get(f"/unsubscribe/{token}", headers=headers)
    assert not await site.store.is_unsubscribed(EMAIL)
    posted = await site.http.post(f"/unsubscribe/{token}", data=ONE_CLICK, headers=headers)
    unknown = await site.http.get("/unsubscribe/not-a-token", headers=headers)

    for response in (shown, posted, unknown):
        assert f'<html lang="{lang}">' in response.text
    assert question in shown.text and f'<button type="submit">{button}</button>' in shown.text
    assert "Unsubscribe from marketing email?" not in shown.text
    assert posted.status_code == 200 and done in html.unescape(posted.text) and "<form" not in posted.text
    assert await site.store.is_unsubscribed(EMAIL)
    assert unknown.status_code == 404 and "Link not valid" not in unknown.text


# -- the notification log ---------------------------------------------------------------------


async def test_the_notification_log_lists_every_channel(site: Site) -> None:
    email = NotificationKey("1001", "email", "shipped", "shipped:N1")
    await site.store.claim_notification(email, "<m@x>", EMAIL)
    await site.store.mark_notification_sent(email, "250 Ok")
    await site.store.claim_notification(
        NotificationKey("1001", "sms", "shipped", "shipped:N1"), "sms-1", "+55"
    )

    response = await site.http.get("/api/orders/1001/notifications", headers={"X-API-Key": SHOP_KEY})

    assert response.status_code == 200
    body = response.json()
    assert body["order_id"] == "1001"
    assert [(n["channel"], n["status"], n["server_reply"]) for n in body["notifications"]] == [
        ("email", "sent", "250 Ok"),
        ("sms", "sending", None),
    ]


async def test_the_notification_log_needs_a_key_and_a_known_order(site: Site) -> None:
    unauthenticated = await site.http.get("/api/orders/1001/notifications")
    unknown = await site.http.get("/api/orders/404/notifications", headers={"X-API-Key": SHOP_KEY})
    assert unauthenticated.status_code == 401
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "order_not_found"
