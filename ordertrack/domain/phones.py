"""Phone numbers a text can reach: a real number of a real numbering plan, written in E.164.

The order model checks only the E.164 shape (`+` and 7 to 15 digits), as it always has: running
orders' inputs must still read. Where a number is about to be used for texts (a new order asking
for SMS or WhatsApp, the shop's support phone), `e164` checks it against the numbering plans of
`phonenumbers`, so a number no provider can reach is refused up front rather than by the provider.
"""

import phonenumbers


def e164(number: str) -> str:
    """`number` (`+55 11 99999-0000`) as E.164 (`+5511999990000`); ValueError saying why it is not one."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        raise ValueError(
            "not an international phone number (expected +<country code><number>, e.g. +5511999990000)"
        ) from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(
            "not a valid phone number for its country (wrong length or prefix for "
            f"+{parsed.country_code}; expected e.g. +5511999990000)"
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
