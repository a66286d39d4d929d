"""Money, dates and times as a locale writes them (Babel's CLDR data), in the customer's time zone.

Shared by the emails, texts and pages, so an order's dates and totals read the same everywhere.
"""

from datetime import UTC, datetime, time, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.numbers import format_currency


def babel_locale(locale: str) -> Locale:
    """Babel's locale for a BCP 47 tag (`pt-BR`)."""
    return Locale.parse(locale, sep="-")


def time_zone(name: str | None) -> tzinfo:
    """The named zone; UTC when there is no name or this machine does not know it."""
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def is_date_only(value: datetime) -> bool:
    """Whether `value` names a day rather than a moment.

    A carrier's date-only estimate arrives as midnight in its own offset (or with no offset at all):
    it is shown as that date, since converting it to another zone would move it to another day.
    """
    return value.tzinfo is None or value.time() == time(0)


def money(amount: Decimal, currency: str, locale: Locale) -> str:
    """`R$ 79,80` in Portuguese, `84,95 €` in Spanish, `₩79,800` in Korean (no-break spaces)."""
    return format_currency(amount, currency, locale=locale)
