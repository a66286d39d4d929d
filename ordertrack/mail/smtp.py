"""Deliver a composed message over SMTP and classify failures for Temporal's retry decision.

A permanent error is about this message (a 5xx for the recipient, sender or content): retrying the
same message cannot help. Everything else is transient: 4xx answers, connection problems, timeouts,
and server-level refusals (HELO, AUTH, TLS) that an operator fixes in configuration, after which a
retry delivers.
"""

from email.message import EmailMessage

import aiosmtplib

from ordertrack.settings import Settings

IMPLICIT_TLS_PORT = 465


class MailError(Exception):
    """Sending failed; `code` is the SMTP reply code when the server answered."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class PermanentMailError(MailError):
    """The server refused this message for good (5xx): do not retry."""


class TransientMailError(MailError):
    """The message may go through later: retry."""


def _classify(exc: aiosmtplib.SMTPException) -> MailError:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in exc.recipients]
        text = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        error = PermanentMailError if any(code >= 500 for code in codes) else TransientMailError
        return error(f"recipient refused: {text}", max(codes))
    message_errors = (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPDataError)
    if isinstance(exc, message_errors) and exc.code >= 500:
        return PermanentMailError(f"{type(exc).__name__}: {exc.code} {exc.message}", exc.code)
    code = exc.code if isinstance(exc, aiosmtplib.SMTPResponseException) else None
    return TransientMailError(f"{type(exc).__name__}: {exc}", code)


class SmtpMailer:
    """One connection per message: notifications are few and far between, so no pool to keep alive."""

    def __init__(self, settings: Settings) -> None:
        use_tls = settings.smtp_port == IMPLICIT_TLS_PORT
        if use_tls and settings.smtp_starttls:
            raise ValueError(
                f"ORDERTRACK_SMTP_STARTTLS is set but port {IMPLICIT_TLS_PORT} speaks implicit TLS; "
                "use port 587 for STARTTLS or unset SMTP_STARTTLS"
            )
        self._hostname = settings.smtp_host
        self._port = settings.smtp_port
        self._use_tls = use_tls
        self._start_tls = settings.smtp_starttls
        self._timeout = settings.smtp_timeout
        # Credentials only with a username: a local sink or relay by IP needs none.
        self._username = settings.smtp_username or None
        password = settings.smtp_password
        self._password = password.get_secret_value() if password and self._username else None

    async def send(self, message: EmailMessage) -> str:
        """Send to the message's own recipients; returns the server's reply to the data."""
        try:
            _, reply = await aiosmtplib.send(
                message,
                hostname=self._hostname,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._use_tls,
                start_tls=self._start_tls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPException as exc:
            raise _classify(exc) from exc
        except OSError as exc:  # e.g. a certificate failure during STARTTLS, which aiosmtplib does not wrap
            raise TransientMailError(f"cannot reach {self._hostname}:{self._port}: {exc}") from exc
        return reply
