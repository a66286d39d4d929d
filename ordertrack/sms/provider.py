"""What the notify activity needs from an SMS provider, and the one this deployment is configured for."""

from collections.abc import Awaitable, Callable
from typing import Protocol

from ordertrack.settings import Settings
from ordertrack.sms.twilio import TwilioSms


class SmsProvider(Protocol):
    async def send(self, to: str, body: str, before_send: Callable[[], Awaitable[None]] | None = None) -> str:
        """Send one text; returns the provider's reply (its message id and status).

        `before_send` is awaited once the connection is open, right before the request goes out; if
        it raises, nothing is sent and its exception propagates unchanged. Failures raise the
        `ordertrack.delivery` errors: permanent, transient, or unknown (the request went out but no
        answer came back, so the provider may have the message).
        """
        ...


def build_sms_provider(settings: Settings) -> SmsProvider | None:
    """Twilio (or a Twilio-compatible API, like the local sink) once sid, token and sender are all set."""
    token = settings.sms_auth_token
    if not (settings.sms_account_sid and token and token.get_secret_value() and settings.sms_from):
        return None
    return TwilioSms(
        settings.sms_provider_url,
        account_sid=settings.sms_account_sid,
        auth_token=token.get_secret_value(),
        from_number=settings.sms_from,
    )
