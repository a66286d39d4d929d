"""A local SMTP sink for development and tests: accepts every mail, stores it as `.eml`, keeps it in memory.

`ordertrack up` runs it so the customer emails can be read without a real mail server; tests use
`messages` and `reject_addresses` (answered with a permanent 550) to check delivery and failures.
"""

import itertools
import logging
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from types import TracebackType
from typing import Self, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from ordertrack.settings import VAR_DIR

logger = logging.getLogger(__name__)

REJECT_REPLY = "550 5.1.1 mailbox unavailable"


class _Handler:
    """aiosmtpd hooks; runs on the controller's own thread and event loop."""

    def __init__(self, sink: "MailSink") -> None:
        self._sink = sink
        self._counter = itertools.count(1)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self._sink.reject_addresses:
            return REJECT_REPLY
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""  # aiosmtpd always sets it before this hook
        message = cast(EmailMessage, BytesParser(policy=default).parsebytes(raw))
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = self._sink.directory / f"{stamp}-{next(self._counter):04d}.eml"
        path.write_bytes(raw)
        self._sink.messages.append(message)
        logger.info("mail to %s: %s", ", ".join(envelope.rcpt_tos), message["Subject"])
        return "250 Message accepted for delivery"


class MailSink:
    """Start/stop or use as a context manager; it serves on its own thread, so asyncio code can use it too."""

    def __init__(
        self,
        directory: Path = VAR_DIR / "mail",
        host: str = "127.0.0.1",
        port: int = 1025,
        *,
        reject_addresses: set[str] | None = None,
    ) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self.reject_addresses = {address.lower() for address in reject_addresses or set()}
        self.messages: list[EmailMessage] = []
        self._handler = _Handler(self)
        self._controller: Controller | None = None

    def start(self) -> None:
        """Start serving; a stopped sink starts again on the same port (an outage, in tests)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        controller = Controller(self._handler, hostname=self.host, port=self.port)
        controller.start()  # a port in use raises here, leaving nothing to stop
        self._controller = controller
        logger.info("mail sink listening on %s:%d, saving to %s", self.host, self.port, self.directory)

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
