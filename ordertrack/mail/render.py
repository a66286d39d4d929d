"""Render a `NotificationRequest` into a localized email (subject, text, HTML) or SMS text.

The templates live in the top-level `templates/email/` and `templates/sms/` folders. Each email
kind's `.txt` template defines the subject once (its `subject` block), and the HTML part receives
that subject for its `<title>`. Every customer-facing word goes through gettext, from the catalogs
the tracking page uses too (`ordertrack.locales.translations`, installed by
`ordertrack.templating`); dates and money go through Babel (`ordertrack.locales.formats`).
"""

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Literal

from babel import Locale
from babel.dates import format_date, format_time, get_datetime_format

from ordertrack.domain.models import Address
from ordertrack.domain.notices import SMS_KINDS
from ordertrack.domain.records import NotificationRequest
from ordertrack.domain.view import first_name
from ordertrack.locales import resolve_locale
from ordertrack.locales.formats import babel_locale, is_date_only, money, time_zone
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
    """Where a message points; the sending activity builds them from settings and the order."""

    tracking_url: str
    review_url: str
    support_email: str
    carrier_url: str | None = None  # the carrier's own tracking page, when known
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
        "carrier": view.carrier,
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
