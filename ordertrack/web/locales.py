"""The tracking page's words, dates and money in the customer's language (`en`, `pt-BR`, `es`, `ca`, `ko`).

The words are plain tables rather than gettext catalogues: a few dozen short strings per locale do
not justify the emails' toolchain. Anything missing in a locale falls back to English, so a new
string never breaks a page. Month and weekday names come from Babel's CLDR data; only the shape of
a date is ours.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_date, format_datetime

from ordertrack.domain.state import DelayKind
from ordertrack.domain.statuses import OrderStatus
from ordertrack.locales import DEFAULT_LOCALE, resolve_locale
from ordertrack.locales.formats import babel_locale, is_date_only, money

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
    "ca": {
        OrderStatus.RECEIVED: "Comanda rebuda",
        OrderStatus.CONFIRMED: "Confirmada",
        OrderStatus.PICKING: "En preparació",
        OrderStatus.PACKED: "Empaquetada",
        OrderStatus.SHIPPED: "Enviada",
        OrderStatus.IN_TRANSIT: "En trànsit",
        OrderStatus.OUT_FOR_DELIVERY: "En repartiment",
        OrderStatus.DELIVERED: "Lliurada",
        OrderStatus.COMPLETED: "Lliurada",
        OrderStatus.AVAILABLE_FOR_PICKUP: "A punt per recollir",
        OrderStatus.DELIVERY_FAILED: "Intent de lliurament fallit",
        OrderStatus.EXCEPTION: "Incidència en el lliurament",
        OrderStatus.RETURNED: "Retornada al remitent",
        OrderStatus.LOST: "Perduda durant el transport",
        OrderStatus.CANCELLED: "Cancel·lada",
    },
    "ko": {
        OrderStatus.RECEIVED: "주문 접수",
        OrderStatus.CONFIRMED: "주문 확인",
        OrderStatus.PICKING: "상품 준비 중",
        OrderStatus.PACKED: "포장 완료",
        OrderStatus.SHIPPED: "발송 완료",
        OrderStatus.IN_TRANSIT: "배송 중",
        OrderStatus.OUT_FOR_DELIVERY: "배송 출발",
        OrderStatus.DELIVERED: "배송 완료",
        OrderStatus.COMPLETED: "배송 완료",
        OrderStatus.AVAILABLE_FOR_PICKUP: "수령 가능",
        OrderStatus.DELIVERY_FAILED: "배송 시도 실패",
        OrderStatus.EXCEPTION: "배송 문제 발생",
        OrderStatus.RETURNED: "반송",
        OrderStatus.LOST: "배송 중 분실",
        OrderStatus.CANCELLED: "주문 취소",
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
    "ca": {
        "title": "Comanda {order_id}",
        "heading": "Comanda {order_id}",
        "progress": "Progrés",
        "delayed_title": "La teva comanda s'ha endarrerit",
        "new_date": "Nova data de lliurament prevista: {date}",
        "delay_ship_by": "No es va lliurar a l'empresa de transport a temps.",
        "delay_estimate_moved": "L'empresa de transport ha endarrerit la data prevista de lliurament.",
        "delay_estimate_passed": "La data de lliurament prevista ja ha passat.",
        "side_exception": "L'empresa de transport ha informat d'una incidència amb el teu paquet. "
        "Encara és possible que te'l lliurin.",
        "side_delivery_failed": "L'empresa de transport no ha pogut lliurar el teu paquet. "
        "És possible que ho torni a intentar.",
        "side_available_for_pickup": "El teu paquet t'espera en un punt de recollida.",
        "side_lost": "Fa temps que l'empresa de transport no registra el teu paquet. Ho estem revisant.",
        "side_returned": "El teu paquet s'ha retornat al remitent.",
        "side_cancelled": "Aquesta comanda s'ha cancel·lat.",
        "estimated_delivery": "Lliurament previst",
        "delivered_on": "Lliurada el",
        "shipment": "Enviament",
        "carrier": "Empresa de transport",
        "tracking_number": "Número de seguiment",
        "carrier_link": "Segueix-la al web de l'empresa de transport",
        "shipping_to": "Lliurament a",
        "items": "Articles",
        "total": "Total",
        "history": "Historial",
        "no_history": "Encara no hi ha res.",
        "entry_delay": "Retard",
        "entry_estimate": "Data de lliurament prevista actualitzada",
        "updated": "Última actualització: {date}",
        "private_link": "Aquesta pàgina és només per a tu: no en comparteixis l'enllaç.",
        "not_found_title": "No s'ha trobat la pàgina de seguiment",
        "not_found_text": "Aquest enllaç de seguiment no és vàlid o se n'ha creat un de més nou. "
        "Consulta el correu més recent sobre la teva comanda o cerca-la a continuació.",
        "lookup_title": "Troba la teva comanda",
        "lookup_text": "Has perdut l'enllaç de seguiment? "
        "Escriu el número de comanda i el correu electrònic amb què la vas fer.",
        "order_number": "Número de comanda",
        "email": "Correu electrònic",
        "submit": "Cerca la meva comanda",
        "lookup_failed": "No hem trobat cap comanda amb aquestes dades.",
        "too_many": "Massa intents. Torna-ho a provar d'aquí a {minutes} minuts.",
        "times_in": "Hores segons l'horari de {zone}.",
    },
    "ko": {
        "title": "주문 {order_id}",
        "heading": "주문 {order_id}",
        "progress": "진행 상황",
        "delayed_title": "배송이 지연되고 있습니다",
        "new_date": "변경된 도착 예정일: {date}",
        "delay_ship_by": "기한 내에 택배사에 전달되지 못했습니다.",
        "delay_estimate_moved": "택배사의 배송 예정일이 뒤로 변경되었습니다.",
        "delay_estimate_passed": "배송 예정일이 지났습니다.",
        "side_exception": "택배사에서 상품 배송 중 문제가 발생했다고 알려 왔습니다. "
        "그래도 정상적으로 배송될 수 있습니다.",
        "side_delivery_failed": "택배사에서 상품을 배송하지 못했습니다. 다시 배송을 시도할 수 있습니다.",
        "side_available_for_pickup": "상품을 수령 장소에서 찾아가실 수 있습니다.",
        "side_lost": "한동안 택배사에서 상품 위치가 확인되지 않고 있습니다. 저희가 확인하고 있습니다.",
        "side_returned": "상품이 저희에게 반송되었습니다.",
        "side_cancelled": "이 주문은 취소되었습니다.",
        "estimated_delivery": "도착 예정일",
        "delivered_on": "배송 완료일",
        "shipment": "배송 정보",
        "carrier": "택배사",
        "tracking_number": "운송장 번호",
        "carrier_link": "택배사 웹사이트에서 조회하기",
        "shipping_to": "배송지",
        "items": "주문 상품",
        "total": "합계",
        "history": "상세 내역",
        "no_history": "아직 내역이 없습니다.",
        "entry_delay": "배송 지연",
        "entry_estimate": "도착 예정일 변경",
        "updated": "최근 업데이트: {date}",
        "private_link": "이 페이지는 고객님만 보실 수 있습니다. 링크를 다른 사람과 공유하지 마세요.",
        "not_found_title": "배송 조회 페이지를 찾을 수 없습니다",
        "not_found_text": "유효하지 않은 배송 조회 링크이거나 새 링크로 바뀌었습니다. "
        "주문 관련 최신 메일을 확인하시거나 아래에서 주문을 찾아 주세요.",
        "lookup_title": "주문 찾기",
        "lookup_text": "배송 조회 링크를 잃어버리셨나요? "
        "주문 번호와 주문하실 때 사용한 이메일 주소를 입력해 주세요.",
        "order_number": "주문 번호",
        "email": "이메일",
        "submit": "주문 조회하기",
        "lookup_failed": "입력하신 정보와 일치하는 주문을 찾을 수 없습니다.",
        "too_many": "시도 횟수가 너무 많습니다. {minutes}분 후에 다시 시도해 주세요.",
        "times_in": "시간은 {zone} 기준입니다.",
    },
}

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
        return cls(resolve_locale(locale_tag), zone, (name or "UTC").split("/")[-1].replace("_", " "))

    def __call__(self, key: str, **values: object) -> str:
        text = _TEXT[self.locale].get(key) or _TEXT[DEFAULT_LOCALE][key]
        return text.format(**values) if values else text

    def status(self, status: OrderStatus) -> str:
        return _STATUS[self.locale].get(status) or _STATUS[DEFAULT_LOCALE][status]

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

    def delay_text(self, kind: str | None, reason: str | None) -> str | None:
        """Why the order is late in the customer's words, from the delay's kind (a `DelayKind`)."""
        texts = {
            DelayKind.SHIP_BY.value: "delay_ship_by",
            DelayKind.ESTIMATE_MOVED.value: "delay_estimate_moved",
            DelayKind.ESTIMATE_MISSED.value: "delay_estimate_passed",
        }
        key = texts.get(kind or "")
        return self(key) if key else reason  # an unknown kind: the English reason beats none
