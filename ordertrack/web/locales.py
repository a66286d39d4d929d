"""How the customer pages write dates, times and money in the page's language (`en`, `pt-BR`, `es`,
`ca`, `ko`): through Babel, as the emails do. Month and weekday names come from CLDR; only the shape
of a date is ours.

The words are gettext messages in the page templates and `pages.py`, translated from the catalogs
the emails use (`ordertrack.locales.translations`).
"""

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_date, format_datetime

from ordertrack.locales import resolve_locale
from ordertrack.locales.formats import babel_locale, is_date_only, money
from ordertrack.locales.translations import translations

# Babel patterns for (a calendar date, a timeline moment) per locale; CLDR supplies the names, so
# Catalan's MMMM already reads "de novembre" or "d'octubre" and Korean's E reads "금".
_DATE_PATTERNS = {
    "en": ("EEE d MMM y", "d MMM, HH:mm"),
    "pt-BR": ("EEE, d 'de' MMM 'de' y", "d MMM, HH:mm"),
    "es": ("EEE, d MMM y", "d MMM, HH:mm"),
    "ca": ("EEEE, d MMMM 'de' y", "d MMM, HH:mm"),
    "ko": ("y년 M월 d일 (E)", "M월 d일 HH:mm"),
}
# One zone per shipping country, for showing times the way the customer reads them. The read
# model keeps no customer time zone, so multi-zone countries get their most populous one; other
# countries see UTC, labelled as such.
_COUNTRY_ZONES = {
    "BR": "America/Sao_Paulo",
    "PT": "Europe/Lisbon",
    "ES": "Europe/Madrid",
    "MX": "America/Mexico_City",
    "AR": "America/Argentina/Buenos_Aires",
    "CL": "America/Santiago",
    "CO": "America/Bogota",
    "PE": "America/Lima",
    "US": "America/New_York",
    "GB": "Europe/London",
    "IE": "Europe/Dublin",
    "FR": "Europe/Paris",
    "DE": "Europe/Berlin",
    "IT": "Europe/Rome",
    "NL": "Europe/Amsterdam",
}


@dataclass(frozen=True)
class PageLocale:
    """A page's language and time zone: its words, dates, times and money; built per request, cheap."""

    locale: str
    zone: tzinfo
    zone_label: str

    @classmethod
    def for_order(cls, locale_tag: str | None, country: str | None = None) -> "PageLocale":
        name = _COUNTRY_ZONES.get(country or "")
        zone: tzinfo = UTC
        if name:
            try:
                zone = ZoneInfo(name)
            except ZoneInfoNotFoundError:  # no tz database on this host: say UTC rather than guess
                name = None
        return cls(resolve_locale(locale_tag), zone, (name or "UTC").split("/")[-1].replace("_", " "))

    def gettext(self, message: str) -> str:
        """The message in the page's language, from the catalogs (the msgid itself in English)."""
        return str(translations(self.locale).gettext(message))

    def date(self, value: datetime) -> str:
        """A calendar date: `Tue 24 Nov 2026`, `dimarts, 24 de novembre de 2026`, `2026년 11월 24일 (화)`.

        A midnight (date-only) carrier estimate keeps the date it names; other moments are shown
        in the shipping country's zone.
        """
        moment = value if is_date_only(value) else value.astimezone(self.zone)
        return format_date(moment.date(), _DATE_PATTERNS[self.locale][0], locale=self._babel_locale)

    def moment(self, value: datetime) -> str:
        """A date and time for the timeline, in the shipping country's zone, 24-hour clock."""
        pattern = _DATE_PATTERNS[self.locale][1]
        return format_datetime(value, pattern, tzinfo=self.zone, locale=self._babel_locale)

    def money(self, amount: Decimal, currency: str) -> str:
        """As the emails write it (Babel): `R$ 79,80` in Portuguese, `₩79,800` in Korean."""
        return money(amount, currency, self._babel_locale)

    @property
    def _babel_locale(self) -> Locale:
        return babel_locale(self.locale)
