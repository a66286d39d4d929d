"""Shop webhooks signed the Standard Webhooks way (https://www.standardwebhooks.com): pure functions.

Every delivery carries three headers:

- `webhook-id`: the event's id, the same on every retry of that event (deduplicate on it);
- `webhook-timestamp`: when this attempt was signed, in unix seconds;
- `webhook-signature`: `v1,<base64 of HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>`, possibly
  several such entries separated by spaces (e.g. while a secret is rotated); one matching is enough.

The secret is written `whsec_<base64>` (the bytes after the prefix, base64-decoded, are the key);
any other string is used as-is, UTF-8 encoded. The sender uses `signature_headers()`, a receiver
`verify()`; both take the body as the exact bytes on the wire.
"""

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
DEFAULT_TOLERANCE = timedelta(minutes=5)


class WebhookVerificationError(ValueError):
    """A delivery that must not be trusted: missing headers, stale timestamp or no matching signature."""


def secret_key(secret: str | bytes) -> bytes:
    """The HMAC key: `whsec_<base64>` decoded, raw bytes as given, any other string UTF-8 encoded."""
    if isinstance(secret, bytes):
        key = secret
    elif secret.startswith(SECRET_PREFIX):
        try:
            key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except binascii.Error as err:
            raise ValueError(f"a {SECRET_PREFIX} secret must be base64 after its prefix") from err
    else:
        key = secret.encode()
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def _as_bytes(body: str | bytes) -> bytes:
    return body.encode() if isinstance(body, str) else body


def sign(secret: str | bytes, msg_id: str, timestamp: int, body: str | bytes) -> str:
    """The `webhook-signature` value for one delivery: `v1,<base64 HMAC-SHA256>`."""
    signed = f"{msg_id}.{timestamp}.".encode() + _as_bytes(body)
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signature_headers(
    secret: str | bytes, msg_id: str, body: str | bytes, timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt, signed now unless `timestamp` is given."""
    when = int(time.time()) if timestamp is None else timestamp
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(when),
        SIGNATURE_HEADER: sign(secret, msg_id, when, body),
    }


def verify(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: str | bytes,
    tolerance: timedelta = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> Any:
    """Check one delivery and return its JSON payload; raise `WebhookVerificationError` otherwise.

    `headers` may use any case. The timestamp must be within `tolerance` of `now` (either way), which
    limits replays; deduplicate on `webhook-id` for the rest. Signatures compare in constant time.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get(ID_HEADER)
    stamp = lowered.get(TIMESTAMP_HEADER)
    signatures = lowered.get(SIGNATURE_HEADER)
    if not msg_id or not stamp or not signatures:
        raise WebhookVerificationError(
            f"missing header: needs {ID_HEADER}, {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}"
        )
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError(f"invalid {TIMESTAMP_HEADER}: {stamp[:40]!r}") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance.total_seconds():
        raise WebhookVerificationError(
            f"{TIMESTAMP_HEADER} {timestamp} is more than {tolerance} away from now ({int(current)})"
        )
    expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1].encode()
    for entry in signatures.split():
        version, _, signature = entry.partition(",")
        if version == SIGNATURE_VERSION and hmac.compare_digest(signature.encode(), expected):
            return json.loads(_as_bytes(body))
    raise WebhookVerificationError("no matching signature")
