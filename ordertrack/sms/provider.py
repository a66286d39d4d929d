"""What the notify activity needs from a text provider, and the ones this deployment is configured for."""

from collections.abc import Awaitable, Callable
from typing import Protocol

from ordertrack.settings import Settings
from ordertrack.sms.twilio import Template, TwilioSms, whatsapp_address


class SmsProvider(Protocol):
    async def send(
        self, to: str, body: str | Template, before_send: Callable[[], Awaitable[None]] | None = None
    ) -> str:
        """Send one text (a body, or an approved template); returns the provider's reply (its message
        id and status).

        `before_send` is awaited once the connection is open, right before the request goes out; if
        it raises, nothing is sent and its exception propagates unchanged. Failures raise the
        `ordertrack.delivery` errors: permanent, transient, or unknown (the request went out but no
        answer came back, so the provider may have the message).
        """
        ...


def _twilio(settings: Settings, from_address: str | None) -> TwilioSms | None:
    token = settings.sms_auth_token
    if not (settings.sms_account_sid and token and token.get_secret_value() and from_address):
        return None
    return TwilioSms(
        settings.sms_provider_url,
        account_sid=settings.sms_account_sid,
        auth_token=token.get_secret_value(),
        from_number=from_address,
    )


def build_sms_provider(settings: Settings) -> SmsProvider | None:
    """Twilio (or a Twilio-compatible API, like the local sink) once sid, token and sender are all set."""
    return _twilio(settings, settings.sms_from)


def build_whatsapp_provider(settings: Settings) -> SmsProvider | None:
    """The same Twilio account from the WhatsApp sender (`WHATSAPP_FROM`), once that is set too."""
    sender = settings.whatsapp_from
    return _twilio(settings, whatsapp_address(sender) if sender else None)
