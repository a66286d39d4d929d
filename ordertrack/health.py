"""The worker's health endpoint, on `ORDERTRACK_WORKER_HEALTH_BIND` (e.g. `0.0.0.0:8081`).

- `GET /healthz` (readiness): 200 `{"status": "polling", ...}` once the worker polls its task
  queue; 503 before (`connecting` to Temporal, with the last attempt's problem, or `starting`) and
  while it drains on shutdown (`stopping`).
- `GET /livez` (liveness): 200 as long as the process answers, whatever Temporal does; a worker
  waiting for Temporal is alive and must not be restarted for it.

A plain ASGI app, served by `ordertrack.serving.serve_app` in the worker's own event loop.
"""

import json
from dataclasses import dataclass
from typing import Any, Literal

from starlette.types import Receive, Scope, Send
from temporalio.worker import Worker

from ordertrack.connection import ConnectFailure

State = Literal["connecting", "starting", "polling", "stopping"]


@dataclass
class WorkerHealth:
    """What the worker is doing, as the health endpoint reports it."""

    temporal_address: str
    namespace: str
    task_queue: str
    state: State = "connecting"
    attempts: int = 0
    problem: str | None = None  # the last failed connection attempt's reason
    worker: Worker | None = None

    def failed_attempt(self, failure: ConnectFailure, attempt: int) -> None:
        self.attempts, self.problem = attempt, failure.reason

    def ready(self) -> bool:
        return self.state == "polling" and self.worker is not None and self.worker.is_running

    def report(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "polling" if self.ready() else self.state,
            "temporal": self.temporal_address,
            "namespace": self.namespace,
            "task_queue": self.task_queue,
        }
        if self.state == "connecting":
            body["attempts"] = self.attempts
            body["problem"] = self.problem or "connecting"
        return body


def health_app(health: WorkerHealth) -> Any:
    """The ASGI app answering `/healthz` and `/livez` from `health`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if method not in {"GET", "HEAD"}:
            status, body = 405, {"error": "only GET"}
        elif path == "/healthz":
            status, body = (200 if health.ready() else 503), health.report()
        elif path == "/livez":
            status, body = 200, {"status": "alive"}
        else:
            status, body = 404, {"error": "not found; try /healthz or /livez"}
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else payload})

    return app
