"""How the customer pages write dates, times and money in the page's language (`en`, `pt-BR`, `es`,
`ca`, `ko`): through Babel, as the emails do, and times in the order's time zone as the read model
keeps it. Month and weekday names come from CLDR; only the shape of a date is ours.

The words are gettext messages in the page templates and `pages.py`, translated from the catalogs
the emails use (`ordertrack.locales.translations`).
"""

from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal

from babel import Locale
from babel.dates import format_date, format_datetime, get_timezone_location

from ordertrack.locales import resolve_locale
from ordertrack.locales.formats import babel_locale, is_date_only, money, time_zone
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


@dataclass(frozen=True)
class PageLocale:
    """A page's language and time zone: its words, dates, times and money; built per request, cheap."""

    locale: str
    zone: tzinfo

    @classmethod
    def for_order(cls, locale_tag: str | None, zone_name: str | None = None) -> "PageLocale":
        """The nearest supported locale; the named zone, else UTC (also when this machine lacks it)."""
        return cls(resolve_locale(locale_tag), time_zone(zone_name))

    @property
    def zone_label(self) -> str:
        """The zone's city in the page's language (`São Paulo`, `서울`), or `UTC`."""
        return str(get_timezone_location(self.zone, locale=self._babel_locale, return_city=True))

    def gettext(self, message: str) -> str:
        """The message in the page's language, from the catalogs (the msgid itself in English)."""
        return str(translations(self.locale).gettext(message))

    def date(self, value: datetime) -> str:
        """A calendar date: `Tue 24 Nov 2026`, `dimarts, 24 de novembre de 2026`, `2026년 11월 24일 (화)`.

        A midnight (date-only) carrier estimate keeps the date it names; other moments are shown
        in the order's zone.
        """
        moment = value if is_date_only(value) else value.astimezone(self.zone)
        return format_date(moment.date(), _DATE_PATTERNS[self.locale][0], locale=self._babel_locale)

    def moment(self, value: datetime) -> str:
        """A date and time for the timeline, in the order's zone, 24-hour clock."""
        pattern = _DATE_PATTERNS[self.locale][1]
        return format_datetime(value, pattern, tzinfo=self.zone, locale=self._babel_locale)

    def money(self, amount: Decimal, currency: str) -> str:
        """As the emails write it (Babel): `R$ 79,80` in Portuguese, `₩79,800` in Korean."""
        return money(amount, currency, self._babel_locale)

    @property
    def _babel_locale(self) -> Locale:
        return babel_locale(self.locale)
