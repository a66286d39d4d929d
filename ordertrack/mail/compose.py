"""Build the MIME message: multipart/alternative (text, then HTML) with header-safe values.

Customer names and subjects are untrusted text; control characters are removed before they reach a
header, and addresses go through `email.headerregistry.Address`, so no value can add a header.
Marketing mail carries an RFC 8058 one-click unsubscribe (`List-Unsubscribe` with
`List-Unsubscribe-Post`), which mailbox providers show as their own "Unsubscribe" button.
"""

import re
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from ordertrack.delivery import message_digest
from ordertrack.domain.notices import Channel
from ordertrack.mail.render import RenderedMessage

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def _single_line(value: str) -> str:
    return " ".join(_CONTROL_CHARS.sub(" ", value).split())


def _mailbox(display_name: str, addr_spec: str) -> Address:
    """An address whose display name cannot break out of its header; a bad addr_spec raises ValueError."""
    return Address(display_name=_single_line(display_name), addr_spec=_single_line(addr_spec))


def _parse_from(mail_from: str) -> Address:
    """`ordertrack <orders@example.com>` or a bare address, as configured in `ORDERTRACK_MAIL_FROM`."""
    name, addr = parseaddr(mail_from)
    if "@" not in addr:
        raise ValueError(f"mail_from {mail_from!r} has no address (expected e.g. Shop <orders@shop.com>)")
    return _mailbox(name, addr)


def message_id_for(order_id: str, kind: str, dedupe_key: str, mail_from: str) -> str:
    """Stable per (order, kind, dedupe_key): a retried send carries the same Message-ID, so clients dedupe."""
    digest = message_digest(order_id, Channel.EMAIL, kind, dedupe_key)
    return f"<{digest}@{_parse_from(mail_from).domain}>"


def compose_email(
    rendered: RenderedMessage,
    *,
    to_name: str,
    to_email: str,
    mail_from: str,
    message_id: str,
    kind: str,
    unsubscribe_url: str | None = None,
) -> EmailMessage:
    """`unsubscribe_url` (marketing mail only) must answer a POST by unsubscribing, per RFC 8058.

    `X-Ordertrack-Message` names the kind, for the shop's mail filters and the relay's statistics.
    """
    message = EmailMessage()
    message["From"] = _parse_from(mail_from)
    message["To"] = _mailbox(to_name, to_email)
    message["Subject"] = _single_line(rendered.subject)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = _single_line(message_id)
    message["X-Ordertrack-Message"] = _single_line(kind)
    if unsubscribe_url is not None:
        message["List-Unsubscribe"] = f"<{_single_line(unsubscribe_url)}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    # Last: setting the content clears Content-* headers, and going multipart moves them to a part.
    message["Content-Language"] = _single_line(rendered.locale)
    return message
