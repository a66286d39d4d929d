"""The system as a user runs it, for end-to-end tests: real processes talking over real sockets.

A Temporal dev server (from the test session), `ordertrack worker` and `ordertrack carrier-sim` as
child processes, an aiosmtpd sink in the test process, and the `ordertrack` CLI for every request.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from ordertrack.mail.sink import MailSink
from ordertrack.sms.sink import DEV_WHATSAPP_TEMPLATES, SmsSink
from tests.conftest import eventually, free_port

ORDERTRACK = str(Path(sys.executable).parent / "ordertrack")

# A three-day journey in 12 s; the policy is scaled so the order completes in well under a minute.
SIM_SPEED = 72 * 3600 / 12
FAST_POLICY = {
    "ORDERTRACK_CARRIER_POLL_INTERVAL": "500ms",
    # One pace throughout: the adaptive one follows real days and nights, not the sped-up journey's.
    "ORDERTRACK_CARRIER_POLL_MIN": "500ms",
    "ORDERTRACK_CARRIER_POLL_MAX": "500ms",
    "ORDERTRACK_SHIP_BY": "5m",
    "ORDERTRACK_PAYMENT_TIMEOUT": "5m",
    "ORDERTRACK_STALE_TRACKING_AFTER": "60s",
    "ORDERTRACK_REVIEW_REQUEST_DELAY": "2s",
    "ORDERTRACK_ESTIMATE_SLIP": "1s",
    # A failed attempt unresolved for 6 simulated hours gets its reminder (the journey redelivers after 14).
    "ORDERTRACK_FAILED_ATTEMPT_FOLLOW_UP": "1s",
    # A send cut off by a killed worker is retried this soon (the at-most-once protocol decides then).
    "ORDERTRACK_MESSAGE_SEND_TIMEOUT": "10s",
    # Quiet hours are off here (equal times): real time cannot be skipped; the workflow tests cover them.
    "ORDERTRACK_DAYTIME_STARTS": "00:00",
    "ORDERTRACK_DAYTIME_ENDS": "00:00",
}


@dataclass
class Stack:
    temporal_address: str
    database_url: str
    sink: MailSink
    sim_port: int
    workdir: Path
    task_queue: str
    sms: SmsSink | None = None
    speed: float = SIM_SPEED  # simulated seconds per real second
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **FAST_POLICY,
            "ORDERTRACK_TEMPORAL_ADDRESS": self.temporal_address,
            "ORDERTRACK_TASK_QUEUE": self.task_queue,
            "ORDERTRACK_DATABASE_URL": self.database_url,
            "ORDERTRACK_SMTP_HOST": "127.0.0.1",
            "ORDERTRACK_SMTP_PORT": str(self.sink.port),
            "ORDERTRACK_SIMULATED_CARRIER_URL": f"http://127.0.0.1:{self.sim_port}",
            "ORDERTRACK_PUBLIC_URL": "https://shop.example",
            "ORDERTRACK_REVIEW_URL": "https://shop.example/review/{order_id}",
            "ORDERTRACK_OPERATOR": "e2e-operator",
            **(self._sms_settings() if self.sms else {}),
        }

    def _sms_settings(self) -> dict[str, str]:
        assert self.sms is not None
        return {
            "ORDERTRACK_SMS_PROVIDER_URL": self.sms.url,
            "ORDERTRACK_SMS_ACCOUNT_SID": self.sms.account_sid,
            "ORDERTRACK_SMS_AUTH_TOKEN": self.sms.auth_token,
            "ORDERTRACK_SMS_FROM": "+15005550006",
            "ORDERTRACK_WHATSAPP_FROM": "+15005550006",
            "ORDERTRACK_WHATSAPP_TEMPLATES": json.dumps(DEV_WHATSAPP_TEMPLATES),
        }

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [ORDERTRACK, *args], env=self.env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    async def start_carrier(self) -> None:
        """Start `ordertrack carrier-sim` and wait until it answers (a loaded machine takes a while to
        start a Python process); fail at once, with its log, if it exits instead."""
        process = self._spawn(
            "carrier-sim", "carrier-sim", "--port", str(self.sim_port), "--speed", str(self.speed)
        )
        async with httpx.AsyncClient() as client:

            async def answers() -> bool:
                if process.poll() is not None:
                    raise RuntimeError(f"carrier simulator exited:\n{self.log('carrier-sim')}")
                try:
                    response = await client.get(f"http://127.0.0.1:{self.sim_port}/healthz")
                except httpx.TransportError:
                    return False
                return response.status_code == 200

            await eventually(answers, "the carrier simulator answering", within=90)

    def start_worker(self) -> None:
        self._spawn("worker", "worker")

    def kill_worker(self) -> None:
        """SIGKILL: no graceful shutdown, whatever the worker was doing is cut off."""
        process = self.processes.pop("worker")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def terminate_worker(self) -> int:
        """SIGTERM, as a process supervisor sends it: the worker drains and exits on its own."""
        process = self.processes.pop("worker")
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=30)

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    async def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run `ordertrack ARGS` like a shop script would, off the event loop."""
        return await asyncio.to_thread(
            subprocess.run,
            [ORDERTRACK, *args],
            env=self.env,
            cwd=self.workdir,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    async def cli_ok(self, *args: str) -> str:
        result = await self.cli(*args)
        assert result.returncode == 0, f"ordertrack {' '.join(args)} failed: {result.stderr}"
        return result.stdout

    async def show(self, order_id: str) -> dict[str, Any]:
        return json.loads(await self.cli_ok("order", "show", order_id, "--json"))


@asynccontextmanager
async def running_stack(
    dev_env: WorkflowEnvironment,
    database_url: str,
    workdir: Path,
    sink: MailSink,
    sms: SmsSink | None = None,
    speed: float = SIM_SPEED,
) -> AsyncIterator[Stack]:
    """A worker and a simulated carrier on their own task queue and ports, stopped afterwards."""
    running = Stack(
        temporal_address=dev_env.client.service_client.config.target_host,
        database_url=database_url,
        sink=sink,
        sim_port=free_port(),
        workdir=workdir,
        task_queue=f"orders-e2e-{uuid.uuid4().hex[:8]}",
        sms=sms,
        speed=speed,
    )
    try:
        await running.start_carrier()
        running.start_worker()
        yield running
    finally:
        running.stop()
