"""Render a `NotificationRequest` into a localized email (subject, text, HTML) or SMS text.

The templates live in the top-level `templates/email/` and `templates/sms/` folders. Each email
kind's `.txt` template defines the subject once (its `subject` block), and the HTML part receives
that subject for its `<title>`. Every customer-facing word goes through gettext; the catalogs are
the `.po` files under `locales/`, compiled in memory on first use, so there is no build step and no
`.mo` file to keep in sync. Missing variables fail loudly (`StrictUndefined`) rather than sending a
half-empty message.
"""

import importlib.util
from dataclasses import dataclass
from datetime import UTC, datetime, time, tzinfo
from decimal import Decimal
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from babel import Locale
from babel.dates import format_date, format_time, get_datetime_format
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency
from babel.support import NullTranslations, Translations

import ordertrack
from ordertrack.domain.models import Address, Order
from ordertrack.domain.notices import SMS_KINDS
from ordertrack.domain.records import NotificationRequest
from ordertrack.domain.view import first_name
from ordertrack.locales import DEFAULT_LOCALE, resolve_locale

SOURCE_LOCALE = DEFAULT_LOCALE  # the language of the msgids: it needs no catalog
LOCALES_DIR = Path(__file__).parent / "locales"

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


def template_dirs() -> list[str]:
    """The repo's `templates/` beside the package (editable install), else the `templates` namespace package.

    The namespace path is read from its spec: `importlib.resources.files("templates")` raises
    NotADirectoryError on Python 3.11 once an editable install adds its path hook to that path.
    """
    beside_package = Path(ordertrack.__file__).resolve().parent.parent / "templates"
    if beside_package.is_dir():
        return [str(beside_package)]
    spec = importlib.util.find_spec("templates")
    locations = (spec.submodule_search_locations or []) if spec else []
    return [location for location in dict.fromkeys(locations) if Path(location).is_dir()]


def gettext_name(locale: str) -> str:
    """The name gettext and Babel give a BCP 47 tag: `pt-BR` is `pt_BR`."""
    return str(Locale.parse(locale, sep="-"))


def catalog_path(locale: str) -> Path:
    """Where a supported locale's `.po` file lives, in gettext's layout."""
    return LOCALES_DIR / gettext_name(locale) / "LC_MESSAGES" / "messages.po"


@cache
def _translations(locale: str) -> NullTranslations:
    """The locale's catalog, compiled from its `.po` in memory (fuzzy entries are left out, as by msgfmt)."""
    if locale == SOURCE_LOCALE:
        return NullTranslations()
    with catalog_path(locale).open("rb") as po:
        catalog = read_po(po, locale=gettext_name(locale))
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


@cache
def _environment(locale: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dirs()),
        auto_reload=False,  # templates ship with the release: no stat() per render
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    # The i18n extension adds this method; `newstyle` escapes the %(name)s values in HTML.
    env.install_gettext_translations(_translations(locale), newstyle=True)  # type: ignore[attr-defined]
    return env


def _zone(name: str | None) -> tzinfo:
    """The customer's zone; UTC when they gave none or one this machine does not know."""
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _when(value: datetime, zone: tzinfo, locale: Locale, length: DateLength) -> str:
    """A day, or a day and time in the customer's zone; `medium` (no weekday) keeps texts short.

    A carrier's date-only estimate arrives as midnight in its own offset (or with no offset at all):
    it is shown as that date, since converting it to another zone would move it to another day.
    """
    if value.tzinfo is None or value.time() == time(0):
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


def _money(amount: Decimal, order: Order, locale: Locale) -> str:
    return format_currency(amount, order.currency, locale=locale)


def _context(
    request: NotificationRequest, links: MessageLinks, locale: str, dates: DateLength = "full"
) -> dict[str, Any]:
    """Every template gets the same keys (None when unknown), so a typo is the only undefined name."""
    order, view, details = request.order, request.view, request.details
    babel_locale = Locale.parse(locale, sep="-")
    zone = _zone(order.customer.time_zone)
    new_date = details.get("new_date")
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
            _Line(item.name, item.quantity, _money(item.subtotal, order, babel_locale))
            for item in order.items
        ],
        "total": _money(order.total, order, babel_locale),
        "address_lines": _address_lines(order.shipping_address, babel_locale),
        "carrier": view.carrier,
        "tracking_number": view.tracking_number,
        "estimated_delivery": (
            _when(view.estimated_delivery, zone, babel_locale, dates) if view.estimated_delivery else None
        ),
        # Codes only: `details["reason"]` and operators' notes are English for ops, never for customers.
        "delay_kind": details.get("delay_kind") or (view.delay_kind.value if view.delay_kind else None),
        "new_date": _when(datetime.fromisoformat(new_date), zone, babel_locale, dates) if new_date else None,
        "attempt": int(details.get("attempt") or 1),
        "follow_up": details.get("follow_up") == "1",
        "location": details.get("location"),
        "cause": details.get("cause"),
    }


def render_email(request: NotificationRequest, links: MessageLinks) -> RenderedMessage:
    """Render one email in the customer's language (English when it is not supported)."""
    locale = resolve_locale(request.order.customer.locale)
    env = _environment(locale)
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
        _environment(locale)
        .get_template(f"sms/{request.kind.value}.txt")
        .render(_context(request, links, locale, dates="medium"))
    )
    return " ".join(text.split())
