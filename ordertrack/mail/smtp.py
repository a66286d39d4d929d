"""Deliver a composed message over SMTP and classify failures for Temporal's retry decision.

A permanent error is about this message (a 5xx for the recipient, sender or content): retrying the
same message cannot help. Everything else is transient: 4xx answers, connection problems, timeouts,
and server-level refusals (HELO, AUTH, TLS) that an operator fixes in configuration, after which a
retry delivers.

`send` walks the SMTP dialogue itself (connect, MAIL, RCPT, DATA, QUIT) so the caller can record
"about to send DATA" right before the point of no return: from DATA on, a crash or a lost connection
leaves it unknown whether the server accepted the message. A failure there without an SMTP reply is
a `DeliveryUnknownError`, so the caller does not resend and risk a duplicate.
"""

import ipaddress
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Literal

import aiosmtplib
from aiosmtplib.email import flatten_message

from ordertrack.delivery import (
    DeliveryError,
    DeliveryUnknownError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from ordertrack.settings import Settings

IMPLICIT_TLS_PORT = 465
SUBMISSION_PORT = 587
TlsMode = Literal["starttls", "implicit", "none"]
# 5xx answers about our connection's setup (authentication or TLS required, credentials refused), not
# about this message: retried, since an operator fixes the settings and the message then goes out.
SETUP_REFUSALS = frozenset({530, 534, 535, 538})


def _classify(exc: aiosmtplib.SMTPException) -> DeliveryError:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in exc.recipients]
        text = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        error = PermanentDeliveryError if any(code >= 500 for code in codes) else TransientDeliveryError
        return error(f"recipient refused: {text}", max(codes))
    message_errors = (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPDataError)
    if isinstance(exc, message_errors) and exc.code >= 500 and exc.code not in SETUP_REFUSALS:
        return PermanentDeliveryError(f"{type(exc).__name__}: {exc.code} {exc.message}", exc.code)
    code = exc.code if isinstance(exc, aiosmtplib.SMTPResponseException) else None
    return TransientDeliveryError(f"{type(exc).__name__}: {exc}", code)


def tls_mode(settings: Settings) -> TlsMode:
    """How to secure the connection: `SMTP_TLS` when set, else implicit TLS on 465, STARTTLS on 587
    or with `SMTP_STARTTLS`, and plain text only to a mail catcher on this machine.

    Plain text to another host must be asked for (`SMTP_TLS=none`), so a relay is never spoken to
    in the clear by accident.
    """
    port, host = settings.smtp_port, settings.smtp_host
    if settings.smtp_tls is not None:
        if settings.smtp_starttls and settings.smtp_tls != "starttls":
            raise ValueError(
                f"ORDERTRACK_SMTP_STARTTLS is set but ORDERTRACK_SMTP_TLS is {settings.smtp_tls!r}; keep one"
            )
        return settings.smtp_tls
    if port == IMPLICIT_TLS_PORT:
        if settings.smtp_starttls:
            raise ValueError(
                f"ORDERTRACK_SMTP_STARTTLS is set but port {IMPLICIT_TLS_PORT} speaks implicit TLS; "
                "use port 587 for STARTTLS or unset SMTP_STARTTLS"
            )
        return "implicit"
    if settings.smtp_starttls or port == SUBMISSION_PORT:
        return "starttls"
    if _is_local(host):
        return "none"
    raise ValueError(
        f"SMTP to {host}:{port} would travel in plain text: set ORDERTRACK_SMTP_TLS=starttls (port 587) "
        "or implicit (port 465); =none only for a mail catcher you trust"
    )


