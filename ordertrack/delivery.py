"""What every customer-message channel (email, SMS) shares: how a failed send is classified, and the
stable digest that names one message.

The notify activity decides on retries from these classes alone, whichever channel raised them:
permanent means retrying this message cannot help; transient means a later attempt may deliver it;
unknown means the provider may already have it, so it must not be sent again.
"""

import hashlib

from ordertrack.domain.notices import Channel


class DeliveryError(Exception):
    """Sending failed; `code` is the provider's code (an SMTP reply, an SMS API error) when it gave one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class PermanentDeliveryError(DeliveryError):
    """The provider refused this message for good (a bad recipient or content): do not retry."""


class TransientDeliveryError(DeliveryError):
    """The message may go through later (provider down, throttled, misconfigured): retry."""


class DeliveryUnknownError(TransientDeliveryError):
    """The connection failed after the message went out, with no answer: the provider may have it.

    A subclass of TransientDeliveryError so generic handlers still treat it as a failed send; a
    caller that must not duplicate (the notify activity) catches it first and does not send again.
    """


def message_digest(order_id: str, channel: str, kind: str, dedupe_key: str) -> str:
    """32 hex characters, stable per message, so every retry carries the same id.

    Email leaves the channel out: its Message-IDs predate channels and must not change.
    """
    parts = (
        (order_id, kind, dedupe_key) if channel == Channel.EMAIL else (order_id, channel, kind, dedupe_key)
    )
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
