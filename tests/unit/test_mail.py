"""Customer email: headers (safety, language, one-click unsubscribe), SMTP delivery through the local sink,
and the `send_notification` activity on the real store: at most once, suppressed after an unsubscribe."""

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import ordertrack
from activities.notify import NO_REVIEW_URL, NotificationResult, NotifyActivities
from ordertrack.carriers.registry import CarrierRegistry
from ordertrack.delivery import DeliveryUnknownError, PermanentDeliveryError, TransientDeliveryError
from ordertrack.domain.machine import on_fulfillment, on_start
from ordertrack.domain.messages import FulfillmentUpdate
from ordertrack.domain.models import Order
from ordertrack.domain.notices import MARKETING, Channel, MessageKind
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.records import NotificationRequest
from ordertrack.domain.statuses import FulfillmentEvent
from ordertrack.domain.view import order_view
from ordertrack.mail.compose import compose_email, message_id_for
from ordertrack.mail.render import MessageLinks, RenderedMessage, render_email
from ordertrack.mail.sink import MailSink
from ordertrack.mail.smtp import SmtpMailer
from ordertrack.settings import Settings
from ordertrack.sms.provider import SmsProvider
from ordertrack.store import Store
from ordertrack.templating import template_dirs
from tests.conftest import free_port
from tests.factories import order_data, sample_order
from tests.metering import MeteredEnvironment

NOW = datetime(2026, 11, 20, 14, 3, tzinfo=UTC)
TOKEN = "tok-" + "a" * 28
PUBLIC_URL = "https://track.example.com"
MAIL_FROM = "Shop <orders@shop.example.com>"
REVIEW_URL = "https://shop.example/orders/{order_id}/review"
CARRIER_LINK = "https://carrier.example.com/track?n=SIM-ONTIME-42&lang=en"
LINKS = MessageLinks(
    tracking_url=f"{PUBLIC_URL}/t/{TOKEN}",
    review_url=f"{PUBLIC_URL}/t/{TOKEN}",
    support_email="orders@shop.example.com",
    carrier_url=CARRIER_LINK,
)
DETAILS: dict[MessageKind, dict[str, str]] = {
    MessageKind.DELAYED: {"delay_kind": "estimate_moved", "new_date": "2026-11-26T00:00:00+00:00"},
    MessageKind.CANCELLED: {"cause": "shop"},
    MessageKind.OUT_FOR_DELIVERY: {"attempt": "1"},
    MessageKind.DELIVERY_FAILED: {"attempt": "1"},
}


def make_order(**customer: str) -> Order:
    return sample_order(customer={**order_data()["customer"], "locale": "en", **customer})


def make_request(
    kind: MessageKind,
    order: Order | None = None,
    dedupe_key: str = "key",
    channel: Channel = Channel.EMAIL,
) -> NotificationRequest:
    """A request from the real domain: started (confirmed), then shipped with a carrier estimate."""
    order = order or make_order()
    state = on_start(order, TimingPolicy(), NOW).state
    if kind != MessageKind.CONFIRMATION:
        shipped = FulfillmentUpdate(
            event=FulfillmentEvent.SHIPPED, carrier="simulated", tracking_number="SIM-ONTIME-42"
        )
        state = on_fulfillment(state, shipped, NOW).state
        state = state.model_copy(update={"estimated_delivery": datetime(2026, 11, 24, tzinfo=UTC)})
    view = order_view(order, state, TOKEN, timeline=False)
    return NotificationRequest(
        kind=kind,
        dedupe_key=dedupe_key,
        channel=channel,
        order=order,
        view=view,
        details=DETAILS.get(kind, {}),
    )


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[MailSink]:
    with MailSink(tmp_path / "mail", port=free_port(), reject_addresses={"gone@example.com"}) as running:
        yield running


@pytest.fixture
def mailer(sink: MailSink) -> SmtpMailer:
    return SmtpMailer(Settings(smtp_host=sink.host, smtp_port=sink.port, smtp_starttls=False))


def carrier_url(carrier: str, tracking_number: str) -> str:
    return f"https://carrier.example.com/{carrier}/{tracking_number}"


def activities(
    store: Store, mailer: SmtpMailer, *, sms: SmsProvider | None = None, review_url: str | None = REVIEW_URL
) -> NotifyActivities:
    return NotifyActivities(
        store,
        mailer,
        public_url=PUBLIC_URL + "/",
        mail_from=MAIL_FROM,
        carrier_url=carrier_url,
        carrier_name=CarrierRegistry().display_name,
        sms=sms,
        review_url=review_url,
    )


