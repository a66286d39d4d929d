"""Customer messages in every language: templates, catalogs, locale formatting and English snapshots."""

import html
import os
import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import pytest
from markupsafe import escape

from ordertrack.domain.models import PaymentInstructions, PaymentKind
from ordertrack.domain.notices import MARKETING, PAYMENT_PENDING, SMS_KINDS, MessageKind
from ordertrack.domain.records import NotificationRequest
from ordertrack.locales import SUPPORTED_LOCALES, resolve_locale
from ordertrack.mail import render
from ordertrack.mail.catalogs import TEMPLATE, problems, read_catalog
from ordertrack.mail.preview import preview, sample_links, sample_request
from ordertrack.mail.render import render_email, render_sms
from ordertrack.templating import environment
from tests.factories import BOLETO_LINE, PIX_CODE

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots" / "email"
KINDS = list(MessageKind)
SMS = [kind for kind in MessageKind if kind in SMS_KINDS]
UPDATE = "UPDATE_SNAPSHOTS=1 pytest tests/unit/test_render.py"
TRANSLATED = [locale for locale in SUPPORTED_LOCALES if locale != "en"]

# Details that take the other branches of the templates, beside each sample's own.
VARIANTS: dict[MessageKind, list[dict[str, str]]] = {
    MessageKind.OUT_FOR_DELIVERY: [{"attempt": "2"}],
    MessageKind.DELAYED: [{"delay_kind": "ship_by"}, {"delay_kind": "estimate_missed"}],
    MessageKind.DELIVERY_FAILED: [{"follow_up": "1", "location": "Depot 7"}],
    MessageKind.AVAILABLE_FOR_PICKUP: [{}],
    MessageKind.CANCELLED: [{"cause": "shop"}],
}


# Every way a shop may ask a pending order's customer to pay, beside each sample's own (and none).
INSTRUCTIONS = [
    PaymentInstructions(kind=PaymentKind.PIX, code=PIX_CODE),
    PaymentInstructions(kind=PaymentKind.BOLETO, line=BOLETO_LINE, url="https://boleto.example.com/1001.pdf"),
    PaymentInstructions(kind=PaymentKind.BOLETO, line=BOLETO_LINE),
    PaymentInstructions(kind=PaymentKind.URL, url="https://pay.example.com/1001?x=1&y=2"),
    None,
]


def with_details(request: NotificationRequest, details: dict[str, str]) -> NotificationRequest:
    return request.model_copy(update={"details": details})


def with_customer(request: NotificationRequest, **changes: Any) -> NotificationRequest:
    order = request.order
    customer = order.customer.model_copy(update=changes)
    return request.model_copy(update={"order": order.model_copy(update={"customer": customer})})


def with_estimate(request: NotificationRequest, estimate: datetime) -> NotificationRequest:
    return request.model_copy(
        update={"view": request.view.model_copy(update={"estimated_delivery": estimate})}
    )


def with_instructions(
    request: NotificationRequest, instructions: PaymentInstructions | None
) -> NotificationRequest:
    order = request.order
    payment = order.payment.model_copy(update={"instructions": instructions})
    return request.model_copy(update={"order": order.model_copy(update={"payment": payment})})


def all_requests(kind: MessageKind, locale: str) -> list[NotificationRequest]:
    sample = sample_request(kind, locale)
    paying = [with_instructions(sample, way) for way in INSTRUCTIONS] if kind in PAYMENT_PENDING else []
    return [sample, *(with_details(sample, details) for details in VARIANTS.get(kind, [])), *paying]


def shops_payment_values(request: NotificationRequest) -> list[str]:
    """The code, line or link the shop gave to pay with, as long as the shop made it."""
    instructions = request.order.payment.instructions
    values = (instructions.code, instructions.line, instructions.url) if instructions else ()
    return [value for value in values if value]


def everything_rendered(request: NotificationRequest) -> str:
    """Subject, text, HTML (unescaped) and, where sent, the SMS: all the customer can read."""
    links = sample_links(request)
    email = render_email(request, links)
    sms = render_sms(request, links) if request.kind in SMS_KINDS else ""
    return "\n".join([email.subject, email.text, html.unescape(email.html), sms])


