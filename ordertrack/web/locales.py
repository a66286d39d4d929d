"""The tracking page's words, dates and money in the customer's language (`en`, `pt-BR`, `es`).

Kept as plain tables rather than Babel/gettext: three locales and a few dozen strings do not
justify a catalogue toolchain yet. Anything missing in a locale falls back to English, so a new
string never breaks a page.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ordertrack.domain.state import DelayKind
from ordertrack.domain.statuses import OrderStatus

DEFAULT = "en"
SUPPORTED = ("en", "pt-BR", "es")
# A bare language (or another region of it) maps to the variant we have: `pt`, `pt-PT` -> `pt-BR`.
_BY_LANGUAGE = {"en": "en", "pt": "pt-BR", "es": "es"}

_STATUS: dict[str, dict[OrderStatus, str]] = {
    "en": {
        OrderStatus.RECEIVED: "Order received",
        OrderStatus.CONFIRMED: "Confirmed",
        OrderStatus.PICKING: "Being prepared",
        OrderStatus.PACKED: "Packed",
        OrderStatus.SHIPPED: "Shipped",
        OrderStatus.IN_TRANSIT: "In transit",
        OrderStatus.OUT_FOR_DELIVERY: "Out for delivery",
        OrderStatus.DELIVERED: "Delivered",
        OrderStatus.COMPLETED: "Delivered",
        OrderStatus.AVAILABLE_FOR_PICKUP: "Ready for pickup",
        OrderStatus.DELIVERY_FAILED: "Delivery attempt failed",
        OrderStatus.EXCEPTION: "Delivery problem",
        OrderStatus.RETURNED: "Returned to sender",
        OrderStatus.LOST: "Lost in transit",
        OrderStatus.CANCELLED: "Cancelled",
    },
    "pt-BR": {
        OrderStatus.RECEIVED: "Pedido recebido",
        OrderStatus.CONFIRMED: "Confirmado",
        OrderStatus.PICKING: "Em separação",
        OrderStatus.PACKED: "Embalado",
        OrderStatus.SHIPPED: "Enviado",
        OrderStatus.IN_TRANSIT: "Em trânsito",
        OrderStatus.OUT_FOR_DELIVERY: "Saiu para entrega",
        OrderStatus.DELIVERED: "Entregue",
        OrderStatus.COMPLETED: "Entregue",
        OrderStatus.AVAILABLE_FOR_PICKUP: "Disponível para retirada",
        OrderStatus.DELIVERY_FAILED: "Tentativa de entrega sem sucesso",
        OrderStatus.EXCEPTION: "Problema na entrega",
        OrderStatus.RETURNED: "Devolvido ao remetente",
        OrderStatus.LOST: "Extraviado",
        OrderStatus.CANCELLED: "Cancelado",
    },
    "es": {
        OrderStatus.RECEIVED: "Pedido recibido",
        OrderStatus.CONFIRMED: "Confirmado",
        OrderStatus.PICKING: "En preparación",
        OrderStatus.PACKED: "Empaquetado",
        OrderStatus.SHIPPED: "Enviado",
        OrderStatus.IN_TRANSIT: "En tránsito",
        OrderStatus.OUT_FOR_DELIVERY: "En reparto",
        OrderStatus.DELIVERED: "Entregado",
        OrderStatus.COMPLETED: "Entregado",
        OrderStatus.AVAILABLE_FOR_PICKUP: "Listo para recoger",
        OrderStatus.DELIVERY_FAILED: "Intento de entrega fallido",
        OrderStatus.EXCEPTION: "Incidencia en la entrega",
        OrderStatus.RETURNED: "Devuelto al remitente",
        OrderStatus.LOST: "Extraviado",
        OrderStatus.CANCELLED: "Cancelado",
    },
}

_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Order {order_id}",
        "heading": "Order {order_id}",
        "progress": "Progress",
        "delayed_title": "Your order is delayed",
        "new_date": "New estimated delivery: {date}",
        "delay_ship_by": "It was not handed to the carrier on time.",
        "delay_estimate_moved": "The carrier moved the estimated delivery.",
        "delay_estimate_passed": "The estimated delivery date has passed.",
        "side_exception": "The carrier reported a problem with your parcel. It may still be delivered.",
        "side_delivery_failed": "The carrier could not deliver your parcel. They may try again.",
        "side_available_for_pickup": "Your parcel is waiting for you at a pickup point.",
        "side_lost": "The carrier has not seen your parcel for a while. We are looking into it.",
        "side_returned": "Your parcel was returned to the sender.",
        "side_cancelled": "This order was cancelled.",
        "estimated_delivery": "Estimated delivery",
        "delivered_on": "Delivered on",
        "shipment": "Shipment",
        "carrier": "Carrier",
        "tracking_number": "Tracking number",
        "carrier_link": "Track on the carrier's website",
        "shipping_to": "Shipping to",
        "items": "Items",
        "total": "Total",
        "history": "History",
        "no_history": "Nothing yet.",
        "entry_delay": "Delay",
        "entry_estimate": "Estimated delivery updated",
        "updated": "Last update: {date}",
        "private_link": "This page is private to you: do not share its link.",
        "not_found_title": "Tracking page not found",
        "not_found_text": "This tracking link is not valid, or it has been replaced by a newer one. "
        "Check the latest email about your order, or look it up below.",
        "lookup_title": "Find your order",
        "lookup_text": "Lost your tracking link? Enter your order number and the email you ordered with.",
        "order_number": "Order number",
        "email": "Email",
        "submit": "Find my order",
        "lookup_failed": "We could not find an order with those details.",
        "too_many": "Too many attempts. Please try again in {minutes} minutes.",
        "times_in": "Times in {zone}.",
    },
    "pt-BR": {
        "title": "Pedido {order_id}",
        "heading": "Pedido {order_id}",
        "progress": "Andamento",
        "delayed_title": "Seu pedido está atrasado",
        "new_date": "Nova previsão de entrega: {date}",
        "delay_ship_by": "Ele não foi entregue à transportadora no prazo.",
        "delay_estimate_moved": "A transportadora alterou a previsão de entrega.",
        "delay_estimate_passed": "A data prevista de entrega já passou.",
        "side_exception": "A transportadora informou um problema com o seu pacote. "
        "Ele ainda pode ser entregue.",
        "side_delivery_failed": "A transportadora não conseguiu entregar o pacote. "
        "Pode haver nova tentativa.",
        "side_available_for_pickup": "Seu pacote está esperando por você em um ponto de retirada.",
        "side_lost": "A transportadora não registra o seu pacote há algum tempo. Estamos verificando.",
        "side_returned": "Seu pacote foi devolvido ao remetente.",
        "side_cancelled": "Este pedido foi cancelado.",
        "estimated_delivery": "Previsão de entrega",
        "delivered_on": "Entregue em",
        "shipment": "Envio",
        "carrier": "Transportadora",
        "tracking_number": "Código de rastreio",
        "carrier_link": "Rastrear no site da transportadora",
        "shipping_to": "Entrega em",
        "items": "Itens",
        "total": "Total",
        "history": "Histórico",
        "no_history": "Nada por enquanto.",
        "entry_delay": "Atraso",
        "entry_estimate": "Previsão de entrega atualizada",
        "updated": "Última atualização: {date}",
        "private_link": "Esta página é só sua: não compartilhe o link.",
        "not_found_title": "Página de rastreio não encontrada",
        "not_found_text": "Este link de rastreio não é válido ou foi substituído por um mais novo. "
        "Veja o e-mail mais recente sobre o seu pedido ou procure-o abaixo.",
        "lookup_title": "Encontre seu pedido",
        "lookup_text": "Perdeu o link de rastreio? Informe o número do pedido e o e-mail usado na compra.",
        "order_number": "Número do pedido",
        "email": "E-mail",
        "submit": "Encontrar meu pedido",
        "lookup_failed": "Não encontramos um pedido com esses dados.",
        "too_many": "Muitas tentativas. Tente novamente em {minutes} minutos.",
        "times_in": "Horários em {zone}.",
    },
    "es": {
        "title": "Pedido {order_id}",
        "heading": "Pedido {order_id}",
        "progress": "Progreso",
        "delayed_title": "Tu pedido está retrasado",
        "new_date": "Nueva fecha estimada de entrega: {date}",
        "delay_ship_by": "No se entregó al transportista a tiempo.",
        "delay_estimate_moved": "El transportista cambió la fecha estimada de entrega.",
        "delay_estimate_passed": "La fecha estimada de entrega ya pasó.",
        "side_exception": "El transportista informó una incidencia con tu paquete. Aún puede entregarse.",
        "side_delivery_failed": "El transportista no pudo entregar tu paquete. Puede volver a intentarlo.",
        "side_available_for_pickup": "Tu paquete te espera en un punto de recogida.",
        "side_lost": "El transportista no ha registrado tu paquete desde hace tiempo. Lo estamos revisando.",
        "side_returned": "Tu paquete fue devuelto al remitente.",
        "side_cancelled": "Este pedido fue cancelado.",
        "estimated_delivery": "Entrega estimada",
        "delivered_on": "Entregado el",
        "shipment": "Envío",
        "carrier": "Transportista",
        "tracking_number": "Número de seguimiento",
        "carrier_link": "Seguir en la web del transportista",
        "shipping_to": "Envío a",
        "items": "Artículos",
        "total": "Total",
        "history": "Historial",
        "no_history": "Nada todavía.",
        "entry_delay": "Retraso",
        "entry_estimate": "Fecha estimada actualizada",
        "updated": "Última actualización: {date}",
        "private_link": "Esta página es solo para ti: no compartas su enlace.",
        "not_found_title": "Página de seguimiento no encontrada",
        "not_found_text": "Este enlace de seguimiento no es válido o fue reemplazado por uno más reciente. "
        "Revisa el correo más reciente sobre tu pedido o búscalo abajo.",
        "lookup_title": "Encuentra tu pedido",
        "lookup_text": "¿Perdiste el enlace de seguimiento? "
        "Escribe el número de pedido y el correo de la compra.",
        "order_number": "Número de pedido",
        "email": "Correo electrónico",
        "submit": "Buscar mi pedido",
        "lookup_failed": "No encontramos un pedido con esos datos.",
        "too_many": "Demasiados intentos. Vuelve a intentarlo en {minutes} minutos.",
        "times_in": "Horas en {zone}.",
    },
}

_MONTHS = {
    "en": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    "pt-BR": ["jan", "fev", "mar", "abr", "mai", "jun", "jul", "ago", "set", "out", "nov", "dez"],
    "es": ["ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic"],
}
_WEEKDAYS = {
    "en": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    "pt-BR": ["seg", "ter", "qua", "qui", "sex", "sáb", "dom"],
    "es": ["lun", "mar", "mié", "jue", "vie", "sáb", "dom"],
}
_CURRENCY_SYMBOLS = {"BRL": "R$", "USD": "US$", "EUR": "€", "GBP": "£", "MXN": "MX$", "ARS": "AR$"}
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
_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")


def resolve(tag: str | None) -> str:
    """The supported locale nearest to `tag`: exact (any case, `_` or `-`), then by language, else `en`."""
    if not tag or not _TAG.match(tag.strip()):
        return DEFAULT
    wanted = tag.strip().replace("_", "-").lower()
    for known in SUPPORTED:
        if known.lower() == wanted:
            return known
    return _BY_LANGUAGE.get(wanted.split("-")[0], DEFAULT)


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
        language = tag.strip().split("-")[0].lower()
        if quality > 0 and language in _BY_LANGUAGE:
            choices.append((-quality, position, resolve(tag)))
    return min(choices)[2] if choices else DEFAULT


@dataclass(frozen=True)
class Translator:
    """Everything a template needs to speak one locale; built per request, cheap."""

    locale: str
    zone: tzinfo
    zone_label: str

    @classmethod
    def for_order(cls, locale_tag: str | None, country: str | None = None) -> "Translator":
        name = _COUNTRY_ZONES.get(country or "")
        zone: tzinfo = UTC
        if name:
            try:
                zone = ZoneInfo(name)
            except ZoneInfoNotFoundError:  # no tz database on this host: say UTC rather than guess
                name = None
        return cls(resolve(locale_tag), zone, (name or "UTC").split("/")[-1].replace("_", " "))

    def __call__(self, key: str, **values: object) -> str:
        text = _TEXT[self.locale].get(key) or _TEXT[DEFAULT][key]
        return text.format(**values) if values else text

    def status(self, status: OrderStatus) -> str:
        return _STATUS[self.locale].get(status) or _STATUS[DEFAULT][status]

    def date(self, value: datetime) -> str:
        """A calendar date: `Tue 24 Nov 2026`, `ter., 24 de nov. de 2026`, `mar, 24 nov 2026`.

        A midnight (date-only) carrier estimate keeps the date it names; other moments are shown
        in the shipping country's zone.
        """
        moment = value if _is_date_only(value) else value.astimezone(self.zone)
        weekday, month = _WEEKDAYS[self.locale][moment.weekday()], _MONTHS[self.locale][moment.month - 1]
        if self.locale == "pt-BR":
            return f"{weekday}., {moment.day} de {month}. de {moment.year}"
        if self.locale == "es":
            return f"{weekday}, {moment.day} {month} {moment.year}"
        return f"{weekday} {moment.day} {month} {moment.year}"

    def moment(self, value: datetime) -> str:
        """A date and time for the timeline, in the shipping country's zone, 24-hour clock."""
        local = value.astimezone(self.zone)
        month = _MONTHS[self.locale][local.month - 1]
        if self.locale == "pt-BR":
            return f"{local.day} {month}., {local:%H:%M}"
        return f"{local.day} {month}, {local:%H:%M}"

    def money(self, amount: Decimal, currency: str) -> str:
        """`R$79.80` in English, `R$ 79,80` in Portuguese, `79,80 R$` in Spanish (symbol after)."""
        symbol = _CURRENCY_SYMBOLS.get(currency, currency)
        english = f"{amount:,.2f}"
        if self.locale == "en":
            return f"{symbol}{english}" if currency in _CURRENCY_SYMBOLS else f"{currency} {english}"
        local = english.replace(",", "\0").replace(".", ",").replace("\0", ".")
        return f"{symbol} {local}" if self.locale == "pt-BR" else f"{local} {symbol}"

    def delay_text(self, kind: str | None, reason: str | None) -> str | None:
        """Why the order is late in the customer's words, from the delay's kind (a `DelayKind`)."""
        texts = {
            DelayKind.SHIP_BY.value: "delay_ship_by",
            DelayKind.ESTIMATE_MOVED.value: "delay_estimate_moved",
            DelayKind.ESTIMATE_MISSED.value: "delay_estimate_passed",
        }
        key = texts.get(kind or "")
        return self(key) if key else reason  # an unknown kind: the English reason beats none


def _is_date_only(value: datetime) -> bool:
    return value.timetz().replace(tzinfo=None) == time(0, 0)
