"""Whom a customer asks for help: the shop's name and support contact, as the settings give them.

The tracking page shows all of it; every message carries the support address. One rule for the
address (`SUPPORT_EMAIL`, else MAIL_FROM's), so the page and the emails never name two.
"""

from dataclasses import dataclass
from email.utils import parseaddr
from typing import Self

import phonenumbers

from ordertrack.settings import Settings


def support_address(support_email: str | None, mail_from: str) -> str:
    """`SUPPORT_EMAIL`, else the address MAIL_FROM sends from."""
    return support_email or parseaddr(mail_from)[1]


@dataclass(frozen=True)
class SupportContact:
    email: str
    shop_name: str | None = None
    url: str | None = None  # the shop's help page (http or https, checked with the settings)
    phone: str | None = None  # E.164 (checked with the settings), for `tel:` links

    @classmethod
    def of(cls, settings: Settings) -> Self:
        return cls(
            email=support_address(settings.support_email, settings.mail_from),
            shop_name=settings.shop_name,
            url=settings.support_url,
            phone=settings.support_phone,
        )

    @property
    def phone_display(self) -> str | None:
        """`+5511999990000` -> `+55 11 99999-0000`, as people write it."""
        if self.phone is None:
            return None
        number = phonenumbers.parse(self.phone, None)
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
