"""The `send_notification` activity: one customer email, sent at most once per (order, kind, dedupe_key).

The store's claim row is the idempotency record: a message already `sent` is never sent again, and
a retry after a crash mid-send reuses the same Message-ID, so mail clients collapse a rare duplicate.
A permanent SMTP refusal ends the activity without retries; transient failures let Temporal retry.
"""

from collections.abc import Callable
from email.message import EmailMessage
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.names import SEND_NOTIFICATION
from ordertrack.domain.records import NotificationRequest
from ordertrack.mail.compose import compose_email, message_id_for
from ordertrack.mail.render import render_message
from ordertrack.mail.smtp import PermanentMailError, TransientMailError


class ClaimedNotification(Protocol):
    @property
    def status(self) -> str:
        """`sending`, `sent` or `failed`."""
        ...


class NotificationStore(Protocol):
    """The part of `ordertrack.store.repository.Store` this activity uses."""

    async def claim_notification(
        self, order_id: str, kind: str, dedupe_key: str, message_id: str, recipient: str
    ) -> ClaimedNotification: ...

    async def mark_notification_sent(
        self, order_id: str, kind: str, dedupe_key: str, server_reply: str
    ) -> None: ...

    async def mark_notification_failed(
        self, order_id: str, kind: str, dedupe_key: str, error: str
    ) -> None: ...


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> str: ...


class NotificationResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: str
    status: Literal["sent", "already_sent", "skipped"]
    server_reply: str | None = None


class NotifyActivities:
    """`carrier_url(carrier, tracking_number)` gives the carrier's own tracking page, or None."""

    def __init__(
        self,
        store: NotificationStore,
        mailer: Mailer,
        *,
        public_url: str,
        mail_from: str,
        carrier_url: Callable[[str, str], str | None],
    ) -> None:
        self._store = store
        self._mailer = mailer
        self._public_url = public_url
        self._mail_from = mail_from
        self._carrier_url = carrier_url

    @activity.defn(name=SEND_NOTIFICATION)
    async def send_notification(self, request: NotificationRequest) -> NotificationResult:
        order, kind, key = request.order, request.kind.value, request.dedupe_key
        message_id = message_id_for(order.order_id, kind, key, self._mail_from)
        log = activity.logger
        if not order.notify.email:
            log.info("email skipped (customer opted out): order %s, %s, %s", order.order_id, kind, message_id)
            return NotificationResult(message_id=message_id, status="skipped")

        row = await self._store.claim_notification(
            order.order_id, kind, key, message_id, order.customer.email
        )
        if row.status == "sent":
            log.info("email already sent: order %s, %s, %s", order.order_id, kind, message_id)
            return NotificationResult(message_id=message_id, status="already_sent")

        view = request.view
        carrier_link = (
            self._carrier_url(view.carrier, view.tracking_number)
            if view.carrier and view.tracking_number
            else None
        )
        rendered = render_message(request, public_url=self._public_url, carrier_url=carrier_link)
        message = compose_email(
            rendered,
            to_name=order.customer.name,
            to_email=order.customer.email,
            mail_from=self._mail_from,
            message_id=message_id,
        )
        try:
            reply = await self._mailer.send(message)
        except PermanentMailError as exc:
            await self._store.mark_notification_failed(order.order_id, kind, key, str(exc))
            log.warning("email rejected: order %s, %s, %s: %s", order.order_id, kind, message_id, exc)
            raise ApplicationError(
                f"{kind} email for order {order.order_id} rejected: {exc}",
                type="MailRejected",
                non_retryable=True,
            ) from exc
        except TransientMailError as exc:
            await self._store.mark_notification_failed(order.order_id, kind, key, str(exc))
            log.warning(
                "email failed, will retry: order %s, %s, %s: %s", order.order_id, kind, message_id, exc
            )
            raise
        await self._store.mark_notification_sent(order.order_id, kind, key, reply)
        log.info("email sent: order %s, %s, %s", order.order_id, kind, message_id)
        return NotificationResult(message_id=message_id, status="sent", server_reply=reply)
