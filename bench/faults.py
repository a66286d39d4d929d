"""Fault figures: N orders through the shop API while the worker, Temporal, SMTP and the carrier fail.

Real processes on loopback, as a user runs them: a headless Temporal dev server kept in a file,
`ordertrack worker` under a supervisor loop (restarted when it exits, as a container runtime
would), `ordertrack serve`, `ordertrack carrier-sim` sped up (a three-day journey in 36 s) behind
a TCP relay the bench can cut, and an SMTP sink in this process. The policy is sped up to match.

A shop backend starts N orders over `--feed-seconds` through `POST /api/orders` and reports
picking, packed (with a `SIM-...` tracking number: on time, delayed, failed attempt, exception,
returned) and shipped, retrying with backoff like a shop would (503 while Temporal is down) and an
`Idempotency-Key` on every update. Meanwhile, on a fixed schedule (see `SCHEDULE`): the worker is
SIGKILLed; Temporal is stopped, the worker SIGKILLed while it is down, and Temporal started again
from its file; the SMTP sink is stopped for a while; the carrier is cut off for a while; the
worker is SIGKILLed once more. Then the bench waits (at most `--drain-timeout`) for every order
to finish and prints the fault timeline and the figures: orders lost, duplicate messages, stuck
workflows, orders not finished, worker restarts, and the time to drain after the last fault.

    .venv/bin/python bench/faults.py [--orders 200] [--feed-seconds 120] [--drain-timeout 300]
                                     [--restart-carrier] [--no-faults] [--keep]

The carrier is cut off at a relay, not by stopping the simulator: the simulator keeps its journeys
in memory only, so a restarted one starts every parcel's journey over (`--restart-carrier` shows
what that does). Exits 1 when anything but the time (and the worker's restarts, which a worker that
cannot wait for Temporal needs) is not zero; every process it started is stopped on the way out.
Logs and databases are kept when it fails (or with `--keep`). `--no-faults` is the baseline: the
same orders at the same pace, and the drain timed from where the last fault would have been.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from ordertrack.mail.sink import MailSink
from ordertrack.web.schemas import SAMPLE_ORDER
from starter.devserver import start_dev_server

ORDERTRACK = str(Path(sys.executable).parent / "ordertrack")
API_KEY = "faults-shop-key"

# The on-time journey (72 carrier hours) in 36 s; the policy below is scaled to match.
JOURNEY_SECONDS = 36.0
SIM_SPEED = 72 * 3600 / JOURNEY_SECONDS
POLICY = {
    # Every 4 carrier hours. Each poll costs the dev server's SQLite file a few writes even when it
    # leaves no history event: at 1 s, 200 orders in 120 s overloaded it on two shared cores
    # (persistence timeouts, workflow tasks waiting minutes, updates answered after 3 minutes).
    "ORDERTRACK_CARRIER_POLL_INTERVAL": "2s",
    "ORDERTRACK_SHIP_BY": "10m",
    "ORDERTRACK_PAYMENT_TIMEOUT": "10m",
    # Longer than any gap between two scans plus a carrier cut: no order is declared lost.
    "ORDERTRACK_STALE_TRACKING_AFTER": "3m",
    "ORDERTRACK_REVIEW_REQUEST_DELAY": "2s",
    # The delayed journey moves its estimate 24 carrier hours (12 s) later; that is a delay.
    "ORDERTRACK_ESTIMATE_SLIP": "2s",
    "ORDERTRACK_FAILED_ATTEMPT_FOLLOW_UP": "2s",
    # A send or a read-model write cut off by a killed worker is retried this soon.
    "ORDERTRACK_MESSAGE_SEND_TIMEOUT": "10s",
    "ORDERTRACK_ACTIVITY_TIMEOUT": "10s",
    # Quiet hours off: a carrier day lasts 12 s here.
    "ORDERTRACK_DAYTIME_STARTS": "00:00",
    "ORDERTRACK_DAYTIME_ENDS": "00:00",
}

STEP_PAUSE = 1.0  # between the shop's warehouse reports for one order
REQUEST_TIMEOUT = 30.0
# A shop's job queue retries a request for a long time before a person looks at it. 180 s was too
# short once: on two busy shared cores, an update sent just before Temporal stopped was answered
# after 3 min 12 s (workflow tasks waited over a minute for the starved worker).
REQUEST_PATIENCE = 600.0

# Below the kernel's ephemeral range (where outgoing connections take their ports, so a server
# restarted on its port finds it free) and below the test suite's blocks (12000 and up).
PORT_RANGE = range(10000, 12000)


@dataclass(frozen=True)
class Journey:
    """A simulated journey: how the order ends, the messages it must get and how many of a kind."""

    prefix: str
    end: str
    required: frozenset[str]
    # Kinds that may come more than once; every other kind at most once. `delayed` is unbounded:
    # each new estimate, and each estimate passed while polling was cut off, is a real change.
    at_most: dict[str, int] = field(default_factory=dict)


# What every order of a journey gets whatever the faults. A status the carrier held only while
# polling was cut off (out for delivery, a failed attempt, a moved estimate) is never seen, so
# its message is not required.
_DELIVERED = frozenset({"confirmation", "shipped", "delivered", "review_request"})
UNBOUNDED = 1_000_000
JOURNEYS = (
    Journey("SIM-ONTIME-", "completed", _DELIVERED, {"delayed": UNBOUNDED}),
    Journey("SIM-DELAYED-", "completed", _DELIVERED, {"delayed": UNBOUNDED}),
    Journey(
        "SIM-FAILED-",
        "completed",
        _DELIVERED,
        {"delayed": UNBOUNDED, "out_for_delivery": 2, "delivery_failed": 2},
    ),
    Journey("SIM-EXCEPTION-", "completed", _DELIVERED, {"delayed": UNBOUNDED}),
    Journey(
        "SIM-RETURNED-",
        "returned",
        frozenset({"confirmation", "shipped", "returned"}),
        {"delayed": UNBOUNDED},
    ),
)


def free_port(taken: set[int]) -> int:
    for port in random.sample(PORT_RANGE, len(PORT_RANGE)):
        if port in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise RuntimeError(f"no free port in {PORT_RANGE}")


class Timeline:
    """What happened when, in seconds since the bench began; printed as it happens."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.faults: list[tuple[float, str]] = []

    def now(self) -> float:
        return time.monotonic() - self.began

    def note(self, what: str, *, fault: bool = False) -> float:
        at = self.now()
        if fault:
            self.faults.append((at, what))
        print(f"[{at:6.1f}s] {what}", flush=True)
        return at