# ---------------------------------------------------------------------------------------------
# Every kind in every language


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_email_renders_with_its_links(kind: MessageKind, locale: str) -> None:
    request = sample_request(kind, locale)
    links = sample_links(request)
    for variant in all_requests(kind, locale):
        rendered = render_email(variant, links)
        assert rendered.locale == locale
        assert rendered.subject and "\n" not in rendered.subject and "1001" in rendered.subject
        assert links.tracking_url in rendered.text and f'href="{links.tracking_url}"' in rendered.html
        assert links.support_email in rendered.text
        assert f'href="mailto:{links.support_email}"' in rendered.html
        first_name = request.order.customer.name.split()[0]
        assert first_name in rendered.text.splitlines()[0] and first_name in rendered.html
        assert f'<html lang="{locale}">' in rendered.html
        assert f"<title>{escape(rendered.subject)}</title>" in rendered.html
        assert "max-width:600px" in rendered.html
        assert '<meta name="color-scheme" content="light dark">' in rendered.html
        assert "@media (prefers-color-scheme: dark)" in rendered.html


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("kind", SMS)
def test_every_sms_is_one_line_ending_with_the_tracking_link(kind: MessageKind, locale: str) -> None:
    for request in all_requests(kind, locale):
        links = sample_links(request)
        text = render_sms(request, links)
        assert "\n" not in text and text.endswith(" " + links.tracking_url)
        assert "1001" in text


# 160 characters is one GSM-7 segment; accents outside GSM-7 (ã, í) and Korean send as UCS-2,
# in 70-character segments, so those are kept short for the reader rather than for the carrier.
@pytest.mark.parametrize(
    ("locale", "limit"), [("en", 160), ("pt-BR", 160), ("es", 160), ("ca", 160), ("ko", 140)]
)
@pytest.mark.parametrize("kind", SMS)
def test_sms_fits_its_length(kind: MessageKind, locale: str, limit: int) -> None:
    for request in all_requests(kind, locale):
        links = sample_links(request)
        assert 40 <= len(links.tracking_url) <= 50  # a realistic tracking link
        text = render_sms(request, links)
        for value in shops_payment_values(request):  # a Pix code alone may be 200 characters
            text = text.replace(value, "")
        assert len(text) < limit, text


def test_only_the_sms_kinds_have_a_text_message() -> None:
    request = sample_request(MessageKind.CONFIRMATION, "en")
    with pytest.raises(ValueError, match="not sent by SMS"):
        render_sms(request, sample_links(request))


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_marketing_mail_carries_its_unsubscribe_link(locale: str) -> None:
    request = sample_request(MessageKind.REVIEW_REQUEST, locale)
    links = sample_links(request)
    assert MessageKind.REVIEW_REQUEST in MARKETING and links.unsubscribe_url
    rendered = render_email(request, links)
    assert links.unsubscribe_url in rendered.text and f'href="{links.unsubscribe_url}"' in rendered.html
    assert f'href="{links.review_url}"' in rendered.html and links.review_url in rendered.text

    without = render_email(request, replace(links, unsubscribe_url=None))
    assert "/unsubscribe/" not in without.text + without.html


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("kind", sorted(PAYMENT_PENDING))
def test_payment_messages_carry_the_amount_the_deadline_and_how_to_pay(
    kind: MessageKind, locale: str
) -> None:
    sample = sample_request(kind, locale)
    for way in INSTRUCTIONS:
        request = with_instructions(sample, way)
        links = sample_links(request)
        email, sms = render_email(request, links), render_sms(request, links)
        pay_by = render._context(request, links, locale)["pay_by"]
        assert pay_by and pay_by in email.text and str(escape(pay_by)) in email.html
        short_pay_by = render._context(request, links, locale, dates="medium")["pay_by"]
        assert " ".join(short_pay_by.split()) in sms  # a text is one line of plain spaces
        assert render._context(request, links, locale)["total"] in email.text
        for value in shops_payment_values(request):
            assert value in email.text and str(escape(value)) in email.html
        if way:  # a text carries what pays (the code, the line, the page), not a boleto's PDF link
            assert (way.code or way.line or way.url) in sms
        if way and way.url:
            assert f'href="{escape(way.url)}"' in email.html


def test_the_payment_code_wraps_anywhere_on_a_phone() -> None:
    request = with_instructions(sample_request(MessageKind.AWAITING_PAYMENT, "pt-BR"), INSTRUCTIONS[0])
    html_part = render_email(request, sample_links(request)).html
    box = html_part[html_part.index("word-break:break-all;") :]
    assert box.split("</p>")[0].endswith(str(escape(PIX_CODE)))


