"""Customer email: rendering, header safety, SMTP delivery through the local sink, idempotent sending."""

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import ordertrack
from activities.notify import NotificationResult, NotifyActivities
from ordertrack.domain.machine import MessageKind, on_fulfillment, on_start
from ordertrack.domain.messages import FulfillmentUpdate
from ordertrack.domain.models import Order
from ordertrack.domain.records import NotificationRequest
from ordertrack.domain.statuses import FulfillmentEvent
from ordertrack.domain.view import order_view
from ordertrack.mail.compose import compose_email, message_id_for
from ordertrack.mail.render import RenderedMessage, render_message, template_dirs
from ordertrack.mail.sink import MailSink
from ordertrack.mail.smtp import DeliveryUnknownError, PermanentMailError, SmtpMailer, TransientMailError
from ordertrack.settings import Settings
from ordertrack.store import Store, migrate
from tests.factories import order_data, sample_order

NOW = datetime(2026, 11, 20, 14, 3, tzinfo=UTC)
TOKEN = "tok-" + "a" * 28
PUBLIC_URL = "https://track.example.com"
MAIL_FROM = "Shop <orders@shop.example.com>"
CARRIER_LINK = "https://carrier.example.com/track?n=SIM-ONTIME-42&lang=en"
DETAILS: dict[MessageKind, dict[str, str]] = {
    MessageKind.DELAYED: {
        "reason": "The carrier moved the delivery",
        "new_date": "2026-11-26T00:00:00+00:00",
    },
    MessageKind.CANCELLED: {"reason": "out of stock"},
}


def make_order(**customer: str) -> Order:
    return sample_order(customer={**order_data()["customer"], **customer})