class Relay:
    """A loopback TCP relay in front of the carrier simulator. `cut()` refuses new connections and
    drops the open ones, as a carrier API that went away; the simulator keeps its memory of each
    tracking number (restarting it would start every journey over)."""

    def __init__(self, port: int, target: int) -> None:
        self.port = port
        self.target = target
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.connections = 0
        self.upstream_errors: Counter[str] = Counter()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        await self._server.wait_closed()
        self._server = None

    async def _pipe(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._open.add(client_writer)
        self.connections += 1
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError as err:
            self.upstream_errors[repr(err)] += 1
            client_writer.transport.abort()
            self._open.discard(client_writer)
            return
        self._open.add(writer)

        async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()

        try:
            _, pending = await asyncio.wait(
                [
                    asyncio.create_task(copy(client_reader, writer)),
                    asyncio.create_task(copy(reader, client_writer)),
                ],
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in pending:
                task.cancel()
        finally:
            for end in (writer, client_writer):
                end.transport.abort()
                self._open.discard(end)


class WorkerSupervisor:
    """Keeps one `ordertrack worker` running, as a container runtime would: a worker killed by the
    bench is started again at once; one that exits by itself (it cannot reach Temporal) is started
    again after a backoff (1 s, doubling up to 10 s), and counted."""

    def __init__(self, spawn: Callable[[], subprocess.Popen[bytes]], timeline: Timeline) -> None:
        self._spawn = spawn
        self._timeline = timeline
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.exits: list[int] = []  # exit statuses of the worker stopping by itself
        self._killed = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="worker-supervisor")

    async def _run(self) -> None:
        backoff = 1.0
        while not self._stopping:
            self.process = self._spawn()
            self.starts += 1
            began = time.monotonic()
            await asyncio.to_thread(self.process.wait)
            if self._stopping:
                return
            if self._killed:
                self._killed = False
                continue
            if time.monotonic() - began > 10:
                backoff = 1.0
            self.exits.append(self.process.returncode)
            self._timeline.note(
                f"worker exited by itself (status {self.process.returncode}); "
                f"supervisor restarts it in {backoff:g} s"
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, whatever the worker was doing is cut off."""
        if self.process is not None and self.process.poll() is None:
            self._killed = True
            self.kills += 1
            self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        self._stopping = True
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            await asyncio.to_thread(_wait_or_kill, self.process, 30)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _wait_or_kill(process: subprocess.Popen[bytes], timeout: float) -> None:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class Stack:
    """Every process of the bench, on free loopback ports, and the faults that can be done to them."""

    def __init__(self, workdir: Path, timeline: Timeline, *, restart_carrier: bool = False) -> None:
        self.workdir = workdir
        self.timeline = timeline
        self.restart_carrier = restart_carrier
        taken: set[int] = set()
        self.temporal_port = free_port(taken)
        self.http_port = free_port(taken)
        self.sim_port = free_port(taken)
        self.relay = Relay(free_port(taken), self.sim_port)
        self.sink = MailSink(workdir / "mail", port=free_port(taken))
        self.task_queue = f"faults-{random.randrange(16**6):06x}"
        self.temporal: subprocess.Popen[bytes] | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.worker = WorkerSupervisor(lambda: self._spawn("worker", "worker"), timeline)
        self.client: Client | None = None

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,  # cleared of ORDERTRACK_* and TEMPORAL_* in main()
            **POLICY,
            "ORDERTRACK_TEMPORAL_ADDRESS": self.temporal_address,
            "ORDERTRACK_TASK_QUEUE": self.task_queue,
            "ORDERTRACK_DATABASE_URL": f"sqlite+aiosqlite:///{self.workdir / 'orders.db'}",
            "ORDERTRACK_SMTP_HOST": "127.0.0.1",
            "ORDERTRACK_SMTP_PORT": str(self.sink.port),
            "ORDERTRACK_CARRIER": "simulated",
            "ORDERTRACK_SIMULATED_CARRIER_URL": f"http://127.0.0.1:{self.relay.port}",
            "ORDERTRACK_SIMULATED_CARRIER_SPEED": str(SIM_SPEED),
            "ORDERTRACK_PUBLIC_URL": "https://shop.example",
            "ORDERTRACK_API_KEYS": json.dumps({API_KEY: {"role": "shop", "name": "fault bench"}}),
        }

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        try:
            process = subprocess.Popen(
                [ORDERTRACK, *args],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the bench, which stops its children itself
            )
        finally:
            log.close()
        self.processes[name] = process
        return process

    def log(self, name: str, since: int = 0) -> str:
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        with path.open("rb") as file:
            file.seek(since)
            return file.read().decode(errors="replace")

    def log_size(self, name: str) -> int:
        path = self.workdir / f"{name}.log"
        return path.stat().st_size if path.exists() else 0

    # -- starting and stopping -----------------------------------------------------------------

    async def start(self) -> None:
        await self.start_temporal()
        self.sink.start()
        await self.relay.open()
        self.start_simulator()
        await wait_http(f"http://127.0.0.1:{self.relay.port}/healthz", "the carrier simulator", self)
        self._spawn("serve", "serve", "--port", str(self.http_port))
        await wait_http(f"{self.api}/healthz", "ordertrack serve", self)
        self.worker.start()
        await self.wait_worker_polling(since=0)

    async def wait_worker_polling(self, since: int, patience: float = 60.0) -> None:
        """Until a worker logs that it polls, after offset `since` of its log."""
        deadline = time.monotonic() + patience
        while "worker polling task queue" not in (written := self.log("worker", since)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start polling:\n{written[-3000:]}")
            await asyncio.sleep(0.2)

    async def start_temporal(self) -> float:
        """Start the dev server on its port and file; returns the seconds until it answered."""
        began = time.monotonic()
        self.temporal = start_dev_server(
            port=self.temporal_port,
            ui_port=None,
            db_file=self.workdir / "temporal.db",
            log_file=self.workdir / "temporal.log",
        )
        deadline = began + 60
        while True:
            try:
                if self.client is None:
                    self.client = await Client.connect(self.temporal_address)
                await self.client.count_workflows(f'TaskQueue="{self.task_queue}"')
                return time.monotonic() - began
            except (RuntimeError, RPCError):
                if time.monotonic() > deadline or self.temporal.poll() is not None:
                    raise RuntimeError(f"Temporal did not start:\n{self.log('temporal')[-3000:]}") from None
                await asyncio.sleep(0.3)

    async def stop_temporal(self) -> None:
        if self.temporal is not None:
            self.temporal.terminate()
            await asyncio.to_thread(_wait_or_kill, self.temporal, 30)
            self.temporal = None

    async def stop(self) -> None:
        await self.worker.stop()
        for name, process in self.processes.items():
            if name != "worker" and process.poll() is None:
                process.terminate()
        for name, process in self.processes.items():
            if name != "worker":
                await asyncio.to_thread(_wait_or_kill, process, 20)
        await self.relay.cut()
        await asyncio.to_thread(self.sink.stop)
        await self.stop_temporal()

    # -- faults --------------------------------------------------------------------------------

    async def kill_worker(self) -> None:
        polling = self.log_size("worker")
        self.worker.kill()
        self.timeline.note("worker SIGKILLed; the supervisor starts a new one", fault=True)
        await self.wait_worker_polling(polling, patience=120)
        self.timeline.note("worker polling again")

    async def temporal_outage(self, down: float) -> None:
        await self.stop_temporal()
        self.timeline.note(f"Temporal dev server stopped (SIGTERM) for {down:g} s", fault=True)
        await asyncio.sleep(min(4.0, down / 4))
        polling = self.log_size("worker")
        self.worker.kill()
        self.timeline.note(
            "worker SIGKILLed while Temporal is down; the supervisor starts a new one", fault=True
        )
        await asyncio.sleep(down - min(4.0, down / 4))
        took = await self.start_temporal()
        self.timeline.note(f"Temporal started again from its file (answering after {took:.1f} s)")
        await self.wait_worker_polling(polling, patience=120)
        self.timeline.note("worker polling again")

    async def smtp_outage(self, down: float) -> None:
        await asyncio.to_thread(self.sink.stop)
        self.timeline.note(f"SMTP sink stopped for {down:g} s", fault=True)
        await asyncio.sleep(down)
        await asyncio.to_thread(self.sink.start)
        self.timeline.note("SMTP sink started again")

    async def carrier_outage(self, down: float) -> None:
        if self.restart_carrier:
            await self.restart_simulator(down)
            return
        await self.relay.cut()
        self.timeline.note(f"carrier cut off (connections refused) for {down:g} s", fault=True)
        await asyncio.sleep(down)
        await self.relay.open()
        self.timeline.note("carrier reachable again")

    def start_simulator(self) -> None:
        self._spawn("carrier-sim", "carrier-sim", "--port", str(self.sim_port), "--speed", str(SIM_SPEED))

    async def restart_simulator(self, down: float) -> None:
        """`--restart-carrier`: stop the simulator process itself; it forgets every tracking number."""
        process = self.processes["carrier-sim"]
        process.terminate()
        await asyncio.to_thread(_wait_or_kill, process, 20)
        self.timeline.note(f"carrier simulator stopped (SIGTERM) for {down:g} s", fault=True)
        await asyncio.sleep(down)
        self.start_simulator()
        await wait_http(f"http://127.0.0.1:{self.sim_port}/healthz", "the carrier simulator", self)
        self.timeline.note("carrier simulator started again (its journeys start over)")


async def wait_http(url: str, what: str, stack: Stack, patience: float = 60.0) -> None:
    deadline = time.monotonic() + patience
    async with httpx.AsyncClient(timeout=5) as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    logs = "\n".join(f"--- {name}\n{stack.log(name)[-2000:]}" for name in stack.processes)
    raise RuntimeError(f"{what} did not answer on {url}:\n{logs}")


# The fault schedule: (seconds after the first order, what). The feed runs 120 s by default, so the
# last kill lands while the last orders are in transit.
Fault = Callable[[Stack], Awaitable[None]]
SCHEDULE: list[tuple[float, Fault]] = [
    (15, lambda s: s.kill_worker()),
    (30, lambda s: s.smtp_outage(20)),
    (60, lambda s: s.temporal_outage(20)),
    (95, lambda s: s.carrier_outage(20)),
    (130, lambda s: s.kill_worker()),
]


# -- the shop --------------------------------------------------------------------------------


@dataclass
class ShopOrder:
    order_id: str
    journey: Journey
    started: bool = False
    shipped: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def tracking_number(self) -> str:
        return f"{self.journey.prefix}{self.order_id}"

    @property
    def email(self) -> str:
        return f"{self.order_id.lower()}@example.com"


@dataclass
class Shop:
    """A shop backend: retries what failed for want of the service, with backoff, and sends an
    Idempotency-Key with each update so a retry returns the first answer."""

    http: httpx.AsyncClient
    timeline: Timeline
    answers: Counter[str] = field(default_factory=Counter)
    # When each kind of failed answer came (timeline seconds): first and last.
    failures: dict[str, tuple[float, float]] = field(default_factory=dict)
    given_up: int = 0

    def count(self, answer: str, failed: bool) -> None:
        self.answers[answer] += 1
        if failed:
            at = self.timeline.now()
            self.failures[answer] = (self.failures.get(answer, (at, at))[0], at)

    async def call(self, path: str, body: dict[str, Any], key: str | None = None) -> httpx.Response | None:
        headers = {"Idempotency-Key": key} if key else {}
        delay = 0.5
        deadline = time.monotonic() + REQUEST_PATIENCE
        while True:
            try:
                response = await self.http.post(path, json=body, headers=headers)
                retry = response.status_code >= 500 or response.status_code == 429
                self.count(str(response.status_code), failed=retry)
                if not retry:
                    return response
            except httpx.TransportError as err:
                self.count(type(err).__name__, failed=True)
            if time.monotonic() > deadline:
                self.given_up += 1
                return None
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, 5.0)

    async def run_order(self, order: ShopOrder) -> None:
        body = json.loads(json.dumps(SAMPLE_ORDER))
        body["order_id"] = order.order_id
        body["placed_at"] = datetime.now(UTC).isoformat()
        body["customer"]["email"] = order.email
        body["customer"]["locale"] = "en"
        body["notify"] = {"email": True, "sms": False}
        response = await self.call("/api/orders", body)
        if response is None or response.status_code not in (200, 201):
            order.problems.append(f"start: {_answer(response)}")
            return
        order.started = True
        steps = [
            {"event": "picking_started"},
            {"event": "packed", "carrier": "simulated", "tracking_number": order.tracking_number},
            {"event": "shipped"},
        ]
        for step in steps:
            await asyncio.sleep(STEP_PAUSE)
            path = f"/api/orders/{order.order_id}/fulfillment"
            response = await self.call(path, step, key=f"{order.order_id}:{step['event']}")
            if response is None or response.status_code != 200:
                order.problems.append(f"{step['event']}: {_answer(response)}")
                return
        order.shipped = True


def _answer(response: httpx.Response | None) -> str:
    if response is None:
        return f"gave up after retrying {REQUEST_PATIENCE:g} s"
    return f"{response.status_code} {response.text[:300]}"


async def feed(shop: Shop, orders: list[ShopOrder], seconds: float) -> None:
    began = time.monotonic()
    async with asyncio.TaskGroup() as group:  # cancelled, it cancels every order's task
        for number, order in enumerate(orders):
            await asyncio.sleep(max(0.0, began + number * seconds / len(orders) - time.monotonic()))
            group.create_task(shop.run_order(order))


async def run_faults(stack: Stack, began: float, *, faults: bool = True) -> float:
    """Run the schedule; returns when the last fault was over (its component back), in timeline time.

    Without `faults` (the baseline), returns at the time the last fault would start."""
    for at, fault in SCHEDULE:
        await asyncio.sleep(max(0.0, began + at - time.monotonic()))
        if faults:
            await fault(stack)
    if not faults:
        stack.timeline.note("baseline: no faults; the drain is timed from the last one's place")
    return stack.timeline.now()


async def running_workflows(stack: Stack) -> int | None:
    assert stack.client is not None
    try:
        query = f'TaskQueue="{stack.task_queue}" AND ExecutionStatus="Running"'
        return (await stack.client.count_workflows(query)).count
    except RPCError:
        return None


async def drain(stack: Stack, last_fault: float, patience: float) -> float | None:
    """Seconds from the last fault until no order's workflow is running, or None past `patience`."""
    reported = 0.0
    while True:
        running = await running_workflows(stack)
        since = stack.timeline.now() - last_fault
        if running == 0:
            return since
        if since > patience:
            return None
        if since - reported >= 15:
            reported = since
            stack.timeline.note(f"draining: {running} workflows still running")
        await asyncio.sleep(0.5)


# -- the figures -------------------------------------------------------------------------------


@dataclass
class Figures:
    orders: int = 0
    started: int = 0
    lost: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    same_message_id: list[str] = field(default_factory=list)
    over_count: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    shop_failures: list[str] = field(default_factory=list)
    log_statuses: Counter[str] = field(default_factory=Counter)
    unconfirmed: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    estimate_missed: int = 0
    lost_then_found: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return len(self.same_message_id) + len(self.over_count)

    @property
    def failing(self) -> int:
        return (
            len(self.lost)
            + self.duplicates
            + len(self.stuck)
            + len(self.unfinished)
            + len(self.missing)
            + len(self.shop_failures)
        )


async def gather_figures(stack: Stack, shop: Shop, orders: list[ShopOrder]) -> Figures:
    figures = Figures(orders=len(orders))
    assert stack.client is not None
    mails = mails_by_order(list(stack.sink.messages), figures)
    for order in orders:
        if order.problems:
            figures.shop_failures.append(f"{order.order_id}: {'; '.join(order.problems)}")
        if not order.started:
            continue
        figures.started += 1
        workflow = None
        try:
            workflow = await stack.client.get_workflow_handle(f"order-{order.order_id}").describe()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        stored = await shop.http.get(f"/api/orders/{order.order_id}")
        if workflow is None or stored.status_code == 404:
            where = "no workflow" if workflow is None else "not in the read model"
            figures.lost.append(f"{order.order_id}: {where}")
            continue
        if workflow.status == WorkflowExecutionStatus.RUNNING:
            figures.stuck.append(order.order_id)
        status = stored.json()["status"]
        if status != order.journey.end:
            figures.unfinished.append(f"{order.order_id} ({order.journey.prefix}): {status}")
        log = (await shop.http.get(f"/api/orders/{order.order_id}/notifications")).json()["notifications"]
        check_messages(order, mails.get(order.email, []), log, figures)
        if status != "lost" and any(m["X-Ordertrack-Message"] == "lost" for m in mails.get(order.email, [])):
            figures.lost_then_found.append(f"{order.order_id}: {story(stored.json()['timeline'])}")
    return figures


def story(timeline: list[dict[str, Any]]) -> str:
    """An order's statuses and scans, in seconds after it shipped (why a notice went out)."""
    shipped = next((e for e in timeline if e["kind"] == "status" and e["status"] == "shipped"), None)
    if shipped is None:
        return "never shipped"
    start = datetime.fromisoformat(shipped["at"])
    steps = []
    for entry in timeline:
        at = (datetime.fromisoformat(entry["at"]) - start).total_seconds()
        if entry["kind"] == "status":
            steps.append(f"{entry['status']} {at:+.0f} s")
        elif entry["kind"] == "scan":
            steps.append(f"scan {at:+.0f} s")
    return ", ".join(steps)


def mails_by_order(messages: list[EmailMessage], figures: Figures) -> dict[str, list[EmailMessage]]:
    """The sink's mails by recipient; the same Message-ID twice is a duplicate wherever it is."""
    seen: Counter[str] = Counter()
    by_order: dict[str, list[EmailMessage]] = {}
    for message in messages:
        message_id = str(message["Message-ID"])
        seen[message_id] += 1
        if seen[message_id] == 2:
            figures.same_message_id.append(f"{message['To']}: {message['X-Ordertrack-Message']} {message_id}")
        by_order.setdefault(parseaddr(str(message["To"]))[1].lower(), []).append(message)
        figures.kinds[str(message["X-Ordertrack-Message"])] += 1
    return by_order


def check_messages(
    order: ShopOrder, mails: list[EmailMessage], log: list[dict[str, Any]], figures: Figures
) -> None:
    distinct: dict[str, set[str]] = {}
    for message in mails:
        distinct.setdefault(str(message["X-Ordertrack-Message"]), set()).add(str(message["Message-ID"]))
    for kind, ids in distinct.items():
        allowed = order.journey.at_most.get(kind, 1)
        if len(ids) > allowed:
            figures.over_count.append(f"{order.order_id}: {kind} x{len(ids)} (at most {allowed} expected)")
    for kind in sorted(order.journey.required - distinct.keys()):
        figures.missing.append(f"{order.order_id} ({order.journey.prefix}): no {kind}")
    received = {message_id for ids in distinct.values() for message_id in ids}
    for row in log:
        figures.log_statuses[row["status"]] += 1
        if row["dedupe_key"].startswith("estimate-missed:"):
            figures.estimate_missed += 1
        if row["status"] == "unconfirmed":
            arrived = "arrived" if row["message_id"] in received else "did NOT arrive"
            figures.unconfirmed.append(f"{order.order_id}: {row['kind']} ({arrived})")


def print_figures(
    figures: Figures, stack: Stack, shop: Shop, drained: float | None, drain_timeout: float, took: float
) -> None:
    def listed(name: str, items: list[str]) -> None:
        print(f"  {name:<28} {len(items)}")
        for item in items[:10]:
            print(f"      {item}")
        if len(items) > 10:
            print(f"      ... and {len(items) - 10} more")

    print()
    print("fault timeline (seconds since the bench began):")
    for at, what in stack.timeline.faults:
        print(f"  {at:6.1f}s  {what}")
    if not stack.timeline.faults:
        print("  none (the baseline)")
    print()
    print(f"figures ({figures.orders} orders, {figures.started} started):")
    listed("orders lost", figures.lost)
    print(f"  {'duplicate messages':<28} {figures.duplicates}")
    for item in (figures.same_message_id + figures.over_count)[:10]:
        print(f"      {item}")
    listed("stuck workflows", figures.stuck)
    listed("orders not finished", figures.unfinished)
    listed("messages missing", figures.missing)
    listed("shop requests that failed", figures.shop_failures)
    exits = ", ".join(str(status) for status in Counter(stack.worker.exits)) or "-"
    print(
        f"  {'worker restarts':<28} {len(stack.worker.exits)} "
        f"(exited by itself; statuses {exits}; plus {stack.worker.kills} after the bench's SIGKILLs)"
    )
    drain_text = f"{drained:.1f} s" if drained is not None else f"not drained within {drain_timeout:g} s"
    print(f"  {'time to drain':<28} {drain_text} after the last fault")
    print()
    print(f"messages in the sink: {sum(figures.kinds.values())} ({_counts(figures.kinds)})")
    print(f"notification log: {_counts(figures.log_statuses)}")
    print(f"  delay notices for an estimate passed (polling cut off): {figures.estimate_missed}")
    print(f"  orders told they were lost, then delivered or returned: {len(figures.lost_then_found)}")
    for item in figures.lost_then_found[:5]:
        print(f"      {item}")
    for item in figures.unconfirmed:
        print(f"  unconfirmed: {item}")
    print(f"shop answers: {_counts(shop.answers)}")
    for answer, (first, last) in sorted(shop.failures.items()):
        print(f"  {answer}: from {first:.1f} s to {last:.1f} s")
    errors = _counts(stack.relay.upstream_errors)
    print(f"carrier relay: {stack.relay.connections} connections; upstream errors: {errors}")
    for name, process in stack.processes.items():
        if name != "worker" and process.poll() is not None:
            print(f"  {name} had exited by itself (status {process.returncode}): see {name}.log")
    load = os.getloadavg()
    print(
        f"took {took:.0f} s; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores"
    )


def cpu_used(wall: float) -> str:
    """CPU time of the bench and of every process it started and waited for (all stopped by now)."""
    cpu = sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )
    return (
        f"CPU used by the bench and every process it started: {cpu:.0f} s in {wall:.0f} s "
        f"({cpu / wall:.2f} of a core on average)"
    )


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {count}" for key, count in sorted(counter.items())) or "none"


async def run(
    orders_count: int,
    feed_seconds: float,
    drain_timeout: float,
    *,
    restart_carrier: bool,
    faults: bool,
    keep: bool,
) -> int:
    timeline = Timeline()
    load = os.getloadavg()
    print(f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    workdir = Path(tempfile.mkdtemp(prefix="ordertrack-faults-"))
    stack = Stack(workdir, timeline, restart_carrier=restart_carrier)
    failing = 1
    finished = False
    try:
        await stack.start()
        timeline.note(
            f"stack ready in {workdir} (Temporal :{stack.temporal_port}, API :{stack.http_port}, "
            f"SMTP :{stack.sink.port}, carrier :{stack.relay.port}); feeding {orders_count} orders "
            f"over {feed_seconds:g} s"
        )
        run_tag = f"{random.randrange(36**4):04x}"
        orders = [
            ShopOrder(f"F{run_tag}-{number:04d}", journey)
            for number, journey in zip(range(orders_count), itertools.cycle(JOURNEYS), strict=False)
        ]
        async with httpx.AsyncClient(
            base_url=stack.api, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=REQUEST_TIMEOUT
        ) as http:
            shop = Shop(http, timeline)
            began = time.monotonic()
            fed = asyncio.create_task(feed(shop, orders, feed_seconds))
            try:
                last_fault = await run_faults(stack, began, faults=faults)
                await fed
            finally:
                fed.cancel()
            timeline.note(f"all orders fed; waiting for them to finish (at most {drain_timeout:g} s)")
            drained = await drain(stack, last_fault, drain_timeout)
            timeline.note("drained" if drained is not None else "drain deadline passed")
            figures = await gather_figures(stack, shop, orders)
            print_figures(figures, stack, shop, drained, drain_timeout, timeline.now())
            failing = figures.failing + (drained is None)
            finished = True
    finally:
        await stack.stop()
        if finished:
            print(cpu_used(timeline.now()))
        if failing or keep:
            print(f"logs and databases kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failing else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200, help="orders to start (default 200)")
    parser.add_argument("--feed-seconds", type=float, default=120.0, help="start them over this long")
    parser.add_argument(
        "--drain-timeout", type=float, default=300.0, help="longest wait after the last fault"
    )
    parser.add_argument(
        "--restart-carrier",
        action="store_true",
        help="stop the simulator process instead of cutting it off; it keeps its journeys in memory "
        "only, so they start over and orders see their parcel go back (not a fault of ordertrack's)",
    )
    parser.add_argument(
        "--no-faults", action="store_true", help="the baseline: the same orders and timing, no faults"
    )
    parser.add_argument("--keep", action="store_true", help="keep logs and databases when all is well too")
    arguments = parser.parse_args()
    # A clean environment: the bench's processes get only the settings it gives them.
    for name in list(os.environ):
        if name.startswith(("ORDERTRACK_", "TEMPORAL_")):
            del os.environ[name]

    async def guarded() -> int:
        task = asyncio.current_task()
        assert task is not None
        for stop in (signal.SIGINT, signal.SIGTERM):  # either: stop every process, then exit
            asyncio.get_running_loop().add_signal_handler(stop, task.cancel)
        return await run(
            arguments.orders,
            arguments.feed_seconds,
            arguments.drain_timeout,
            restart_carrier=arguments.restart_carrier,
            faults=not arguments.no_faults,
            keep=arguments.keep,
        )

    try:
        sys.exit(asyncio.run(guarded()))
    except asyncio.CancelledError:
        print("interrupted; every process the bench started is stopped", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