def test_the_carrier_link_shows_only_when_known() -> None:
    request = sample_request(MessageKind.SHIPPED, "en")
    links = sample_links(request)
    assert links.carrier_url
    assert f'href="{links.carrier_url}"' in render_email(request, links).html
    without = render_email(request, replace(links, carrier_url=None))
    assert "carrier's website" not in without.text and "carrier.example.com" not in without.html


# ---------------------------------------------------------------------------------------------
# Catalogs


def test_the_catalogs_translate_every_message_of_the_templates() -> None:
    """The .pot matches the templates, and every locale translates every message, none fuzzy."""
    found = problems()
    assert not found, "run `python -m ordertrack.mail.catalogs update`, then translate:\n" + "\n".join(
        f"{name}: {issue}" for name, issues in found.items() for issue in issues
    )


def _english_phrases() -> set[str]:
    """The English of every message, cut at its placeholders, where a piece has more than three words."""
    pieces = (
        piece.strip()
        for message in read_catalog(TEMPLATE)
        if message.id
        for piece in re.split(r"%\(\w+\)s", str(message.id))
    )
    return {piece for piece in pieces if len(piece.split()) > 3}


@pytest.mark.parametrize("locale", TRANSLATED)
@pytest.mark.parametrize("kind", KINDS)
def test_no_english_is_left_in_a_translated_message(kind: MessageKind, locale: str) -> None:
    phrases = _english_phrases()
    assert len(phrases) > 40
    for request in all_requests(kind, locale):
        everything = everything_rendered(request)
        assert not [phrase for phrase in phrases if phrase in everything]


def test_ops_text_never_reaches_the_customer() -> None:
    """`details["reason"]` is English for ops; the customer reads the delay kind in their language."""
    request = sample_request(MessageKind.DELAYED, "es")
    request = with_details(request, {**request.details, "reason": "carrier API said: LATE-42"})
    everything = everything_rendered(request)
    assert "LATE-42" not in everything
    assert "La empresa de transporte ha retrasado la fecha prevista de entrega." in everything


# ---------------------------------------------------------------------------------------------
# Environments


def test_an_undefined_variable_fails_rather_than_rendering_empty() -> None:
    request = sample_request(MessageKind.SHIPPED, "en")
    context = render._context(request, sample_links(request), "en")
    env = environment("en")
    assert env.undefined is jinja2.StrictUndefined
    with pytest.raises(jinja2.UndefinedError, match="tracking_nubmer"):
        env.from_string("{{ tracking_nubmer }}").render(context)


def test_every_template_gets_the_same_keys() -> None:
    keys = {
        frozenset(render._context(request, sample_links(request), "en"))
        for kind in KINDS
        for request in all_requests(kind, "en")
    }
    assert len(keys) == 1


@pytest.mark.parametrize(
    ("tag", "locale"),
    [
        ("en", "en"),
        ("en-GB", "en"),
        ("pt", "pt-BR"),
        ("pt-PT", "pt-BR"),
        ("pt_BR", "pt-BR"),
        ("pt-br", "pt-BR"),
        ("es-MX", "es"),
        ("es", "es"),
        ("ca-ES", "ca"),
        ("ko-KR", "ko"),
        ("fr-FR", "en"),
        ("zh-Hant-TW", "en"),
    ],
)
def test_resolve_locale(tag: str, locale: str) -> None:
    assert resolve_locale(tag) == locale


def test_an_unsupported_locale_reads_english() -> None:
    request = with_customer(sample_request(MessageKind.SHIPPED, "en"), locale="fr-FR")
    rendered = render_email(request, sample_links(request))
    assert rendered.locale == "en"
    assert rendered.subject == "Your order 1001 is on its way"
    assert rendered.text.startswith("Hi Emily,") and '<html lang="en">' in rendered.html


def test_values_are_escaped_in_html_even_inside_translated_sentences() -> None:
    request = with_customer(sample_request(MessageKind.DELIVERED, "pt-BR"), name="<b>Ana</b> Souza")
    rendered = render_email(request, sample_links(request))
    assert "Olá, &lt;b&gt;Ana&lt;/b&gt;," in rendered.html and "<b>Ana" not in rendered.html
    assert "Olá, <b>Ana</b>," in rendered.text


# ---------------------------------------------------------------------------------------------
# Dates and money


