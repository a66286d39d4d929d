"""The customer-message activities: `send_notification` (email), `send_sms` and `send_whatsapp`,
each message sent at most once per (order, channel, kind, dedupe_key).

Every channel goes through `deliver_once`, which keeps the store's notification row as the idempotency
record, written in two phases around the hand-over (SMTP DATA, the SMS API request):

1. `claim_notification` makes the row `sending`. Until the hand-over nothing has left, so an
   attempt that dies here (or whose provider refuses it, or cannot be reached) is safe to retry: a
   refusal or connection failure is recorded as `failed`, and the next claim makes it `sending` again.
2. Right before the hand-over the sender calls back and the row becomes `delivering`. If the
   provider accepts, the row becomes `sent` and is never sent again. If the worker dies after that
   point, nobody can know whether the provider got the message, so the next attempt finds
   `delivering` and does NOT resend: it records `unconfirmed`, logs a warning and returns
   `unconfirmed`. The same goes for a connection lost or timed out after the hand-over began
   without an answer (`DeliveryUnknownError`).

The trade-off is deliberate: "a retried activity or a worker killed mid-send never sends twice".
A crash in the few milliseconds between marking `delivering` and the provider receiving the message
loses that one message instead of duplicating it; ops see it as `unconfirmed` (the note says which
attempt stopped) and can check the provider's log or resend by hand. A crash after the provider
accepted but before `sent` was recorded - the common case - is also `unconfirmed`, and there the
customer did get the message exactly once. An email's stable Message-ID still lets mail clients
collapse a duplicate should one ever get through.

Marketing mail (`MARKETING`) carries a one-click unsubscribe link and is not sent to an address that
used one: its row is recorded as `suppressed`. So is the review request of a shop without a review
page (no `REVIEW_URL`): it is decided here, at send time, where the setting is read; the workflow
records the suppression on the order's timeline. A permanent refusal ends the activity without
retries (`MessageRejected`, with what was refused and why, for the order's timeline); transient
failures let Temporal retry.
"""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import quote

from temporalio import activity
from temporalio.exceptions import ApplicationError

from ordertrack.contact import support_address
from ordertrack.counters import MESSAGES, activity_meter
from ordertrack.delivery import (
    DeliveryUnknownError,
    PermanentDeliveryError,
    TransientDeliveryError,
    message_digest,
)
from ordertrack.domain.notices import MARKETING, Channel, MessageKind
from ordertrack.domain.records import NotificationRequest, NotificationResult
from ordertrack.mail.compose import compose_email, message_id_for
from ordertrack.mail.render import MessageLinks, render_email, render_sms, render_whatsapp
from ordertrack.names import (
    MESSAGE_REJECTED_ERROR,
    SEND_NOTIFICATION,
    SEND_SMS,
    SEND_WHATSAPP,
    SMS_NOT_CONFIGURED_ERROR,
    WHATSAPP_NOT_CONFIGURED_ERROR,
)
from ordertrack.sms.provider import SmsProvider
from ordertrack.sms.twilio import Template, whatsapp_address
from ordertrack.store.repository import NotificationKey
from ordertrack.tracking_link import tracking_url

SMS_NOT_CONFIGURED = (
    "SMS is not configured (set ORDERTRACK_SMS_ACCOUNT_SID, ORDERTRACK_SMS_AUTH_TOKEN and "
    "ORDERTRACK_SMS_FROM)"
)
WHATSAPP_NOT_CONFIGURED = (
    "WhatsApp is not configured (set ORDERTRACK_WHATSAPP_FROM beside the ORDERTRACK_SMS_ACCOUNT_SID and "
    "ORDERTRACK_SMS_AUTH_TOKEN of the Twilio account)"
)
NO_REVIEW_URL = "no review page is configured (ORDERTRACK_REVIEW_URL), so no review request is sent"

BeforeSend = Callable[[], Awaitable[None]]


class ClaimedNotification(Protocol):
    @property
    def status(self) -> str:
        """`sending`, `delivering`, `sent`, `unconfirmed`, `failed` or `suppressed`."""
        ...

    @property
    def attempts(self) -> int:
        """How many attempts claimed it (the one that left it `delivering`, when it is)."""
        ...


class NotificationStore(Protocol):
    """The part of `ordertrack.store.repository.Store` these activities use."""

    async def claim_notification(
        self, key: NotificationKey, message_id: str, recipient: str
    ) -> ClaimedNotification: ...

    async def mark_notification_delivering(self, key: NotificationKey) -> None: ...

    async def mark_notification_unconfirmed(self, key: NotificationKey, note: str) -> None: ...

    async def mark_notification_sent(self, key: NotificationKey, server_reply: str) -> None: ...

    async def mark_notification_failed(self, key: NotificationKey, error: str) -> None: ...

    async def mark_notification_suppressed(self, key: NotificationKey, note: str) -> None: ...

    async def unsubscribe_token_for(self, email: str) -> str: ...

    async def is_unsubscribed(self, email: str) -> bool: ...


