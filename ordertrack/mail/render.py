"""Render a `NotificationRequest` into a localized email (subject, text, HTML), SMS text, or
WhatsApp template message.

The templates live in the top-level `templates/email/` and `templates/sms/` folders. Each email
kind's `.txt` template defines the subject once (its `subject` block), and the HTML part receives
that subject for its `<title>`. Every customer-facing word goes through gettext, from the catalogs
the tracking page uses too (`ordertrack.locales.translations`, installed by
`ordertrack.templating`); dates and money go through Babel (`ordertrack.locales.formats`).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Literal

from babel import Locale
from babel.dates import format_date, format_time, get_datetime_format

from ordertrack.domain.models import Address
from ordertrack.domain.notices import SMS_KINDS
from ordertrack.domain.records import NotificationRequest
from ordertrack.domain.view import first_name
from ordertrack.locales import DEFAULT_LOCALE, resolve_locale
from ordertrack.locales.formats import babel_locale, is_date_only, money, time_zone
from ordertrack.sms.twilio import Template
from ordertrack.templating import environment

# Countries whose addresses put the postal code before the city ("28014 Madrid").
_POSTAL_CODE_FIRST = frozenset({"AT", "BE", "CH", "DE", "DK", "ES", "FI", "FR", "IT", "NL", "NO", "PT", "SE"})


DateLength = Literal["full", "medium"]


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str
    locale: str  # the locale actually used (BCP 47), for the Content-Language header


@dataclass(frozen=True)
class MessageLinks:
    """What the sending activity adds to the order from this deployment: where the message points,
    whom to write to, and the carrier's name as customers know it."""

    tracking_url: str
    review_url: str | None  # None: the shop has no review page, and no review request is sent
    support_email: str
    carrier_url: str | None = None  # the carrier's own tracking page, when known
    carrier_name: str | None = None  # the carrier's display name (`Correios`), else the view's code
    unsubscribe_url: str | None = None  # one-click unsubscribe, for marketing mail only


@dataclass(frozen=True)
class _Line:
    name: str
    quantity: int
    amount: str


def _when(value: datetime, zone: tzinfo, locale: Locale, length: DateLength) -> str:
    """A day, or a day and time in the customer's zone; `medium` (no weekday) keeps texts short."""
    if is_date_only(value):
        return format_date(value.date(), format=length, locale=locale)
    local = value.astimezone(zone)
    day = format_date(local.date(), format=length, locale=locale)
    clock = format_time(local, format="short", locale=locale)
    # How the locale joins a date and a time, as babel's own format_datetime does it.
    pattern = str(get_datetime_format(length, locale=locale)).replace("'", "")
    return pattern.replace("{1}", day).replace("{0}", clock)


def _address_lines(address: Address, locale: Locale) -> list[str]:
    """The address as it goes on a parcel, its country's name in the customer's language last."""
    if address.country in _POSTAL_CODE_FIRST:  # "28014 Madrid"
        place = " ".join(filter(None, [address.postal_code, address.city, address.region]))
    else:  # "New York, NY 10014"
        place = f"{address.city}, {' '.join(filter(None, [address.region, address.postal_code]))}"
    lines = [address.name, address.line1, address.line2, place, locale.territories.get(address.country)]
    return [line for line in lines if line]