def compose(rendered: RenderedMessage, to_email: str = "ana@example.com", **headers: str) -> EmailMessage:
    return compose_email(
        rendered,
        to_name="Ana Souza",
        to_email=to_email,
        mail_from=MAIL_FROM,
        message_id="<x@y.z>",
        kind="shipped",
        **headers,
    )


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


# ---------------------------------------------------------------------------------------------
# Rendering, as far as sending relies on it


@pytest.mark.parametrize("kind", list(MessageKind))
def test_every_kind_renders_both_parts_with_the_tracking_link(kind: MessageKind) -> None:
    rendered = render_email(make_request(kind), LINKS)
    assert rendered.subject and "\n" not in rendered.subject and "1001" in rendered.subject
    assert LINKS.tracking_url in rendered.text and f'href="{LINKS.tracking_url}"' in rendered.html
    assert rendered.locale == "en"


def test_html_escapes_the_customer_name() -> None:
    rendered = render_email(
        make_request(MessageKind.CONFIRMATION, make_order(name="<script>x</script>")), LINKS
    )
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html


def test_templates_are_found_through_the_namespace_package_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    beside = Path(ordertrack.__file__).resolve().parent.parent / "templates"
    assert template_dirs() == [str(beside)]
    monkeypatch.setattr(ordertrack, "__file__", str(tmp_path / "ordertrack" / "__init__.py"))
    assert str(beside) in template_dirs()


# ---------------------------------------------------------------------------------------------
# Composing


def test_message_id_is_stable_unchanged_by_channels_and_uses_the_sender_domain() -> None:
    first = message_id_for("1001", "shipped", "shipped:SIM-1", MAIL_FROM)
    assert first == message_id_for("1001", "shipped", "shipped:SIM-1", MAIL_FROM)
    assert first != message_id_for("1001", "shipped", "shipped:SIM-2", MAIL_FROM)
    # The Message-IDs of mail sent before SMS existed: retries of those orders keep the same id.
    before_channels = hashlib.sha256(b"1001|shipped|shipped:SIM-1").hexdigest()[:32]
    assert first == f"<{before_channels}@shop.example.com>"


def test_a_crlf_name_or_subject_cannot_inject_a_header() -> None:
    rendered = RenderedMessage(
        subject="Hello\r\nBcc: evil@example.com", text="text", html="<p>html</p>", locale="en\r\nBcc: x@y.z"
    )
    message = compose_email(
        rendered,
        to_name="Eve\r\nBcc: evil@example.com",
        to_email="eve@example.com",
        mail_from=MAIL_FROM,
        message_id="<id@shop.example.com>",
        kind="review_request",
        unsubscribe_url="https://t.example/unsubscribe/x>\r\nBcc: evil@example.com",
    )
    assert "Bcc" not in message
    raw = message.as_bytes()
    assert not any(line.lower().startswith(b"bcc:") for line in raw.splitlines())
    assert raw.count(b"\nTo:") + raw.startswith(b"To:") == 1
    to_line = next(line for line in raw.splitlines() if line.startswith(b"To:"))
    assert to_line.endswith(b"<eve@example.com>")
    assert message["To"].addresses[0].addr_spec == "eve@example.com"
    assert message["Subject"] == "Hello Bcc: evil@example.com"


def test_composed_message_is_text_then_html_in_its_language() -> None:
    rendered = render_email(make_request(MessageKind.DELIVERED, make_order(locale="pt-BR")), LINKS)
    message = compose(rendered)
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Message-ID"] == "<x@y.z>" and message["Date"]
    assert message["Content-Language"] == rendered.locale == "pt-BR"
    assert "List-Unsubscribe" not in message and "List-Unsubscribe-Post" not in message


def test_marketing_mail_carries_a_one_click_unsubscribe() -> None:
    url = f"{PUBLIC_URL}/unsubscribe/tok123"
    message = compose(render_email(make_request(MessageKind.REVIEW_REQUEST), LINKS), unsubscribe_url=url)
    assert message["List-Unsubscribe"] == f"<{url}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


# ---------------------------------------------------------------------------------------------
# SMTP and the sink