def test_pt_br_formats_money_and_dates_in_portuguese() -> None:
    confirmation = render_email(
        sample_request(MessageKind.CONFIRMATION, "pt-BR"),
        sample_links(sample_request(MessageKind.CONFIRMATION, "pt-BR")),
    )
    assert "Total: R$\xa0124,80" in confirmation.text
    assert "2 \u00d7 Camiseta de algodão: R$\xa079,80" in confirmation.text
    shipped = preview(MessageKind.SHIPPED, "pt-BR", "text")
    assert "Previsão de entrega: terça-feira, 24 de novembro de 2026" in shipped


def test_ko_formats_money_and_dates_in_korean() -> None:
    confirmation = preview(MessageKind.CONFIRMATION, "ko", "text")
    assert "합계: ₩73,000" in confirmation
    shipped = preview(MessageKind.SHIPPED, "ko", "text")
    assert "도착 예정일: 2026년 11월 24일 화요일" in shipped


def test_es_and_ca_format_euros_after_the_amount() -> None:
    assert "Total: 84,95\xa0€" in preview(MessageKind.CONFIRMATION, "es", "text")
    assert "Total: 52,30\xa0€" in preview(MessageKind.CONFIRMATION, "ca", "text")
    assert "dimarts, 24 de novembre del 2026" in preview(MessageKind.SHIPPED, "ca", "text")


def test_a_date_only_estimate_keeps_its_day_in_any_time_zone() -> None:
    """Midnight in Seoul is the afternoon before in Los Angeles: converting would show Monday."""
    request = with_estimate(
        sample_request(MessageKind.SHIPPED, "en"), datetime.fromisoformat("2026-11-24T00:00:00+09:00")
    )
    request = with_customer(request, time_zone="America/Los_Angeles")
    text = render_email(request, sample_links(request)).text
    assert "Estimated delivery: Tuesday, November 24, 2026\n" in text
    assert "Monday" not in text


def test_an_estimate_with_a_time_shows_it_in_the_customers_zone() -> None:
    request = with_estimate(
        sample_request(MessageKind.SHIPPED, "pt-BR"), datetime.fromisoformat("2026-11-24T18:30:00+00:00")
    )
    text = render_email(request, sample_links(request)).text
    assert "Previsão de entrega: terça-feira, 24 de novembro de 2026 15:30" in text

    late = with_estimate(request, datetime.fromisoformat("2026-11-25T01:30:00+00:00"))
    assert "terça-feira, 24 de novembro de 2026 22:30" in render_email(late, sample_links(late)).text


def test_without_a_known_time_zone_times_are_shown_in_utc() -> None:
    request = with_estimate(
        sample_request(MessageKind.SHIPPED, "en"), datetime.fromisoformat("2026-11-24T18:30:00+00:00")
    )
    for zone in (None, "Mars/Olympus_Mons"):
        customer = with_customer(request, time_zone=zone)
        text = render_email(customer, sample_links(customer)).text
        assert "Estimated delivery: Tuesday, November 24, 2026, 6:30\u202fPM" in text


def test_the_new_date_of_a_delay_is_formatted_for_the_locale() -> None:
    request = sample_request(MessageKind.DELAYED, "es")
    text = render_email(request, sample_links(request)).text
    assert "Nueva fecha de entrega prevista: viernes, 27 de noviembre de 2026" in text
    date_only = with_details(request, {"delay_kind": "estimate_moved", "new_date": "2026-12-01"})
    assert "martes, 1 de diciembre de 2026" in render_email(date_only, sample_links(date_only)).text


# ---------------------------------------------------------------------------------------------
# Preview and English snapshots


def test_the_text_preview_starts_with_the_subject() -> None:
    text = preview(MessageKind.LOST, "ca", "text")
    subject, blank, body = text.split("\n", 2)
    assert subject == "Subject: Ho sentim: la teva comanda 1001 s'ha perdut"
    assert blank == "" and body.startswith("Hola, Jordi:")


@pytest.mark.parametrize("fmt", ["text", "html"])
@pytest.mark.parametrize("kind", KINDS)
def test_english_snapshot(kind: MessageKind, fmt: str) -> None:
    path = SNAPSHOTS / f"{kind.value}.{'txt' if fmt == 'text' else 'html'}"
    rendered = preview(kind, "en", "text" if fmt == "text" else "html")
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    if not path.exists():
        pytest.fail(f"no snapshot {path.relative_to(SNAPSHOTS.parents[2])}: create it with {UPDATE}")
    assert rendered == path.read_text(encoding="utf-8"), f"{path.name} changed; if intended: {UPDATE}"