def _context(
    request: NotificationRequest, links: MessageLinks, locale: str, dates: DateLength = "full"
) -> dict[str, Any]:
    """Every template gets the same keys (None when unknown), so a typo is the only undefined name."""
    order, view, details = request.order, request.view, request.details
    babel = babel_locale(locale)
    zone = time_zone(order.customer.time_zone)
    new_date, pay_by = details.get("new_date"), details.get("pay_by")
    return {
        "locale": locale,
        "name": first_name(order.customer.name),
        "order_id": order.order_id,
        "tracking_url": links.tracking_url,
        "review_url": links.review_url,
        "support_email": links.support_email,
        "carrier_url": links.carrier_url,
        "unsubscribe_url": links.unsubscribe_url,
        "items": [
            _Line(item.name, item.quantity, money(item.subtotal, order.currency, babel))
            for item in order.items
        ],
        "total": money(order.total, order.currency, babel),
        "address_lines": _address_lines(order.shipping_address, babel),
        "carrier": links.carrier_name or view.carrier,
        "tracking_number": view.tracking_number,
        "estimated_delivery": (
            _when(view.estimated_delivery, zone, babel, dates) if view.estimated_delivery else None
        ),
        # Codes only: `details["reason"]` and operators' notes are English for ops, never for customers.
        "delay_kind": details.get("delay_kind") or (view.delay_kind.value if view.delay_kind else None),
        "new_date": _when(datetime.fromisoformat(new_date), zone, babel, dates) if new_date else None,
        "attempt": int(details.get("attempt") or 1),
        "follow_up": details.get("follow_up") == "1",
        "location": details.get("location"),
        "cause": details.get("cause"),
        "payment": order.payment.instructions,
        "pay_by": _when(datetime.fromisoformat(pay_by), zone, babel, dates) if pay_by else None,
    }


def render_email(request: NotificationRequest, links: MessageLinks) -> RenderedMessage:
    """Render one email in the customer's language (English when it is not supported)."""
    locale = resolve_locale(request.order.customer.locale)
    env = environment(locale)
    context = _context(request, links, locale)
    text_template = env.get_template(f"email/{request.kind.value}.txt")
    subject = "".join(text_template.blocks["subject"](text_template.new_context(context))).strip()
    return RenderedMessage(
        subject=subject,
        text=text_template.render(context),
        html=env.get_template(f"email/{request.kind.value}.html").render(context, subject=subject),
        locale=locale,
    )


def render_sms(request: NotificationRequest, links: MessageLinks) -> str:
    """One short line in the customer's language, ending with the tracking link."""
    if request.kind not in SMS_KINDS:
        raise ValueError(f"{request.kind.value} is not sent by SMS (see ordertrack.domain.notices.SMS_KINDS)")
    locale = resolve_locale(request.order.customer.locale)
    text = (
        environment(locale)
        .get_template(f"sms/{request.kind.value}.txt")
        .render(_context(request, links, locale, dates="medium"))
    )
    return " ".join(text.split())


# The placeholders a WhatsApp template may use, numbered as WhatsApp numbers them; each is sent only
# when the message has a value for it (WhatsApp refuses empty ones), see docs/customer-messages.md.
WHATSAPP_VARIABLES = (
    "name",
    "order_id",
    "tracking_url",
    "carrier",
    "tracking_number",
    "date",
    "location",
    "total",
    "pay_by",
    "pay_with",
)


def render_whatsapp(
    request: NotificationRequest, links: MessageLinks, templates: Mapping[str, Mapping[str, str]]
) -> Template | None:
    """The approved template (`WHATSAPP_TEMPLATES`) for the message's kind in the customer's
    language, else in English, with its variables; None when the kind has neither."""
    if request.kind not in SMS_KINDS:
        raise ValueError(f"{request.kind.value} is not a text (see ordertrack.domain.notices.SMS_KINDS)")
    locale = resolve_locale(request.order.customer.locale)
    by_locale = templates.get(request.kind.value, {})
    sid = by_locale.get(locale) or by_locale.get(DEFAULT_LOCALE)
    if sid is None:
        return None
    context = _context(request, links, locale if locale in by_locale else DEFAULT_LOCALE, dates="medium")
    payment = context["payment"]
    values = {
        **context,
        "date": context["new_date"] or context["estimated_delivery"],
        # What the customer pays with: the Pix code to copy, the boleto's line, or the payment page.
        "pay_with": payment and (payment.code or payment.line or payment.url),
    }
    variables = {
        str(number): str(values[name])
        for number, name in enumerate(WHATSAPP_VARIABLES, start=1)
        if values[name] not in (None, "")
    }
    return Template(sid, variables)
