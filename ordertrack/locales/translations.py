"""The gettext catalogs every customer-facing word comes from: emails, texts and pages.

They are the `.po` files beside this module, in gettext's layout (`<locale>/LC_MESSAGES/messages.po`,
and the template `messages.pot`), kept in step with the templates by `python -m
ordertrack.mail.catalogs`. A catalog is compiled in memory on first use, so there is no build step
and no `.mo` file to keep in sync.
"""

from functools import cache
from io import BytesIO
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from ordertrack.locales import DEFAULT_LOCALE

SOURCE_LOCALE = DEFAULT_LOCALE  # the language of the msgids: it needs no catalog
CATALOG_DIR = Path(__file__).parent


def gettext_name(locale: str) -> str:
    """The name gettext and Babel give a BCP 47 tag: `pt-BR` is `pt_BR`."""
    return str(Locale.parse(locale, sep="-"))


def catalog_path(locale: str) -> Path:
    """Where a supported locale's `.po` file lives, in gettext's layout."""
    return CATALOG_DIR / gettext_name(locale) / "LC_MESSAGES" / "messages.po"


@cache
def translations(locale: str) -> NullTranslations:
    """A supported locale's catalog, compiled from its `.po` (fuzzy entries are left out, as by msgfmt)."""
    if locale == SOURCE_LOCALE:
        return NullTranslations()
    with catalog_path(locale).open("rb") as po:
        catalog = read_po(po, locale=gettext_name(locale))
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def N_(message: str) -> str:
    """Mark a message for extraction where it is written; it is translated where it is shown."""
    return message
