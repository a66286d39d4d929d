"""The order as a shop backend sends it (the contract's Order JSON), validated for shipping."""

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_serializer,
)

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")
_EMAIL = re.compile(
    r"^[^@\s<>(),;:\"\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")
_TIME_ZONE = re.compile(r"^[A-Za-z_]+(?:/[A-Za-z0-9_+-]+)*$")
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def known_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _single_line(value: str) -> str:
    """Collapse control characters (newlines included) into spaces: names end up in mail headers."""
    return " ".join(_CONTROL_CHARS.sub(" ", value).split())


def _required_text(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


Text = Annotated[str, AfterValidator(_single_line), AfterValidator(_required_text)]
OptionalText = Annotated[str, AfterValidator(_single_line)]
OrderId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    ),
]
Money = Annotated[Decimal, Field(max_digits=14, decimal_places=2)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class Customer(_Model):
    name: Annotated[Text, Field(max_length=200)]
    email: Annotated[str, Field(max_length=254)]
    phone: str | None = None
    locale: str = "en"
    time_zone: str | None = None

    @field_validator("email")
    @classmethod
    def _email_shape(cls, value: str) -> str:
        """Deliverable over plain SMTP: an ASCII mailbox name, and the domain in its IDNA form."""
        local, at, domain = value.rpartition("@")
        if not at or not local.isascii():
            raise ValueError("not a deliverable email address (expected an ASCII name@domain.tld)")
        try:
            ascii_domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError("the email address has an invalid domain") from None
        address = f"{local}@{ascii_domain}"
        if not _EMAIL.match(address):
            raise ValueError("not a valid email address (expected name@domain.tld)")
        return address

    @field_validator("phone")
    @classmethod
    def _phone_shape(cls, value: str | None) -> str | None:
        if value is not None and not _PHONE.match(value.replace(" ", "")):
            raise ValueError("not an E.164 phone number (expected +<country><number>, e.g. +5511999990000)")
        return value.replace(" ", "") if value else value

    @field_validator("time_zone")
    @classmethod
    def _time_zone_shape(cls, value: str | None) -> str | None:
        """A zone this machine knows: quiet hours and the times in messages are computed in it."""
        if value is not None and not (_TIME_ZONE.match(value) and known_time_zone(value)):
            raise ValueError("not a known IANA time zone name (expected e.g. America/Sao_Paulo)")
        return value

    @field_validator("locale")
    @classmethod
    def _locale_shape(cls, value: str) -> str:
        if not _LOCALE.match(value):
            raise ValueError("not a locale tag (expected e.g. en, pt-BR, es)")
        return value


class Address(_Model):
    name: Annotated[Text, Field(max_length=200)]
    line1: Annotated[Text, Field(max_length=200)]
    line2: Annotated[OptionalText, Field(max_length=200)] | None = None
    city: Annotated[Text, Field(max_length=100)]
    region: Annotated[OptionalText, Field(max_length=100)] | None = None
    postal_code: Annotated[Text, Field(max_length=20)]
    country: str

    @field_validator("country")
    @classmethod
    def _country_code(cls, value: str) -> str:
        if not _COUNTRY.match(value):
            raise ValueError("not an ISO 3166-1 alpha-2 country code (expected e.g. BR, PT, US)")
        return value


class Item(_Model):
    sku: Annotated[Text, Field(max_length=64)]
    name: Annotated[Text, Field(max_length=200)]
    quantity: Annotated[int, Field(gt=0, le=10_000)]
    unit_price: Annotated[Money, Field(ge=0)]

    @property
    def subtotal(self) -> Decimal:
        return self.unit_price * self.quantity


class PaymentStatus(StrEnum):
    PAID = "paid"
    PENDING = "pending"


def pix_checksum(payload: str) -> str:
    """CRC-16/CCITT-FALSE of a Pix code up to its checksum field (`6304`), as the BR Code ends it."""
    crc = 0xFFFF
    for byte in payload.encode():
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return f"{crc:04X}"


def _pix_code(value: str) -> str:
    """A customer pastes it into a bank app that checks the same checksum: a code cut short or
    altered on its way from the shop's checkout is refused here, not by the customer's bank."""
    if not _PIX_CODE.match(value) or not value.isprintable():
        raise ValueError("not a Pix copy-and-paste code (a BR Code: one line starting with 000201)")
    if pix_checksum(value[:-4]) != value[-4:].upper():
        raise ValueError("the Pix code's checksum does not match: it was cut short or altered")
    return value


def _boleto_line(value: str) -> str:
    line = " ".join(value.split())
    digits = line.replace(" ", "").replace(".", "")
    if not digits.isdigit() or not digits.isascii() or len(digits) not in (47, 48):
        raise ValueError("not a boleto digitable line (47 digits, or 48 for a bill; dots and spaces allowed)")
    return line


def _https_url(value: str) -> str:
    """Customers open it from a message: https only, with a host, and nothing a client could misread."""
    parts = urlsplit(value)
    if (
        parts.scheme != "https"
        or not parts.hostname
        or _UNSAFE_IN_URL.search(value)
        or not value.isprintable()
    ):
        raise ValueError("not an https:// URL with a host (no spaces or control characters)")
    return value


_PIX_CODE = re.compile(r"^000201.*6304[0-9A-Fa-f]{4}$")
_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f<>\"\\]")
PixCode = Annotated[str, Field(max_length=512), AfterValidator(_pix_code)]
BoletoLine = Annotated[str, Field(max_length=64), AfterValidator(_boleto_line)]
HttpsUrl = Annotated[str, Field(max_length=1000), AfterValidator(_https_url)]


