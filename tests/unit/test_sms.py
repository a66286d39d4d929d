"""Text messages: the real Twilio provider against the local sink, and `send_sms` at most once."""

import json
from collections.abc import Awaitable, Callable

import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notify import NotifyActivities
from ordertrack.carriers.registry import CarrierRegistry
from ordertrack.delivery import DeliveryUnknownError, PermanentDeliveryError, TransientDeliveryError
from ordertrack.domain.notices import Channel, MessageKind
from ordertrack.domain.records import NotificationRequest
from ordertrack.mail.render import MessageLinks, render_whatsapp
from ordertrack.mail.smtp import SmtpMailer
from ordertrack.names import WHATSAPP_NOT_CONFIGURED_ERROR
from ordertrack.settings import Settings
from ordertrack.sms.provider import SmsProvider, build_sms_provider, build_whatsapp_provider
from ordertrack.sms.sink import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, SmsSink
from ordertrack.sms.twilio import Template, TwilioSms, whatsapp_address
from ordertrack.store import Store
from tests.factories import order_data, sample_order
from tests.unit.test_mail import PUBLIC_URL, TOKEN, carrier_url, free_port, make_request

PHONE = "+5511999990000"
FROM = "+15005550006"


def provider(sink: SmsSink, *, auth_token: str = DEV_AUTH_TOKEN, timeout: float = 5) -> TwilioSms:
    return TwilioSms(
        sink.url, account_sid=DEV_ACCOUNT_SID, auth_token=auth_token, from_number=FROM, timeout=timeout
    )


def sms_request() -> NotificationRequest:
    return make_request(MessageKind.SHIPPED, dedupe_key="shipped:SIM-ONTIME-42", channel=Channel.SMS)


def texts(sms: SmsProvider | None, store: Store) -> NotifyActivities:
    mailer = SmtpMailer(Settings(smtp_port=free_port()))  # never used: texts only
    return NotifyActivities(
        store,
        mailer,
        public_url=PUBLIC_URL,
        mail_from="orders@shop.example.com",
        carrier_url=carrier_url,
        carrier_name=CarrierRegistry().display_name,
        sms=sms,
    )


# -- the provider ------------------------------------------------------------------------------


async def test_a_text_is_delivered_to_the_sink(sms_sink: SmsSink) -> None:
    calls: list[int] = []

    async def before_send() -> None:
        calls.append(len(sms_sink.messages))

    reply = await provider(sms_sink).send(PHONE, "Your order is on its way", before_send)

    [message] = sms_sink.messages
    assert reply == f"{message.sid} queued" and message.sid.startswith("SM")
    assert (message.to, message.sender, message.body) == (PHONE, FROM, "Your order is on its way")
    assert calls == [0]
    [line] = (sms_sink.directory / "messages.jsonl").read_text().splitlines()
    assert json.loads(line)["body"] == "Your order is on its way"


async def test_an_invalid_number_is_a_permanent_refusal(sms_sink: SmsSink) -> None:
    sms_sink.reject_numbers.add(PHONE)
    with pytest.raises(PermanentDeliveryError, match="21211") as raised:
        await provider(sms_sink).send(PHONE, "hi")
    assert raised.value.code == 21211 and sms_sink.messages == []


async def test_an_unavailable_provider_is_transient(sms_sink: SmsSink) -> None:
    sms_sink.fail_next(1, status=503)
    with pytest.raises(TransientDeliveryError, match="503") as raised:
        await provider(sms_sink).send(PHONE, "hi")
    assert not isinstance(raised.value, DeliveryUnknownError)
    assert await provider(sms_sink).send(PHONE, "hi")
    assert len(sms_sink.messages) == 1


async def test_refused_credentials_are_transient(sms_sink: SmsSink) -> None:
    with pytest.raises(TransientDeliveryError, match="401"):
        await provider(sms_sink, auth_token="wrong").send(PHONE, "hi")
    assert sms_sink.messages == []