def make_request(
    kind: MessageKind, order: Order | None = None, dedupe_key: str = "key"
) -> NotificationRequest:
    """A request from the real domain: started (confirmed), then shipped with a carrier estimate."""
    order = order or make_order()
    state = on_start(order, NOW).state
    if kind != MessageKind.CONFIRMATION:
        shipped = FulfillmentUpdate(
            event=FulfillmentEvent.SHIPPED, carrier="simulated", tracking_number="SIM-ONTIME-42"
        )
        state = on_fulfillment(state, shipped, NOW).state
        state = state.model_copy(update={"estimated_delivery": datetime(2026, 11, 24, tzinfo=UTC)})
    view = order_view(order, state, TOKEN, timeline=False)
    return NotificationRequest(
        kind=kind, dedupe_key=dedupe_key, order=order, view=view, details=DETAILS.get(kind, {})
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[MailSink]:
    with MailSink(tmp_path / "mail", port=free_port(), reject_addresses={"gone@example.com"}) as running:
        yield running


@pytest.fixture
def mailer(sink: MailSink) -> SmtpMailer:
    return SmtpMailer(Settings(smtp_host=sink.host, smtp_port=sink.port, smtp_starttls=False))


@dataclass
class Row:
    status: str
    message_id: str
    recipient: str
    attempts: int = 1
    error: str | None = None
    server_reply: str | None = None


@dataclass
class MemoryStore:
    """Implements the activity's NotificationStore protocol in memory."""

    rows: dict[tuple[str, str, str], Row] = field(default_factory=dict)

    async def claim_notification(
        self, order_id: str, kind: str, dedupe_key: str, message_id: str, recipient: str
    ) -> Row:
        row = self.rows.get((order_id, kind, dedupe_key))
        if row is None:
            row = self.rows[order_id, kind, dedupe_key] = Row("sending", message_id, recipient)
        elif row.status in ("sending", "failed"):
            row.status, row.attempts = "sending", row.attempts + 1
        return row

    async def mark_notification_delivering(self, order_id: str, kind: str, dedupe_key: str) -> None:
        row = self.rows[order_id, kind, dedupe_key]
        assert row.status == "sending"
        row.status = "delivering"

    async def mark_notification_unconfirmed(
        self, order_id: str, kind: str, dedupe_key: str, note: str
    ) -> None:
        row = self.rows[order_id, kind, dedupe_key]
        row.status, row.server_reply = "unconfirmed", note

    async def mark_notification_sent(
        self, order_id: str, kind: str, dedupe_key: str, server_reply: str
    ) -> None:
        row = self.rows[order_id, kind, dedupe_key]
        row.status, row.server_reply = "sent", server_reply

    async def mark_notification_failed(self, order_id: str, kind: str, dedupe_key: str, error: str) -> None:
        row = self.rows[order_id, kind, dedupe_key]
        row.status, row.error = "failed", error


def carrier_url(carrier: str, tracking_number: str) -> str:
    return f"https://carrier.example.com/{carrier}/{tracking_number}"


def activities(store: MemoryStore | Store, mailer: SmtpMailer) -> NotifyActivities:
    return NotifyActivities(
        store, mailer, public_url=PUBLIC_URL, mail_from=MAIL_FROM, carrier_url=carrier_url
    )


# ---------------------------------------------------------------------------------------------
# Rendering


@pytest.mark.parametrize("kind", list(MessageKind))
def test_every_kind_renders_both_parts_with_the_tracking_link(kind: MessageKind) -> None:
    rendered = render_message(make_request(kind), public_url=PUBLIC_URL + "/", carrier_url=CARRIER_LINK)
    link = f"{PUBLIC_URL}/t/{TOKEN}"
    assert rendered.subject and "\n" not in rendered.subject and "1001" in rendered.subject
    assert rendered.text.strip() and rendered.html.strip()
    assert link in rendered.text and f'href="{link}"' in rendered.html
    assert "Hi Ana," in rendered.text and "Hi Ana," in rendered.html
    assert f"<title>{rendered.subject}</title>" in rendered.html
    assert "max-width:600px" in rendered.html


def test_confirmation_lists_items_and_total_with_currency() -> None:
    rendered = render_message(make_request(MessageKind.CONFIRMATION), public_url=PUBLIC_URL, carrier_url=None)
    assert "2 x T-shirt M: BRL 79.80" in rendered.text
    assert "Total: BRL 79.80" in rendered.text
    assert "2 &times; T-shirt M" in rendered.html


def test_shipped_names_the_tracking_number_carrier_link_and_estimate() -> None:
    rendered = render_message(
        make_request(MessageKind.SHIPPED), public_url=PUBLIC_URL, carrier_url=CARRIER_LINK
    )
    for part in (rendered.text, rendered.html):
        assert "SIM-ONTIME-42" in part and "simulated" in part and "Tue 24 Nov 2026" in part
    assert CARRIER_LINK in rendered.text
    assert 'href="https://carrier.example.com/track?n=SIM-ONTIME-42&amp;lang=en"' in rendered.html


def test_shipped_without_a_carrier_link_leaves_it_out() -> None:
    rendered = render_message(make_request(MessageKind.SHIPPED), public_url=PUBLIC_URL, carrier_url=None)
    assert "carrier's site" not in rendered.text and "carrier's site" not in rendered.html


def test_delayed_and_cancelled_carry_reason_and_new_date() -> None:
    delayed = render_message(make_request(MessageKind.DELAYED), public_url=PUBLIC_URL, carrier_url=None)
    assert "The carrier moved the delivery" in delayed.text and "Thu 26 Nov 2026" in delayed.text
    cancelled = render_message(make_request(MessageKind.CANCELLED), public_url=PUBLIC_URL, carrier_url=None)
    assert "Reason: out of stock" in cancelled.text


def test_review_request_links_to_the_review_page() -> None:
    rendered = render_message(
        make_request(MessageKind.REVIEW_REQUEST), public_url=PUBLIC_URL, carrier_url=None
    )
    assert f"{PUBLIC_URL}/review/1001" in rendered.html


def test_html_escapes_the_customer_name() -> None:
    order = make_order(name="<script>alert(1)</script>")
    rendered = render_message(
        make_request(MessageKind.CONFIRMATION, order), public_url=PUBLIC_URL, carrier_url=None
    )
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html


# ---------------------------------------------------------------------------------------------
# Composing


def test_message_id_is_stable_and_uses_the_sender_domain() -> None:
    first = message_id_for("1001", "shipped", "shipped:SIM-1", MAIL_FROM)
    assert first == message_id_for("1001", "shipped", "shipped:SIM-1", MAIL_FROM)
    assert first != message_id_for("1001", "shipped", "shipped:SIM-2", MAIL_FROM)
    assert (
        first.startswith("<")
        and first.endswith("@shop.example.com>")
        and len(first) == 32 + len("<@shop.example.com>")
    )


def test_a_crlf_name_or_subject_cannot_inject_a_header() -> None:
    rendered = RenderedMessage(subject="Hello\r\nBcc: evil@example.com", text="text", html="<p>html</p>")
    message = compose_email(
        rendered,
        to_name="Eve\r\nBcc: evil@example.com",
        to_email="eve@example.com",
        mail_from=MAIL_FROM,
        message_id="<id@shop.example.com>",
    )
    assert "Bcc" not in message
    raw = message.as_bytes()
    assert not any(line.lower().startswith(b"bcc:") for line in raw.splitlines())
    assert raw.count(b"\nTo:") + raw.startswith(b"To:") == 1
    to_line = next(line for line in raw.splitlines() if line.startswith(b"To:"))
    assert to_line.endswith(b"<eve@example.com>")
    assert message["To"].addresses[0].addr_spec == "eve@example.com"
    assert message["Subject"] == "Hello Bcc: evil@example.com"


def test_composed_message_is_text_then_html() -> None:
    rendered = render_message(make_request(MessageKind.DELIVERED), public_url=PUBLIC_URL, carrier_url=None)
    message = compose_email(
        rendered, to_name="Ana Souza", to_email="ana@example.com", mail_from=MAIL_FROM, message_id="<x@y.z>"
    )
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Message-ID"] == "<x@y.z>" and message["Date"]


# ---------------------------------------------------------------------------------------------
# SMTP and the sink


async def test_smtp_mailer_delivers_to_the_sink(sink: MailSink, mailer: SmtpMailer) -> None:
    rendered = render_message(
        make_request(MessageKind.SHIPPED), public_url=PUBLIC_URL, carrier_url=CARRIER_LINK
    )
    message_id = message_id_for("1001", "shipped", "k", MAIL_FROM)
    message = compose_email(
        rendered, to_name="Ana Souza", to_email="ana@example.com", mail_from=MAIL_FROM, message_id=message_id
    )
    reply = await mailer.send(message)
    assert reply
    [received] = sink.messages
    assert received.get_content_type() == "multipart/alternative"
    text, html = received.iter_parts()
    assert "SIM-ONTIME-42" in text.get_content() and "SIM-ONTIME-42" in html.get_content()
    assert html.get_content_type() == "text/html"
    assert received["Message-ID"] == message_id
    assert received["Subject"] == rendered.subject
    assert len(list(sink.directory.glob("*.eml"))) == 1


async def test_before_data_runs_after_the_envelope_and_can_stop_the_send(
    sink: MailSink, mailer: SmtpMailer
) -> None:
    rendered = render_message(make_request(MessageKind.DELIVERED), public_url=PUBLIC_URL, carrier_url=None)
    message = compose_email(
        rendered, to_name="Ana Souza", to_email="ana@example.com", mail_from=MAIL_FROM, message_id="<x@y.z>"
    )
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
    rendered = render_message(make_request(MessageKind.DELIVERED), public_url=PUBLIC_URL, carrier_url=None)
    message = compose_email(
        rendered, to_name="Gone", to_email="gone@example.com", mail_from=MAIL_FROM, message_id="<x@y.z>"
    )
    calls: list[str] = []

    async def record() -> None:
        calls.append("before_data")

    with pytest.raises(PermanentMailError, match="550") as raised:
        await mailer.send(message, before_data=record)
    assert raised.value.code == 550
    assert calls == [] and sink.messages == []


def test_mailer_refuses_starttls_on_the_implicit_tls_port() -> None:
    with pytest.raises(ValueError, match="implicit TLS"):
        SmtpMailer(Settings(smtp_port=465, smtp_starttls=True))


# ---------------------------------------------------------------------------------------------
# The activity


async def test_notification_is_sent_once(sink: MailSink, mailer: SmtpMailer) -> None:
    store = MemoryStore()
    notify = activities(store, mailer)
    request = make_request(MessageKind.SHIPPED, dedupe_key="shipped:SIM-ONTIME-42")

    first = await notify.send_notification(request)
    second = await notify.send_notification(request)

    assert first.status == "sent" and first.server_reply
    assert second == NotificationResult(message_id=first.message_id, status="already_sent")
    assert len(sink.messages) == 1
    assert sink.messages[0]["Message-ID"] == first.message_id
    body = sink.messages[0].get_body(("plain",))
    assert body is not None and carrier_url("simulated", "SIM-ONTIME-42") in body.get_content()
    assert store.rows["1001", "shipped", "shipped:SIM-ONTIME-42"].status == "sent"


async def test_a_permanent_refusal_is_not_retried(sink: MailSink, mailer: SmtpMailer) -> None:
    store = MemoryStore()
    request = make_request(MessageKind.CONFIRMATION, make_order(email="gone@example.com"))

    with pytest.raises(ApplicationError) as raised:
        await activities(store, mailer).send_notification(request)

    assert raised.value.type == "MailRejected" and raised.value.non_retryable
    row = store.rows["1001", "confirmation", "key"]
    assert row.status == "failed" and row.error and "550" in row.error
    assert sink.messages == []


async def test_a_transient_failure_marks_the_row_and_propagates() -> None:
    store = MemoryStore()
    unreachable = SmtpMailer(Settings(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_timeout=5))

    with pytest.raises(TransientMailError):
        await activities(store, unreachable).send_notification(make_request(MessageKind.DELIVERED))

    assert store.rows["1001", "delivered", "key"].status == "failed"


async def test_opted_out_customer_gets_no_email(sink: MailSink, mailer: SmtpMailer) -> None:
    store = MemoryStore()
    order = sample_order(notify={"email": False})

    result = await activities(store, mailer).send_notification(make_request(MessageKind.CONFIRMATION, order))

    assert result.status == "skipped"
    assert store.rows == {} and sink.messages == []


def test_templates_are_found_through_the_namespace_package_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    beside = Path(ordertrack.__file__).resolve().parent.parent / "templates"
    assert template_dirs() == [str(beside)]
    monkeypatch.setattr(ordertrack, "__file__", str(tmp_path / "ordertrack" / "__init__.py"))
    assert str(beside) in template_dirs()


# ---------------------------------------------------------------------------------------------
# At most once across a crash: the activity on the real store


class WorkerKilledAfterAccept(Store):
    """The real store, except that recording `sent` fails once: the worker died right after the
    server accepted the message, before the row said so."""

    killed = False

    async def mark_notification_sent(
        self, order_id: str, kind: str, dedupe_key: str, server_reply: str
    ) -> None:
        if not self.killed:
            self.killed = True
            raise RuntimeError("worker killed")
        await super().mark_notification_sent(order_id, kind, dedupe_key, server_reply)


@pytest.fixture
async def database_path(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ordertrack.db'}"
    await migrate(url)
    return url


@pytest.fixture
async def store(database_path: str) -> AsyncIterator[Store]:
    store = Store.from_url(database_path)
    yield store
    await store.close()


@pytest.fixture
async def killed_store(database_path: str) -> AsyncIterator[WorkerKilledAfterAccept]:
    store = WorkerKilledAfterAccept.from_url(database_path)
    assert isinstance(store, WorkerKilledAfterAccept)
    yield store
    await store.close()


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
    sink: MailSink, mailer: SmtpMailer, killed_store: WorkerKilledAfterAccept, store: Store
) -> None:
    notify = activities(killed_store, mailer)
    request = make_request(MessageKind.SHIPPED, dedupe_key="shipped:SIM-ONTIME-42")
    env = ActivityEnvironment()

    with pytest.raises(RuntimeError, match="worker killed"):
        await env.run(notify.send_notification, request)
    [row] = await store.list_notifications("1001")
    assert row.status == "delivering" and len(sink.messages) == 1

    retried = await env.run(notify.send_notification, request)
    again = await env.run(notify.send_notification, request)

    note = "attempt 1 stopped during SMTP DATA; not resent to avoid a duplicate"
    assert (retried.status, retried.message_id) == ("unconfirmed", sink.messages[0]["Message-ID"])
    assert again.status == "unconfirmed"
    assert len(sink.messages) == 1
    [row] = await store.list_notifications("1001")
    assert (row.status, row.server_reply, row.attempts) == ("unconfirmed", note, 1)
    assert row.sent_at is not None


async def test_a_lost_reply_to_data_is_unconfirmed_and_not_resent(store: Store) -> None:
    handler = FlakyHandler(hang_after_data=True)
    controller, mailer = flaky_server(handler, timeout=0.5)
    try:
        notify = activities(store, mailer)
        env = ActivityEnvironment()
        request = make_request(MessageKind.DELIVERED)
        first = await env.run(notify.send_notification, request)
        second = await env.run(notify.send_notification, request)
    finally:
        controller.stop()
    assert (first.status, second.status) == ("unconfirmed", "unconfirmed")
    assert len(handler.received) == 1
    [row] = await store.list_notifications("1001")
    assert row.status == "unconfirmed" and row.server_reply and "SMTPReadTimeoutError" in row.server_reply


async def test_a_deferred_recipient_fails_the_row_and_a_retry_sends_once(store: Store) -> None:
    handler = FlakyHandler(defer_first_rcpt=True)
    controller, mailer = flaky_server(handler)
    try:
        notify = activities(store, mailer)
        env = ActivityEnvironment()
        request = make_request(MessageKind.DELIVERED)
        with pytest.raises(TransientMailError, match="451") as raised:
            await env.run(notify.send_notification, request)
        assert not isinstance(raised.value, DeliveryUnknownError)
        [row] = await store.list_notifications("1001")
        assert (row.status, row.attempts) == ("failed", 1) and handler.received == []
        result = await env.run(notify.send_notification, request)
    finally:
        controller.stop()
    assert result.status == "sent" and len(handler.received) == 1
    [row] = await store.list_notifications("1001")
    assert (row.status, row.attempts) == ("sent", 2)


async def test_an_unreachable_server_fails_the_row_and_a_retry_sends_once(
    sink: MailSink, mailer: SmtpMailer, store: Store
) -> None:
    unreachable = SmtpMailer(Settings(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_timeout=5))
    env = ActivityEnvironment()
    request = make_request(MessageKind.DELIVERED)

    with pytest.raises(TransientMailError):
        await env.run(activities(store, unreachable).send_notification, request)
    [row] = await store.list_notifications("1001")
    assert row.status == "failed"

    result = await env.run(activities(store, mailer).send_notification, request)
    assert result.status == "sent" and len(sink.messages) == 1
    [row] = await store.list_notifications("1001")
    assert (row.status, row.attempts) == ("sent", 2)


async def test_a_refused_recipient_is_still_not_retried_on_the_real_store(
    sink: MailSink, mailer: SmtpMailer, store: Store
) -> None:
    request = make_request(MessageKind.CONFIRMATION, make_order(email="gone@example.com"))

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(activities(store, mailer).send_notification, request)

    assert raised.value.type == "MailRejected" and raised.value.non_retryable
    [row] = await store.list_notifications("1001")
    assert row.status == "failed" and row.last_error and "550" in row.last_error
    assert sink.messages == []
