"""A local SMS sink for development and tests: Twilio's Messages API on a local port, keeping every text.

`ordertrack up` runs it so the customer's texts can be read without a Twilio account: each one is
appended to `messages.jsonl` in its folder (`var/sms/` by default) and kept in `messages`, with its
channel: `sms`, or `whatsapp` for a message between `whatsapp:` addresses, which is a template
(ContentSid and its ContentVariables) as Twilio takes them. It checks
the HTTP Basic credentials as Twilio does, and can be told to fail the way Twilio fails: a number
refused with 400 / error 21211, a 503 for the next requests, or a text taken and answered too late
(as if the connection dropped after Twilio had it). The real `TwilioSms` provider talks to it.
"""

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ordertrack.domain.notices import SMS_KINDS
from ordertrack.locales import SUPPORTED_LOCALES
from ordertrack.serving import serve_app
from ordertrack.settings import VAR_DIR
from ordertrack.sms.twilio import API_PATH, WHATSAPP_PREFIX

logger = logging.getLogger(__name__)

# What `ordertrack up` configures the worker with; shaped like Twilio's, valid only here.
DEV_ACCOUNT_SID = "AC" + "0" * 32
DEV_AUTH_TOKEN = "dev-sms-token"
DEV_FROM = "+15005550006"
# A template for every text kind and locale, for `ordertrack up`'s WhatsApp (`WHATSAPP_TEMPLATES`).
DEV_WHATSAPP_TEMPLATES = {
    kind.value: {
        locale: "HX" + hashlib.md5(f"{kind.value} {locale}".encode(), usedforsecurity=False).hexdigest()
        for locale in SUPPORTED_LOCALES
    }
    for kind in sorted(SMS_KINDS)
}
DEFAULT_PORT = 8020
START_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class SmsMessage:
    sid: str
    to: str  # `+5511999990000`, or `whatsapp:+5511999990000`
    sender: str
    body: str  # empty for a template
    at: datetime
    channel: str = "sms"  # or `whatsapp`
    content_sid: str | None = None  # a template's, with its variables
    content_variables: dict[str, str] | None = None


def _error(status: int, code: int, message: str) -> JSONResponse:
    """An error body as Twilio writes one."""
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    return JSONResponse({"code": code, "message": message, "more_info": more_info, "status": status}, status)


class SmsSink:
    """Start/stop or use as a context manager; it serves on its own thread, so asyncio code can use it too."""

    def __init__(
        self,
        directory: Path = VAR_DIR / "sms",
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        account_sid: str = DEV_ACCOUNT_SID,
        auth_token: str = DEV_AUTH_TOKEN,
        reject_numbers: set[str] | None = None,
    ) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.reject_numbers = set(reject_numbers or ())
        self.messages: list[SmsMessage] = []
        self._lock = threading.Lock()
        self._failures: list[int] = []  # statuses to answer, one per coming request
        self._stalls: list[float] = []  # seconds to hold the answer, one per coming accepted text
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        """The base URL for `ORDERTRACK_SMS_PROVIDER_URL`."""
        return f"http://{self.host}:{self.port}"

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next `count` requests with `status` (an error, not a text)."""
        with self._lock:
            self._failures.extend([status] * count)

    def stall_next(self, count: int, seconds: float) -> None:
        """Take the next `count` texts but answer each only after `seconds` (a sender's timeout fires)."""
        with self._lock:
            self._stalls.extend([seconds] * count)

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="sms-sink", daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT_SECONDS) or not self._wait_listening():
            raise RuntimeError(f"the SMS sink did not start on {self.host}:{self.port}")
        logger.info("SMS sink listening on %s, saving to %s", self.url, self.directory)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- the server's thread ---------------------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        async def serve() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            ready.set()
            await serve_app(self._app(), self.host, self.port, stop=self._stop)

        asyncio.run(serve())

    def _wait_listening(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while self._thread is not None and self._thread.is_alive() and time.monotonic() < deadline:
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return True
            except OSError:
                time.sleep(0.02)
        return False

    def _app(self) -> Starlette:
        path = API_PATH.replace("{sid}", "{account_sid}")
        return Starlette(routes=[Route(path, self._create_message, methods=["POST"])])

    def _authorized(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            presented = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = f"{self.account_sid}:{self.auth_token}"
        return (
            scheme.lower() == "basic"
            and secrets.compare_digest(presented.encode(), expected.encode())
            and request.path_params["account_sid"] == self.account_sid
        )

    async def _create_message(self, request: Request) -> JSONResponse:
        if not self._authorized(request):
            return _error(401, 20003, "Authentication Error - invalid username")
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return _error(
                failure, 20500 if failure >= 500 else 20429, "Service unavailable (sink told to fail)"
            )
        form = {name: values[0] for name, values in parse_qs((await request.body()).decode()).items()}
        to, sender, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        content_sid = form.get("ContentSid")
        try:
            variables = json.loads(form.get("ContentVariables", "{}"))
        except ValueError:
            variables = None
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not (body or content_sid):
            return _error(400, 21602, "Message body is required.")
        if not isinstance(variables, dict):
            return _error(400, 21656, "The ContentVariables Parameter is invalid.")
        if to.removeprefix(WHATSAPP_PREFIX) in self.reject_numbers:
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        message = SmsMessage(
            f"SM{secrets.token_hex(16)}",
            to,
            sender,
            body,
            datetime.now(UTC),
            channel="whatsapp" if to.startswith(WHATSAPP_PREFIX) else "sms",
            content_sid=content_sid,
            content_variables=variables if content_sid else None,
        )
        self._keep(message)
        with self._lock:
            stall = self._stalls.pop(0) if self._stalls else 0.0
        await asyncio.sleep(stall)
        return JSONResponse(self._resource(message), 201)

    def _keep(self, message: SmsMessage) -> None:
        record = {**asdict(message), "at": message.at.isoformat()}
        with (self.directory / "messages.jsonl").open("a", encoding="utf-8") as file:
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.messages.append(message)
        logger.info("%s to %s: %s", message.channel, message.to, message.body or message.content_variables)

    def _resource(self, message: SmsMessage) -> dict[str, Any]:
        """The fields of Twilio's Message resource a sender reads."""
        return {
            "sid": message.sid,
            "account_sid": self.account_sid,
            "to": message.to,
            "from": message.sender,
            "body": message.body,
            "status": "queued",
            "date_created": message.at.isoformat(),
            "uri": f"{API_PATH.format(sid=self.account_sid).removesuffix('.json')}/{message.sid}.json",
        }