class Mailer(Protocol):
    async def send(self, message: EmailMessage, before_data: BeforeSend | None = None) -> str: ...


@dataclass(frozen=True)
class Outgoing:
    """One message about to be delivered once: what the log records, and how to hand it over."""

    key: NotificationKey
    message_id: str
    recipient: str
    send: Callable[[BeforeSend], Awaitable[str]]  # returns the provider's reply
    suppressed_because: str | None = None  # set: record `suppressed` instead of sending


async def deliver_once(store: NotificationStore, outgoing: Outgoing) -> NotificationResult:
    """Claim the message's row, then send it unless an earlier attempt may already have; see the module."""
    key, message_id, log = outgoing.key, outgoing.message_id, activity.logger
    row = await store.claim_notification(key, message_id, outgoing.recipient)
    if row.status == "sent":
        log.info("already sent: %s, %s", key, message_id)
        return NotificationResult(message_id=message_id, status="already_sent")
    if row.status == "suppressed":
        log.info("suppressed earlier, not sent: %s, %s", key, message_id)
        return NotificationResult(message_id=message_id, status="suppressed")
    if row.status == "delivering":
        note = f"attempt {row.attempts} stopped during the hand-over; not resent to avoid a duplicate"
        return await _unconfirmed(store, key, message_id, note)
    if row.status == "unconfirmed":
        log.info("unconfirmed earlier, not resent: %s, %s", key, message_id)
        return NotificationResult(message_id=message_id, status="unconfirmed")
    if outgoing.suppressed_because is not None:
        await store.mark_notification_suppressed(key, outgoing.suppressed_because)
        log.info("not sent (%s): %s, %s", outgoing.suppressed_because, key, message_id)
        return NotificationResult(
            message_id=message_id, status="suppressed", server_reply=outgoing.suppressed_because
        )

    async def before_send() -> None:
        await store.mark_notification_delivering(key)

    try:
        reply = await outgoing.send(before_send)
    except DeliveryUnknownError as exc:
        note = f"attempt {row.attempts}: {exc}; not resent to avoid a duplicate"
        return await _unconfirmed(store, key, message_id, note)
    except PermanentDeliveryError as exc:
        await store.mark_notification_failed(key, str(exc))
        log.warning("rejected: %s, %s: %s", key, message_id, exc)
        _count(key, "refused")
        raise ApplicationError(
            f"{key.kind} {key.channel} to {outgoing.recipient} for order {key.order_id} rejected: {exc}",
            type=MESSAGE_REJECTED_ERROR,
            non_retryable=True,
        ) from exc
    except TransientDeliveryError as exc:
        await store.mark_notification_failed(key, str(exc))
        log.warning("failed, will retry: %s, %s: %s", key, message_id, exc)
        raise
    await store.mark_notification_sent(key, reply)
    log.info("sent: %s, %s", key, message_id)
    _count(key, "sent")
    return NotificationResult(message_id=message_id, status="sent", server_reply=reply)


async def _unconfirmed(
    store: NotificationStore, key: NotificationKey, message_id: str, note: str
) -> NotificationResult:
    """The provider may or may not have the message: record that for ops rather than risk a second."""
    await store.mark_notification_unconfirmed(key, note)
    activity.logger.warning("unconfirmed, check the provider's log: %s, %s: %s", key, message_id, note)
    _count(key, "unconfirmed")
    return NotificationResult(message_id=message_id, status="unconfirmed", server_reply=note)


def _count(key: NotificationKey, outcome: str) -> None:
    MESSAGES.add(activity_meter(), channel=key.channel, kind=key.kind, outcome=outcome)