async def test_no_answer_after_the_request_went_out_is_unknown(sms_sink: SmsSink) -> None:
    sms_sink.stall_next(1, seconds=1.0)
    with pytest.raises(DeliveryUnknownError, match="ReadTimeout"):
        await provider(sms_sink, timeout=0.2).send(PHONE, "hi")
    assert len(sms_sink.messages) == 1


async def test_an_unreachable_provider_is_transient_and_before_send_never_runs() -> None:
    unreachable = TwilioSms(
        f"http://127.0.0.1:{free_port()}", account_sid=DEV_ACCOUNT_SID, auth_token="t", from_number=FROM
    )
    calls: list[str] = []

    async def before_send() -> None:
        calls.append("before_send")

    with pytest.raises(TransientDeliveryError, match="cannot reach") as raised:
        await unreachable.send(PHONE, "hi", before_send)
    assert not isinstance(raised.value, DeliveryUnknownError) and calls == []


async def test_a_failing_before_send_sends_nothing(sms_sink: SmsSink) -> None:
    async def crash() -> None:
        raise RuntimeError("store down")

    with pytest.raises(RuntimeError, match="store down"):
        await provider(sms_sink).send(PHONE, "hi", crash)
    assert sms_sink.messages == []


def test_the_provider_is_built_only_with_all_credentials() -> None:
    assert build_sms_provider(Settings()) is None
    partial = Settings(sms_account_sid=DEV_ACCOUNT_SID, sms_auth_token=SecretStr(DEV_AUTH_TOKEN))
    assert build_sms_provider(partial) is None
    complete = partial.model_copy(update={"sms_from": FROM})
    assert isinstance(build_sms_provider(complete), TwilioSms)


# -- the activity ------------------------------------------------------------------------------


async def test_a_text_is_sent_once(sms_sink: SmsSink, sqlite_store: Store) -> None:
    notify, env = texts(provider(sms_sink), sqlite_store), ActivityEnvironment()

    first = await env.run(notify.send_sms, sms_request())
    second = await env.run(notify.send_sms, sms_request())

    [message] = sms_sink.messages
    assert (first.status, second.status) == ("sent", "already_sent")
    assert first.message_id == second.message_id and first.message_id.startswith("sms-")
    assert first.server_reply == f"{message.sid} queued"
    assert message.to == PHONE and f"{PUBLIC_URL}/t/{TOKEN}" in message.body
    [row] = await sqlite_store.list_notifications("1001")
    assert (row.channel, row.kind, row.status, row.recipient) == ("sms", "shipped", "sent", PHONE)
    assert row.server_reply == first.server_reply


class WorkerKilledAfterAccept:
    """The real provider, except that the worker dies once Twilio took the text, before the row said so."""

    def __init__(self, sms: TwilioSms) -> None:
        self._sms = sms

    async def send(self, to: str, body: str, before_send: Callable[[], Awaitable[None]] | None = None) -> str:
        await self._sms.send(to, body, before_send)
        raise RuntimeError("worker killed")


async def test_a_retry_after_a_crash_mid_send_does_not_resend(sms_sink: SmsSink, sqlite_store: Store) -> None:
    env = ActivityEnvironment()
    killed = texts(WorkerKilledAfterAccept(provider(sms_sink)), sqlite_store)
    with pytest.raises(RuntimeError, match="worker killed"):
        await env.run(killed.send_sms, sms_request())
    [row] = await sqlite_store.list_notifications("1001")
    assert row.status == "delivering" and len(sms_sink.messages) == 1

    retried = await env.run(texts(provider(sms_sink), sqlite_store).send_sms, sms_request())

    assert retried.status == "unconfirmed" and len(sms_sink.messages) == 1
    [row] = await sqlite_store.list_notifications("1001")
    assert (row.status, row.attempts) == ("unconfirmed", 1)


async def test_a_lost_answer_is_unconfirmed_and_not_resent(sms_sink: SmsSink, sqlite_store: Store) -> None:
    sms_sink.stall_next(1, seconds=1.0)
    notify, env = texts(provider(sms_sink, timeout=0.2), sqlite_store), ActivityEnvironment()

    first = await env.run(notify.send_sms, sms_request())
    second = await env.run(notify.send_sms, sms_request())

    assert (first.status, second.status) == ("unconfirmed", "unconfirmed")
    assert len(sms_sink.messages) == 1
    [row] = await sqlite_store.list_notifications("1001")
    assert row.server_reply and "ReadTimeout" in row.server_reply