async def test_smtp_mailer_delivers_to_the_sink(sink: MailSink, mailer: SmtpMailer) -> None:
    message = compose(render_email(make_request(MessageKind.SHIPPED), LINKS))
    reply = await mailer.send(message)
    assert reply
    [received] = sink.messages
    assert received.get_content_type() == "multipart/alternative"
    text, html = received.iter_parts()
    assert "SIM-ONTIME-42" in text.get_content() and "SIM-ONTIME-42" in html.get_content()
    assert received["Message-ID"] == "<x@y.z>" and received["Subject"] == message["Subject"]
    assert len(list(sink.directory.glob("*.eml"))) == 1


async def test_before_data_runs_after_the_envelope_and_can_stop_the_send(
    sink: MailSink, mailer: SmtpMailer
) -> None:
    message = compose(render_email(make_request(MessageKind.DELIVERED), LINKS))
    calls: list[int] = []

    async def record() -> None:
        calls.append(len(sink.messages))

    async def crash() -> None:
        raise RuntimeError("store down")

    with pytest.raises(RuntimeError, match="store down"):
        await mailer.send(message, before_data=crash)
    assert sink.messages == []
    assert await mailer.send(message, before_data=record)
    assert calls == [0] and len(sink.messages) == 1
    [received] = sink.messages
    assert received["Message-ID"] == "<x@y.z>" and received["Date"] == message["Date"]
    assert "Bcc" not in received


async def test_a_refused_recipient_does_not_reach_before_data(sink: MailSink, mailer: SmtpMailer) -> None:
    message = compose(render_email(make_request(MessageKind.DELIVERED), LINKS), to_email="gone@example.com")
    calls: list[str] = []

    async def record() -> None:
        calls.append("before_data")

    with pytest.raises(PermanentDeliveryError, match="550") as raised:
        await mailer.send(message, before_data=record)
    assert raised.value.code == 550
    assert calls == [] and sink.messages == []


def test_mailer_refuses_starttls_on_the_implicit_tls_port() -> None:
    with pytest.raises(ValueError, match="implicit TLS"):
        SmtpMailer(Settings(smtp_port=465, smtp_starttls=True))


# ---------------------------------------------------------------------------------------------
# The activity on the real store


async def test_notification_is_sent_once(sink: MailSink, mailer: SmtpMailer, sqlite_store: Store) -> None:
    notify = activities(sqlite_store, mailer)
    request = make_request(MessageKind.SHIPPED, dedupe_key="shipped:SIM-ONTIME-42")
    env = ActivityEnvironment()

    first = await env.run(notify.send_notification, request)
    second = await env.run(notify.send_notification, request)

    assert first.status == "sent" and first.server_reply
    assert first.message_id == message_id_for("1001", "shipped", "shipped:SIM-ONTIME-42", MAIL_FROM)
    assert second == NotificationResult(message_id=first.message_id, status="already_sent")
    [received] = sink.messages
    assert received["Message-ID"] == first.message_id and received["Content-Language"] == "en"
    assert carrier_url("simulated", "SIM-ONTIME-42") in text_of(received)
    assert f"{PUBLIC_URL}/t/{TOKEN}" in text_of(received)
    assert "List-Unsubscribe" not in received
    [row] = await sqlite_store.list_notifications("1001")
    assert (row.channel, row.kind, row.status, row.recipient) == (
        "email",
        "shipped",
        "sent",
        "ana@example.com",
    )


async def test_a_permanent_refusal_is_not_retried(
    sink: MailSink, mailer: SmtpMailer, sqlite_store: Store
) -> None:
    request = make_request(MessageKind.CONFIRMATION, make_order(email="gone@example.com"))

    env = MeteredEnvironment()
    with pytest.raises(ApplicationError) as raised:
        await env.run(activities(sqlite_store, mailer).send_notification, request)

    assert raised.value.type == "MessageRejected" and raised.value.non_retryable
    [counted] = env.counted("ordertrack_messages_total")
    assert {k: counted[k] for k in ("channel", "kind", "outcome")} == {
        "channel": "email",
        "kind": "confirmation",
        "outcome": "refused",
    }
    message = str(raised.value)
    assert "confirmation" in message and "email" in message and "gone@example.com" in message
    assert "550" in message
    [row] = await sqlite_store.list_notifications("1001")
    assert row.status == "failed" and row.last_error and "550" in row.last_error
    assert sink.messages == []


