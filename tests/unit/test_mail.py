"""Customer email: rendering, header safety, SMTP delivery through the local sink, idempotent sending."""

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

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
from ordertrack.mail.smtp import SmtpMailer, TransientMailError
from ordertrack.settings import Settings
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
        elif row.status != "sent":
            row.status, row.attempts = "sending", row.attempts + 1
        return row

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


def activities(store: MemoryStore, mailer: SmtpMailer) -> NotifyActivities:
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
