"""The languages customers are spoken to in, and how a customer's or browser's tag maps onto them.

One list and one rule for emails, texts and pages alike, so a link in a message opens a page in the
message's language. Beside this module: the gettext catalogs of every customer-facing word
(`translations`, the `.po` files) and the Babel formatting of money and dates (`formats`).
"""

import re

DEFAULT_LOCALE = "en"
SUPPORTED_LOCALES: tuple[str, ...] = ("en", "pt-BR", "es", "ca", "ko")

# A bare language (or another region of it) maps to the one variant we have: `pt`, `pt-PT` -> `pt-BR`.
_BY_LANGUAGE = {tag.split("-")[0].lower(): tag for tag in SUPPORTED_LOCALES}
_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")


def language_supported(tag: str) -> bool:
    """Whether the tag's language (whatever its region) is one we speak."""
    return tag.strip().replace("_", "-").split("-")[0].lower() in _BY_LANGUAGE


def resolve_locale(tag: str | None) -> str:
    """The supported locale nearest to `tag`: by its language (any case, `_` or `-`), else English."""
    if not tag or not _TAG.match(tag.strip()):
        return DEFAULT_LOCALE
    return _BY_LANGUAGE.get(tag.strip().replace("_", "-").split("-")[0].lower(), DEFAULT_LOCALE)


def negotiate(accept_language: str | None) -> str:
    """The best supported locale for an `Accept-Language` header (pages without an order to go by)."""
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if quality > 0 and language_supported(tag):
            choices.append((-quality, position, resolve_locale(tag)))
    return min(choices)[2] if choices else DEFAULT_LOCALE