async def test_an_unreachable_server_fails_the_row_and_a_retry_sends_once(
    sink: MailSink, mailer: SmtpMailer, sqlite_store: Store
) -> None:
    unreachable = SmtpMailer(Settings(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_timeout=5))
    env = ActivityEnvironment()
    request = make_request(MessageKind.DELIVERED)

    with pytest.raises(TransientDeliveryError):
        await env.run(activities(sqlite_store, unreachable).send_notification, request)
    [row] = await sqlite_store.list_notifications("1001")
    assert row.status == "failed"

    result = await env.run(activities(sqlite_store, mailer).send_notification, request)
    assert result.status == "sent" and len(sink.messages) == 1
    [row] = await sqlite_store.list_notifications("1001")
    assert (row.status, row.attempts) == ("sent", 2)


async def test_links_come_from_the_settings(sink: MailSink, mailer: SmtpMailer, sqlite_store: Store) -> None:
    notify = activities(sqlite_store, mailer, review_url=REVIEW_URL)
    await ActivityEnvironment().run(notify.send_notification, make_request(MessageKind.REVIEW_REQUEST))
    [received] = sink.messages
    assert "https://shop.example/orders/1001/review" in text_of(received)
    assert "orders@shop.example.com" in text_of(received)  # support address: MAIL_FROM's by default


async def test_without_a_review_url_no_review_request_is_sent(
    sink: MailSink, mailer: SmtpMailer, sqlite_store: Store
) -> None:
    notify, env = activities(sqlite_store, mailer, review_url=None), ActivityEnvironment()
    result = await env.run(notify.send_notification, make_request(MessageKind.REVIEW_REQUEST))
    again = await env.run(notify.send_notification, make_request(MessageKind.REVIEW_REQUEST))
    delivered = await env.run(notify.send_notification, make_request(MessageKind.DELIVERED))

    assert (result.status, again.status, delivered.status) == ("suppressed", "suppressed", "sent")
    assert result.server_reply == NO_REVIEW_URL and again.server_reply is None  # said once, for the timeline
    assert [message["X-Ordertrack-Message"] for message in sink.messages] == ["delivered"]
    rows = {row.kind: row for row in await sqlite_store.list_notifications("1001")}
    assert rows["review_request"].status == "suppressed" and rows["review_request"].sent_at is None


async def test_marketing_mail_carries_the_addresses_unsubscribe_link(
    sink: MailSink, mailer: SmtpMailer, sqlite_store: Store
) -> None:
    assert MessageKind.REVIEW_REQUEST in MARKETING
    await ActivityEnvironment().run(
        activities(sqlite_store, mailer).send_notification, make_request(MessageKind.REVIEW_REQUEST)
    )
    token = await sqlite_store.unsubscribe_token_for("ana@example.com")
    [received] = sink.messages
    # The link names the customer's language, so the page speaks it.
    link = f"{PUBLIC_URL}/unsubscribe/{token}?lang=en"
    assert received["List-Unsubscribe"].strip() == f"<{link}>"  # may be folded
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link in text_of(received)


async def test_marketing_mail_to_an_unsubscribed_address_is_suppressed(
    sink: MailSink, mailer: SmtpMailer, sqlite_store: Store
) -> None:
    assert await sqlite_store.unsubscribe(await sqlite_store.unsubscribe_token_for("Ana@Example.com"))
    notify, env = activities(sqlite_store, mailer), ActivityEnvironment()

    review = await env.run(notify.send_notification, make_request(MessageKind.REVIEW_REQUEST))
    again = await env.run(notify.send_notification, make_request(MessageKind.REVIEW_REQUEST))
    delivered = await env.run(notify.send_notification, make_request(MessageKind.DELIVERED))

    assert (review.status, again.status, delivered.status) == ("suppressed", "suppressed", "sent")
    assert [message["Subject"] for message in sink.messages] == [
        render_email(make_request(MessageKind.DELIVERED), LINKS).subject
    ]
    rows = {row.kind: row for row in await sqlite_store.list_notifications("1001")}
    assert (rows["review_request"].status, rows["review_request"].attempts) == ("suppressed", 1)
    assert rows["review_request"].sent_at is None


async def test_a_request_for_another_channel_is_refused(mailer: SmtpMailer, sqlite_store: Store) -> None:
    request = make_request(MessageKind.SHIPPED, channel=Channel.SMS)
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(activities(sqlite_store, mailer).send_notification, request)
    assert raised.value.type == "WrongChannel" and raised.value.non_retryable
    assert await sqlite_store.list_notifications("1001") == []


# ---------------------------------------------------------------------------------------------
# At most once across a crash