class NotifyActivities:
    """`carrier_url(carrier, tracking_number)` gives the carrier's own tracking page, or None;
    `carrier_name(carrier)` the name customers know it by.

    `support_email` defaults to MAIL_FROM's address; without `review_url` (with `{order_id}`) no
    review request is sent; without `sms`, `send_sms` fails for good with what to configure, and so
    does `send_whatsapp` without `whatsapp` or a template in `whatsapp_templates` for the message.
    """

    def __init__(
        self,
        store: NotificationStore,
        mailer: Mailer,
        *,
        public_url: str,
        mail_from: str,
        carrier_url: Callable[[str, str], str | None],
        carrier_name: Callable[[str], str],
        sms: SmsProvider | None = None,
        whatsapp: SmsProvider | None = None,
        whatsapp_templates: Mapping[str, Mapping[str, str]] | None = None,
        support_email: str | None = None,
        review_url: str | None = None,
    ) -> None:
        self._store = store
        self._mailer = mailer
        self._public_url = public_url.rstrip("/")
        self._mail_from = mail_from
        self._carrier_url = carrier_url
        self._carrier_name = carrier_name
        self._sms = sms
        self._whatsapp = whatsapp
        self._whatsapp_templates = whatsapp_templates or {}
        self._support_email = support_address(support_email, mail_from)
        self._review_url = review_url

    @activity.defn(name=SEND_NOTIFICATION)
    async def send_notification(self, request: NotificationRequest) -> NotificationResult:
        key = _key(request, Channel.EMAIL)
        order = request.order
        to_email = order.customer.email
        suppressed_because: str | None = None
        unsubscribe_url: str | None = None
        if request.kind == MessageKind.REVIEW_REQUEST and self._review_url is None:
            suppressed_because = NO_REVIEW_URL
        elif request.kind in MARKETING:
            if await self._store.is_unsubscribed(to_email):
                suppressed_because = "the recipient unsubscribed from marketing email"
            else:
                token = await self._store.unsubscribe_token_for(to_email)
                unsubscribe_url = (
                    f"{self._public_url}/unsubscribe/{quote(token, safe='')}"
                    f"?lang={quote(order.customer.locale, safe='')}"  # the page in the email's language
                )
        links = self._links(request, unsubscribe_url)
        message_id = message_id_for(order.order_id, key.kind, key.dedupe_key, self._mail_from)

        async def send(before_send: BeforeSend) -> str:
            message = compose_email(
                render_email(request, links),
                to_name=order.customer.name,
                to_email=to_email,
                mail_from=self._mail_from,
                message_id=message_id,
                kind=request.kind.value,
                unsubscribe_url=unsubscribe_url,
            )
            return await self._mailer.send(message, before_data=before_send)

        return await deliver_once(
            self._store, Outgoing(key, message_id, to_email, send, suppressed_because=suppressed_because)
        )

    @activity.defn(name=SEND_SMS)
    async def send_sms(self, request: NotificationRequest) -> NotificationResult:
        sms = self._sms
        if sms is None:
            raise ApplicationError(SMS_NOT_CONFIGURED, type=SMS_NOT_CONFIGURED_ERROR, non_retryable=True)
        phone = _phone(request, Channel.SMS)
        body = render_sms(request, self._links(request, None))
        return await self._text(request, Channel.SMS, sms, phone, body)

    @activity.defn(name=SEND_WHATSAPP)
    async def send_whatsapp(self, request: NotificationRequest) -> NotificationResult:
        whatsapp = self._whatsapp
        if whatsapp is None:
            raise ApplicationError(
                WHATSAPP_NOT_CONFIGURED, type=WHATSAPP_NOT_CONFIGURED_ERROR, non_retryable=True
            )
        phone = _phone(request, Channel.WHATSAPP)
        template = render_whatsapp(request, self._links(request, None), self._whatsapp_templates)
        if template is None:
            raise ApplicationError(
                f"{request.kind.value} whatsapp for order {request.order.order_id} not sent: no approved "
                f"template for {request.kind.value} in ORDERTRACK_WHATSAPP_TEMPLATES",
                type=WHATSAPP_NOT_CONFIGURED_ERROR,
                non_retryable=True,
            )
        return await self._text(request, Channel.WHATSAPP, whatsapp, whatsapp_address(phone), template)

    async def _text(
        self,
        request: NotificationRequest,
        channel: Channel,
        provider: SmsProvider,
        to: str,
        content: str | Template,
    ) -> NotificationResult:
        """One text to the customer's phone, at most once, as every message."""
        key = _key(request, channel)
        message_id = f"{channel.value}-{message_digest(key.order_id, key.channel, key.kind, key.dedupe_key)}"

        async def send(before_send: BeforeSend) -> str:
            return await provider.send(to, content, before_send)

        return await deliver_once(self._store, Outgoing(key, message_id, to, send))

    def _links(self, request: NotificationRequest, unsubscribe_url: str | None) -> MessageLinks:
        view, order_id = request.view, request.order.order_id
        tracking_page = tracking_url(self._public_url, view.tracking_token)
        review_url = self._review_url.format(order_id=quote(order_id, safe="")) if self._review_url else None
        carrier_link = (
            self._carrier_url(view.carrier, view.tracking_number)
            if view.carrier and view.tracking_number
            else None
        )
        return MessageLinks(
            tracking_url=tracking_page,
            review_url=review_url,
            support_email=self._support_email,
            carrier_url=carrier_link,
            carrier_name=self._carrier_name(view.carrier) if view.carrier else None,
            unsubscribe_url=unsubscribe_url,
        )


def _phone(request: NotificationRequest, channel: Channel) -> str:
    """The number a text goes to; without one the message is refused for good."""
    phone = request.order.customer.phone
    if not phone:
        raise ApplicationError(
            f"{request.kind.value} {channel.value} for order {request.order.order_id} not sent: "
            "the order has no phone number",
            type=MESSAGE_REJECTED_ERROR,
            non_retryable=True,
        )
    return phone


def _key(request: NotificationRequest, channel: Channel) -> NotificationKey:
    """The request's key, refusing one meant for another channel: its row would be the other's."""
    if request.channel != channel:
        raise ApplicationError(
            f"a {request.channel.value} request was sent to the {channel.value} activity",
            type="WrongChannel",
            non_retryable=True,
        )
    return NotificationKey(request.order.order_id, channel.value, request.kind.value, request.dedupe_key)
