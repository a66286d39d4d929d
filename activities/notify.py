"""The `send_notification` activity: one customer email, sent at most once per (order, kind, dedupe_key).

The store's notification row is the idempotency record, written in two phases around SMTP DATA:

1. `claim_notification` makes the row `sending`. Until DATA nothing has been handed over, so an
   attempt that dies here (or whose server refuses the sender or recipient, or whose connection
   fails) is safe to retry: a refusal or connection failure is recorded as `failed`, and the next
   claim makes it `sending` again.
2. Right before DATA the mailer calls back and the row becomes `delivering`. If the server accepts,
   the row becomes `sent` and is never sent again. If the worker dies after that point, nobody can
   know whether the server got the end of DATA, so the next attempt finds `delivering` and does NOT
   resend: it records `unconfirmed`, logs a warning and returns `unconfirmed`. The same goes for a
   connection lost or timed out during DATA without a reply (`DeliveryUnknownError`).

The trade-off is deliberate: "a retried activity or a worker killed mid-send never sends twice".
A crash in the few milliseconds between marking `delivering` and the server receiving the end of
DATA loses that one email instead of duplicating it; ops see it as `unconfirmed` (the note says
which attempt stopped) and can check the mail server's log or resend by hand. A crash after the
server accepted but before `sent` was recorded - the common case - is also `unconfirmed`, and
there the customer did get the email exactly once. The stable Message-ID still lets mail clients
collapse a duplicate should one ever get through.

A permanent SMTP refusal ends the activity without retries; transient failures let Temporal retry.
"""

from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.names import SEND_NOTIFICATION
from ordertrack.domain.records import NotificationRequest
from ordertrack.mail.compose import compose_email, message_id_for
from ordertrack.mail.render import render_message
from ordertrack.mail.smtp import DeliveryUnknownError, PermanentMailError, TransientMailError


class ClaimedNotification(Protocol):
    @property
    def status(self) -> str:
        """`sending`, `delivering`, `sent`, `unconfirmed` or `failed`."""
        ...

    @property
    def attempts(self) -> int:
        """How many attempts claimed it (the one that left it `delivering`, when it is)."""
        ...


class NotificationStore(Protocol):
    """The part of `ordertrack.store.repository.Store` this activity uses."""

    async def claim_notification(
        self, order_id: str, kind: str, dedupe_key: str, message_id: str, recipient: str
    ) -> ClaimedNotification: ...

    async def mark_notification_delivering(self, order_id: str, kind: str, dedupe_key: str) -> None: ...

    async def mark_notification_unconfirmed(
        self, order_id: str, kind: str, dedupe_key: str, note: str
    ) -> None: ...

    async def mark_notification_sent(
        self, order_id: str, kind: str, dedupe_key: str, server_reply: str
    ) -> None: ...

    async def mark_notification_failed(
        self, order_id: str, kind: str, dedupe_key: str, error: str
    ) -> None: ...


class Mailer(Protocol):
    async def send(
        self, message: EmailMessage, before_data: Callable[[], Awaitable[None]] | None = None
    ) -> str: ...


class NotificationResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: str
    status: Literal["sent", "already_sent", "skipped", "unconfirmed"]
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
        if row.status == "delivering":
            note = f"attempt {row.attempts} stopped during SMTP DATA; not resent to avoid a duplicate"
            return await self._unconfirmed(request, message_id, note)
        if row.status == "unconfirmed":
            log.info(
                "email unconfirmed earlier, not resent: order %s, %s, %s", order.order_id, kind, message_id
            )
            return NotificationResult(message_id=message_id, status="unconfirmed")

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

        async def before_data() -> None:
            await self._store.mark_notification_delivering(order.order_id, kind, key)

        try:
            reply = await self._mailer.send(message, before_data=before_data)
        except DeliveryUnknownError as exc:
            note = f"attempt {row.attempts}: {exc}; not resent to avoid a duplicate"
            return await self._unconfirmed(request, message_id, note)
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

    async def _unconfirmed(
        self, request: NotificationRequest, message_id: str, note: str
    ) -> NotificationResult:
        """The server may or may not have the message: record that for ops rather than risk a second."""
        order_id, kind = request.order.order_id, request.kind.value
        await self._store.mark_notification_unconfirmed(order_id, kind, request.dedupe_key, note)
        activity.logger.warning(
            "email unconfirmed, check the mail server's log: order %s, %s, %s: %s",
            order_id,
            kind,
            message_id,
            note,
        )
        return NotificationResult(message_id=message_id, status="unconfirmed", server_reply=note)
