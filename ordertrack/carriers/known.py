"""Real carriers an order may name by code (tracked through an aggregator), and what customers call them.

Shops and aggregators spell a carrier many ways (`UPS`, `brazil-correios`, `DHLExpress`, `epost`);
names are matched loosely (case, spaces, `-`, `_` ignored) and the known spellings are aliases of
one canonical key. Customers see the carrier's own name (`Correios`, `CTT`, `우체국 택배`), never a
code; the order's carrier code stays as it is in the API, the search attribute and the read model.
"""

import re

# Canonical key -> the name the carrier's customers know it by (a brand: not translated).
DISPLAY_NAMES: dict[str, str] = {
    "ups": "UPS",
    "usps": "USPS",
    "fedex": "FedEx",
    "dhl": "DHL",
    "correios": "Correios",
    "jadlog": "Jadlog",
    "loggi": "Loggi",
    "ctt": "CTT",
    "correos": "Correos",
    "seur": "SEUR",
    "koreapost": "우체국 택배",
    "cjlogistics": "CJ대한통운",
}

# Other spellings and aggregators' codes (normalised) -> canonical key.
ALIASES: dict[str, str] = {
    "unitedparcelservice": "ups",
    "unitedstatespostalservice": "usps",
    "fedexground": "fedex",
    "fedexexpress": "fedex",
    "dhlexpress": "dhl",
    "dhlexpressworldwide": "dhl",
    "brazilcorreios": "correios",
    "correiosbrasil": "correios",
    "correiosbr": "correios",
    "portugalctt": "ctt",
    "cttportugal": "ctt",
    "cttexpresso": "ctt",
    "spaincorreos": "correos",
    "korea": "koreapost",
    "krkoreapost": "koreapost",
    "epost": "koreapost",
    "kpost": "koreapost",
    "cjkorea": "cjlogistics",
    "cjgls": "cjlogistics",
}

_NOT_ALNUM = re.compile(r"[^a-z0-9]")


def carrier_key(carrier: str) -> str | None:
    """The canonical key for a carrier name or aggregator code, or None for a carrier not known here."""
    name = _NOT_ALNUM.sub("", carrier.lower())
    name = ALIASES.get(name, name)
    return name if name in DISPLAY_NAMES else None


def known_display_name(carrier: str) -> str | None:
    """`correios` -> `Correios`, `kpost` -> `우체국 택배`; None for a carrier not known here."""
    key = carrier_key(carrier)
    return DISPLAY_NAMES[key] if key else None