class PaymentKind(StrEnum):
    PIX = "pix"  # `code`: the copy-and-paste code
    BOLETO = "boleto"  # `line`: the digitable line; `url`, optional: the boleto to print
    URL = "url"  # `url`: a page where the customer pays


# kind -> (the fields it needs, those it may have)
_INSTRUCTION_FIELDS: dict[PaymentKind, tuple[frozenset[str], frozenset[str]]] = {
    PaymentKind.PIX: (frozenset({"code"}), frozenset()),
    PaymentKind.BOLETO: (frozenset({"line"}), frozenset({"url"})),
    PaymentKind.URL: (frozenset({"url"}), frozenset()),
}


class PaymentInstructions(_Model):
    """How the customer pays a pending order, as the shop's checkout gave them; they go out in the
    awaiting-payment message and its reminder. One flat shape, so an error names the field as the
    shop sent it (`payment.instructions.code`); each kind takes its own fields and no other."""

    kind: PaymentKind
    code: PixCode | None = Field(default=None, validate_default=True)
    line: BoletoLine | None = Field(default=None, validate_default=True)
    url: HttpsUrl | None = Field(default=None, validate_default=True)

    @field_validator("code", "line", "url")
    @classmethod
    def _fields_of_the_kind(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind is None:  # the kind itself is invalid, and named in its own error
            return value
        needed, optional = _INSTRUCTION_FIELDS[kind]
        if value is None and info.field_name in needed:
            raise ValueError(f"required for a {kind.value} payment")
        if value is not None and info.field_name not in needed | optional:
            takes = ", ".join(sorted(needed | optional))
            raise ValueError(f"not part of a {kind.value} payment, which takes {takes}")
        return value


class Payment(_Model):
    status: PaymentStatus
    method: Annotated[OptionalText, Field(max_length=50)] | None = None
    instructions: PaymentInstructions | None = None

    @model_serializer(mode="wrap")
    def _without_absent_instructions(self, serialize: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """An order without instructions serializes as it did before they existed, so a start
        retried across that deploy still finds the same order digest (`ordertrack.orders`)."""
        data: dict[str, Any] = serialize(self)
        if self.instructions is None:
            data.pop("instructions", None)
        return data


class NotifyPreferences(_Model):
    email: bool = True
    sms: bool = False


class Order(_Model):
    order_id: OrderId
    placed_at: AwareDatetime
    customer: Customer
    shipping_address: Address
    items: Annotated[list[Item], Field(min_length=1, max_length=500)]
    currency: str
    total: Annotated[Money, Field(ge=0)]
    payment: Payment
    notify: NotifyPreferences = NotifyPreferences()

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        if not _CURRENCY.match(value):
            raise ValueError("not an ISO 4217 currency code (expected e.g. BRL, EUR, USD)")
        return value

    @field_validator("total")
    @classmethod
    def _total_matches_items(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        items: list[Item] | None = info.data.get("items")
        if items:
            expected = sum((item.subtotal for item in items), Decimal(0))
            if expected != value:
                raise ValueError(f"total {value} does not match the items, which add up to {expected}")
        return value