async def test_a_transient_failure_is_retried_and_then_sent_once(
    sms_sink: SmsSink, sqlite_store: Store
) -> None:
    sms_sink.fail_next(1, status=503)
    notify, env = texts(provider(sms_sink), sqlite_store), ActivityEnvironment()

    with pytest.raises(TransientDeliveryError):
        await env.run(notify.send_sms, sms_request())
    [row] = await sqlite_store.list_notifications("1001")
    assert row.status == "failed" and row.last_error and "503" in row.last_error

    assert (await env.run(notify.send_sms, sms_request())).status == "sent"
    [row] = await sqlite_store.list_notifications("1001")
    assert (row.status, row.attempts, len(sms_sink.messages)) == ("sent", 2, 1)


async def test_an_invalid_number_is_rejected_for_good(sms_sink: SmsSink, sqlite_store: Store) -> None:
    sms_sink.reject_numbers.add(PHONE)
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(texts(provider(sms_sink), sqlite_store).send_sms, sms_request())
    assert raised.value.type == "MessageRejected" and raised.value.non_retryable
    assert all(word in str(raised.value) for word in ("shipped", "sms", PHONE, "21211"))
    [row] = await sqlite_store.list_notifications("1001")
    assert row.status == "failed"


async def test_without_a_provider_or_a_phone_nothing_is_sent(sms_sink: SmsSink, sqlite_store: Store) -> None:
    env = ActivityEnvironment()
    with pytest.raises(ApplicationError, match="ORDERTRACK_SMS_ACCOUNT_SID") as raised:
        await env.run(texts(None, sqlite_store).send_sms, sms_request())
    assert raised.value.type == "SmsNotConfigured" and raised.value.non_retryable

    customer = {name: value for name, value in order_data()["customer"].items() if name != "phone"}
    no_phone = make_request(MessageKind.SHIPPED, sample_order(customer=customer), channel=Channel.SMS)
    with pytest.raises(ApplicationError, match="no phone number") as raised:
        await env.run(texts(provider(sms_sink), sqlite_store).send_sms, no_phone)
    assert raised.value.non_retryable
    assert sms_sink.messages == [] and await sqlite_store.list_notifications("1001") == []


# -- WhatsApp ----------------------------------------------------------------------------------

SHIPPED_SID = "HX" + "1" * 32
EN_SHIPPED_SID = "HX" + "2" * 32


def whatsapp_request(locale: str = "pt-BR", kind: MessageKind = MessageKind.SHIPPED) -> NotificationRequest:
    order = sample_order(customer={**order_data()["customer"], "locale": locale, "phone": PHONE})
    return make_request(kind, order, dedupe_key=f"{kind.value}:1", channel=Channel.WHATSAPP)


async def test_a_whatsapp_template_reaches_the_sink_with_its_variables(sms_sink: SmsSink) -> None:
    whatsapp = TwilioSms(
        sms_sink.url,
        account_sid=DEV_ACCOUNT_SID,
        auth_token=DEV_AUTH_TOKEN,
        from_number=whatsapp_address(FROM),
    )
    reply = await whatsapp.send(whatsapp_address(PHONE), Template(SHIPPED_SID, {"1": "Ana", "2": "1001"}))

    [message] = sms_sink.messages
    assert reply == f"{message.sid} queued"
    assert (message.channel, message.to, message.sender) == (
        "whatsapp",
        f"whatsapp:{PHONE}",
        f"whatsapp:{FROM}",
    )
    assert (message.content_sid, message.content_variables, message.body) == (
        SHIPPED_SID,
        {"1": "Ana", "2": "1001"},
        "",
    )
    recorded = json.loads((sms_sink.directory / "messages.jsonl").read_text().splitlines()[-1])
    assert recorded["channel"] == "whatsapp" and recorded["content_sid"] == SHIPPED_SID


