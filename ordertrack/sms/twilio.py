"""Send a text through Twilio's Messages API (or anything that speaks it, like `ordertrack.sms.sink`).

`POST {base}/2010-04-01/Accounts/{sid}/Messages.json` with the form fields To, From and Body, HTTP
Basic `sid:token`; a 201 answer carries the message's `sid` and `status`. WhatsApp goes the same way,
between `whatsapp:+<E.164>` addresses, as an approved template (`Template`): the fields ContentSid
and ContentVariables (a JSON object) instead of Body, since WhatsApp refuses free text to a customer
who has not written in the last 24 hours.

Failures are classified as the mailer classifies SMTP ones. A 400 whose Twilio error code is about
this message (the number is invalid, not a mobile, unsubscribed; the body is empty or too long) is
permanent. Everything else is transient: 401/403 (credentials an operator fixes), 429, 5xx, other
4xx, and connection failures before the request went out. Once the request has started going out,
a lost connection or a timeout leaves it unknown whether Twilio took the message: that is a
`DeliveryUnknownError`, so the caller does not send again.

Each text gets its own connection, as each email does: texts are few, and a pooled connection
that the server closed while idle would fail mid-request and read as "unknown" for nothing.
"""

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ordertrack.delivery import DeliveryUnknownError, PermanentDeliveryError, TransientDeliveryError

TIMEOUT_SECONDS = 15.0
API_PATH = "/2010-04-01/Accounts/{sid}/Messages.json"
WHATSAPP_PREFIX = "whatsapp:"

# Twilio error codes (answered with 400) that no retry of this message can fix.
PERMANENT_ERROR_CODES: Mapping[int, str] = {
    21211: "invalid 'To' number",
    21602: "message body is required",
    21610: "the recipient replied STOP (unsubscribed)",
    21612: "the 'To' number cannot be reached from this sender",
    21614: "the 'To' number is not a mobile number",
    21617: "message body is too long",
    21656: "the template's variables are not valid",
    63016: "free text outside WhatsApp's 24-hour window: an approved template is needed",
}


@dataclass(frozen=True)
class Template:
    """A pre-approved message: the Content API's template SID and the values of its placeholders."""

    content_sid: str
    variables: Mapping[str, str]


def whatsapp_address(phone: str) -> str:
    """`+5511999990000` -> `whatsapp:+5511999990000`, the address form Twilio takes for WhatsApp."""
    return WHATSAPP_PREFIX + phone


class TwilioSms:
    def __init__(
        self,
        base_url: str,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self._url = base_url.rstrip("/") + API_PATH.format(sid=account_sid)
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._from = from_number
        self._timeout = timeout
        self._tls = httpx.create_ssl_context()  # loaded once: the certificates cost more than a connection

    async def send(
        self, to: str, body: str | Template, before_send: Callable[[], Awaitable[None]] | None = None
    ) -> str:
        """Returns `<message sid> <status>`, e.g. `SM0123... queued`."""
        sending = False

        async def trace(event: str, info: Mapping[str, Any]) -> None:
            # httpcore reports each step; the request's first bytes are the point of no return.
            nonlocal sending
            if event.endswith(".send_request_headers.started"):
                if before_send is not None:
                    await before_send()
                sending = True

        form = {"To": to, "From": self._from}
        if isinstance(body, Template):
            form |= {"ContentSid": body.content_sid, "ContentVariables": json.dumps(dict(body.variables))}
        else:
            form["Body"] = body
        try:
            async with httpx.AsyncClient(timeout=self._timeout, verify=self._tls) as client:
                response = await client.post(
                    self._url, data=form, auth=self._auth, extensions={"trace": trace}
                )
        except httpx.TransportError as exc:
            failure = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if sending:
                raise DeliveryUnknownError(
                    f"{failure} after the request to {self._url} went out, with no answer, "
                    "so the provider may have the message"
                ) from exc
            raise TransientDeliveryError(f"cannot reach {self._url}: {failure}") from exc
        return _reply(response)


def _reply(response: httpx.Response) -> str:
    """The accepted message's `sid status`, or the refusal raised as a delivery error."""
    try:
        data = response.json()
    except ValueError:
        data = None
    fields: Mapping[str, Any] = data if isinstance(data, dict) else {}
    if response.is_success:
        if "sid" in fields:
            return f"{fields['sid']} {fields.get('status', '')}".strip()
        return f"{response.status_code} {response.text[:200]}"  # accepted all the same: do not resend
    code = fields.get("code")
    said = fields.get("message") or response.text[:200] or response.reason_phrase
    if not isinstance(code, int):
        raise TransientDeliveryError(f"{response.status_code}: {said}", response.status_code)
    error = f"{response.status_code} error {code}: {said}"
    if response.status_code == httpx.codes.BAD_REQUEST and code in PERMANENT_ERROR_CODES:
        raise PermanentDeliveryError(f"{error} ({PERMANENT_ERROR_CODES[code]})", code)
    raise TransientDeliveryError(error, code)
