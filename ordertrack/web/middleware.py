"""The middleware around every request of the app: request id, body size limit, HTTP metrics, and
no stack trace in any answer."""

import logging
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ordertrack.web import errors
from ordertrack.web.errors import ApiError
from ordertrack.web.metrics import UNMATCHED_ROUTE, HttpMetrics

log = logging.getLogger("ordertrack.web.middleware")

MAX_BODY_BYTES = 64 * 1024


class ApiMiddleware:
    """Per request: an id (`X-Request-ID`), the body size limit (413), the HTTP metrics, and a
    catch-all that logs the traceback and answers a 500 with only the request id.

    `route`: the route template the metrics name (when `app` is one route); otherwise the template
    of the route the router matched."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: HttpMetrics,
        max_body_bytes: int = MAX_BODY_BYTES,
        route: str | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.route = route

    def _too_large(self) -> ApiError:
        message = f"the request body is larger than {self.max_body_bytes} bytes"
        return ApiError(413, "payload_too_large", message)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        request_id = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise self._too_large()
            return message

        try:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body_bytes:
                too_large = self._too_large()
                await errors.error_response(413, too_large.code, too_large.message)(
                    scope, receive, send_with_id
                )
            else:
                await self.app(scope, limited_receive, send_with_id)
        except Exception:
            log.exception(
                "unhandled error in %s %s (request id %s)", scope.get("method"), scope.get("path"), request_id
            )
            if not response_started:
                response = errors.error_response(
                    500,
                    "internal_error",
                    "something went wrong on our side; quote the request id when reporting it",
                    request_id=request_id,
                )
                await response(scope, receive, send_with_id)
        finally:
            template = self.route or getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            self.metrics.observe(
                str(scope.get("method", "")), template, status, time.perf_counter() - started_at
            )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