def test_the_template_is_the_customers_language_else_english_with_only_known_values() -> None:
    templates = {"shipped": {"pt-BR": SHIPPED_SID, "en": EN_SHIPPED_SID}, "delivered": {"en": EN_SHIPPED_SID}}
    links = MessageLinks(
        tracking_url=f"{PUBLIC_URL}/t/{TOKEN}",
        review_url=None,
        support_email="s@x.example",
        carrier_name="Correios",
    )

    shipped = render_whatsapp(whatsapp_request("pt-BR"), links, templates)
    korean = render_whatsapp(whatsapp_request("ko"), links, templates)
    delivered = render_whatsapp(whatsapp_request("pt-BR", MessageKind.DELIVERED), links, templates)
    missing = render_whatsapp(whatsapp_request("pt-BR", MessageKind.LOST), links, templates)

    assert shipped is not None and shipped.content_sid == SHIPPED_SID
    assert shipped.variables["1"] == "Ana" and shipped.variables["3"] == f"{PUBLIC_URL}/t/{TOKEN}"
    assert shipped.variables["4"] == "Correios" and "7" not in shipped.variables  # no location: not sent
    assert korean is not None and korean.content_sid == EN_SHIPPED_SID  # no Korean template: English
    assert delivered is not None and delivered.content_sid == EN_SHIPPED_SID
    assert missing is None


async def test_whatsapp_is_sent_once_and_without_a_template_refused_for_ops(
    sms_sink: SmsSink, sqlite_store: Store
) -> None:
    whatsapp = TwilioSms(
        sms_sink.url,
        account_sid=DEV_ACCOUNT_SID,
        auth_token=DEV_AUTH_TOKEN,
        from_number=whatsapp_address(FROM),
    )
    notify = NotifyActivities(
        sqlite_store,
        SmtpMailer(Settings(smtp_port=free_port())),
        public_url=PUBLIC_URL,
        mail_from="orders@shop.example.com",
        carrier_url=carrier_url,
        carrier_name=CarrierRegistry().display_name,
        whatsapp=whatsapp,
        whatsapp_templates={"shipped": {"en": EN_SHIPPED_SID}},
    )
    env = ActivityEnvironment()
    first = await env.run(notify.send_whatsapp, whatsapp_request())
    again = await env.run(notify.send_whatsapp, whatsapp_request())
    assert (first.status, again.status) == ("sent", "already_sent") and len(sms_sink.messages) == 1
    [row] = await sqlite_store.list_notifications("1001")
    assert (row.channel, row.recipient) == ("whatsapp", f"whatsapp:{PHONE}")

    with pytest.raises(ApplicationError, match="no approved template for lost") as refused:
        await env.run(notify.send_whatsapp, whatsapp_request(kind=MessageKind.LOST))
    assert refused.value.type == WHATSAPP_NOT_CONFIGURED_ERROR and refused.value.non_retryable
    with pytest.raises(ApplicationError, match="WhatsApp is not configured"):
        await env.run(texts(None, sqlite_store).send_whatsapp, whatsapp_request())


def test_whatsapp_is_built_from_the_sms_account_and_its_own_sender() -> None:
    account = {"sms_account_sid": DEV_ACCOUNT_SID, "sms_auth_token": SecretStr(DEV_AUTH_TOKEN)}
    assert build_whatsapp_provider(Settings(**account)) is None
    assert build_whatsapp_provider(Settings(whatsapp_from=FROM)) is None
    assert build_whatsapp_provider(Settings(**account, whatsapp_from=FROM)) is not None


@pytest.mark.parametrize(
    ("templates", "problem"),
    [
        ({"confirmation": {"en": SHIPPED_SID}}, "not a text message kind"),
        ({"shipped": {"fr": SHIPPED_SID}}, "'fr' is not one of"),
        ({"shipped": {"en": "HX123"}}, "not a content SID"),
    ],
)
def test_whatsapp_templates_are_checked_when_the_settings_load(
    templates: dict[str, dict[str, str]], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        Settings(whatsapp_templates=templates)
    with pytest.raises(ValueError, match="WHATSAPP_FROM"):
        Settings(whatsapp_from="+5511999")