def _is_local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SmtpMailer:
    """One connection per message: notifications are few and far between, so no pool to keep alive."""

    def __init__(self, settings: Settings) -> None:
        mode = tls_mode(settings)
        self._hostname = settings.smtp_host
        self._port = settings.smtp_port
        self._use_tls = mode == "implicit"
        self._start_tls = mode == "starttls"  # False also stops aiosmtplib's opportunistic upgrade
        self._cert_bundle = str(settings.smtp_ca_file) if settings.smtp_ca_file else None
        self._timeout = settings.smtp_timeout
        # Credentials only with a username: a local sink or relay by IP needs none.
        self._username = settings.smtp_username or None
        password = settings.smtp_password
        self._password = password.get_secret_value() if password and self._username else None

    async def send(
        self, message: EmailMessage, before_data: Callable[[], Awaitable[None]] | None = None
    ) -> str:
        """Send to the message's own recipients; returns the server's reply to the data.

        `before_data` is awaited once the server has accepted the sender and a recipient, right
        before DATA; if it raises, no DATA is sent and its exception propagates unchanged.
        """
        sender, recipients = _envelope(message)
        client = aiosmtplib.SMTP(
            hostname=self._hostname,
            port=self._port,
            username=self._username,
            password=self._password,
            use_tls=self._use_tls,
            start_tls=self._start_tls,
            cert_bundle=self._cert_bundle,
            timeout=self._timeout,
        )
        try:
            data = await self._open_envelope(client, message, sender, recipients)
            if before_data is not None:
                await before_data()
            reply = await self._send_data(client, data)
        except BaseException:
            client.close()
            raise
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            pass  # the message is accepted; how the goodbye went does not matter
        finally:
            client.close()
        return reply

    async def _open_envelope(
        self, client: aiosmtplib.SMTP, message: EmailMessage, sender: str, recipients: list[str]
    ) -> bytes:
        """Connect (with STARTTLS and AUTH as configured), MAIL and RCPT; returns the bytes for DATA."""
        try:
            await client.connect()
            mail_options, utf8, cte_type = _mail_options(client, sender, recipients)
            data = flatten_message(message, utf8=utf8, cte_type=cte_type)  # drops Bcc, as aiosmtplib.send
            if client.supports_extension("size"):
                mail_options.insert(0, f"size={len(data)}")
            encoding = "utf-8" if utf8 else "ascii"
            await client.mail(sender, options=mail_options, encoding=encoding)
            refused: list[aiosmtplib.SMTPRecipientRefused] = []
            for recipient in recipients:
                try:
                    await client.rcpt(recipient, encoding=encoding)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    refused.append(exc)
            if len(refused) == len(recipients):
                raise aiosmtplib.SMTPRecipientsRefused(refused)
        except aiosmtplib.SMTPException as exc:
            raise _classify(exc) from exc
        except OSError as exc:  # e.g. a certificate failure during STARTTLS, which aiosmtplib does not wrap
            raise TransientDeliveryError(f"cannot reach {self._hostname}:{self._port}: {exc}") from exc
        return data

    async def _send_data(self, client: aiosmtplib.SMTP, data: bytes) -> str:
        try:
            response = await client.data(data)
        except aiosmtplib.SMTPResponseException as exc:  # a 4xx/5xx reply: the server refused it
            raise _classify(exc) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryUnknownError(
                f"{type(exc).__name__} during SMTP DATA to {self._hostname}:{self._port} with no reply, "
                f"so the server may have accepted the message: {exc}"
            ) from exc
        return response.message


def _addresses(message: EmailMessage, *headers: str) -> list[str]:
    values = [str(value) for header in headers for value in message.get_all(header, [])]
    return [address for _, address in getaddresses(values) if address]


def _envelope(message: EmailMessage) -> tuple[str, list[str]]:
    """The envelope sender and recipients from the headers, as `aiosmtplib.send` takes them."""
    senders = _addresses(message, "Sender") or _addresses(message, "From")
    recipients = _addresses(message, "To", "Cc", "Bcc")
    if not senders:
        raise ValueError("the message has no From address")
    if not recipients:
        raise ValueError("the message has no To, Cc or Bcc address")
    return senders[0], recipients


def _mail_options(client: aiosmtplib.SMTP, sender: str, recipients: list[str]) -> tuple[list[str], bool, str]:
    """MAIL FROM options, whether SMTPUTF8 is needed, and the transfer encoding, as aiosmtplib picks them."""
    options: list[str] = []
    utf8 = not (sender + "".join(recipients)).isascii()
    if utf8:
        if not client.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported(
                "an address has non-ASCII characters but the server does not support SMTPUTF8"
            )
        options.append("SMTPUTF8")
    if client.supports_extension("8bitmime"):
        options.append("BODY=8BITMIME")
        return options, utf8, "8bit"
    return options, utf8, "7bit"