class WorkerKilledAfterAccept:
    """The real mailer, except that the worker dies right after the server accepted the message,
    before the row said so."""

    def __init__(self, mailer: SmtpMailer) -> None:
        self._mailer = mailer

    async def send(
        self, message: EmailMessage, before_data: Callable[[], Awaitable[None]] | None = None
    ) -> str:
        await self._mailer.send(message, before_data)
        raise RuntimeError("worker killed")


class FlakyHandler:
    """An SMTP server that defers the first RCPT (451) or, with `hang_after_data`, takes the first
    message and then never answers DATA, as a connection lost at the worst moment would."""

    def __init__(self, *, defer_first_rcpt: bool = False, hang_after_data: bool = False) -> None:
        self.defer_first_rcpt = defer_first_rcpt
        self.hang_after_data = hang_after_data
        self.received: list[bytes] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.defer_first_rcpt:
            self.defer_first_rcpt = False
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope.original_content or b"")
        if self.hang_after_data:
            self.hang_after_data = False
            await asyncio.sleep(2)
        return "250 Message accepted for delivery"


def flaky_server(handler: FlakyHandler, timeout: float = 5) -> tuple[Controller, SmtpMailer]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, SmtpMailer(Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_timeout=timeout))


async def test_a_worker_killed_after_the_server_accepted_never_sends_twice(
    sink: MailSink, mailer: SmtpMailer, sqlite_store: Store
) -> None:
    request = make_request(MessageKind.SHIPPED, dedupe_key="shipped:SIM-ONTIME-42")
    env = ActivityEnvironment()

    killed = NotifyActivities(
        sqlite_store,
        WorkerKilledAfterAccept(mailer),
        public_url=PUBLIC_URL,
        mail_from=MAIL_FROM,
        carrier_url=carrier_url,
        carrier_name=CarrierRegistry().display_name,
    )
    with pytest.raises(RuntimeError, match="worker killed"):
        await env.run(killed.send_notification, request)
    [row] = await sqlite_store.list_notifications("1001")
    assert row.status == "delivering" and len(sink.messages) == 1

    notify = activities(sqlite_store, mailer)
    retried = await env.run(notify.send_notification, request)
    again = await env.run(notify.send_notification, request)

    note = "attempt 1 stopped during the hand-over; not resent to avoid a duplicate"
    assert (retried.status, retried.message_id) == ("unconfirmed", sink.messages[0]["Message-ID"])
    assert again.status == "unconfirmed"
    assert len(sink.messages) == 1
    [row] = await sqlite_store.list_notifications("1001")
    assert (row.status, row.server_reply, row.attempts) == ("unconfirmed", note, 1)
    assert row.sent_at is not None


async def test_a_lost_reply_to_data_is_unconfirmed_and_not_resent(sqlite_store: Store) -> None:
    handler = FlakyHandler(hang_after_data=True)
    controller, mailer = flaky_server(handler, timeout=0.5)
    try:
        notify = activities(sqlite_store, mailer)
        env = MeteredEnvironment()
        request = make_request(MessageKind.DELIVERED)
        first = await env.run(notify.send_notification, request)
        second = await env.run(notify.send_notification, request)
    finally:
        controller.stop()
    assert (first.status, second.status) == ("unconfirmed", "unconfirmed")
    # Counted when it became unconfirmed, not again when the retry found it so.
    assert [c["outcome"] for c in env.counted("ordertrack_messages_total")] == ["unconfirmed"]
    assert len(handler.received) == 1
    [row] = await sqlite_store.list_notifications("1001")
    assert row.status == "unconfirmed" and row.server_reply and "SMTPReadTimeoutError" in row.server_reply


async def test_a_deferred_recipient_fails_the_row_and_a_retry_sends_once(sqlite_store: Store) -> None:
    handler = FlakyHandler(defer_first_rcpt=True)
    controller, mailer = flaky_server(handler)
    try:
        notify = activities(sqlite_store, mailer)
        env = ActivityEnvironment()
        request = make_request(MessageKind.DELIVERED)
        with pytest.raises(TransientDeliveryError, match="451") as raised:
            await env.run(notify.send_notification, request)
        assert not isinstance(raised.value, DeliveryUnknownError)  # refused before DATA: safe to retry
        [row] = await sqlite_store.list_notifications("1001")
        assert (row.status, row.attempts) == ("failed", 1) and handler.received == []
        result = await env.run(notify.send_notification, request)
    finally:
        controller.stop()
    assert result.status == "sent" and len(handler.received) == 1
    [row] = await sqlite_store.list_notifications("1001")
    assert (row.status, row.attempts) == ("sent", 2)
