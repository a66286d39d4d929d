"""A worker for workflow tests: the real activities over SQLite and an SMTP sink, on skipped time.

The carrier is the simulated carrier's own journeys, played on the Temporal server's clock (the
activity's scheduled time), so a three-day journey takes a few seconds on the time-skipping server.
"""

from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.webhooks import ShopWebhookActivities
from ordertrack.carriers import journeys
from ordertrack.carriers.registry import CarrierRegistry
from ordertrack.domain.statuses import PRE_SHIPMENT, OrderStatus
from ordertrack.domain.tracking import TrackingSnapshot
from ordertrack.domain.view import OrderView
from ordertrack.mail.sink import MailSink
from ordertrack.mail.smtp import SmtpMailer
from ordertrack.settings import Settings
from ordertrack.sms.sink import DEV_FROM, DEV_WHATSAPP_TEMPLATES, SmsMessage, SmsSink
from ordertrack.sms.twilio import TwilioSms, whatsapp_address
from ordertrack.store.migrate import migrate
from ordertrack.store.repository import Store
from tests.conftest import eventually
from tests.workflows.costs import AttemptCounter
from worker import order_activities
from workflows.order import OrderWorkflow

PRE_CARRIER = PRE_SHIPMENT | {OrderStatus.SHIPPED}  # the carrier has not answered yet


class ServerClockCarrier:
    """The simulated carrier's journeys at speed 1, timed by the Temporal server's (skippable) clock:
    the poll attempt's start (the time-skipping server stamps a retry's `current_attempt_scheduled_time`
    with the previous attempt's failure, a whole cadence early)."""

    name = journeys.CARRIER
    display_name = "Simulated Carrier"

    def __init__(self) -> None:
        self.journeys: tuple[journeys.Journey, ...] = journeys.JOURNEYS  # a test may add its own
        self.first_seen: dict[str, datetime] = {}
        self.calls: Counter[str] = Counter()
        self.times: defaultdict[str, list[datetime]] = defaultdict(list)  # when each call was made

    async def track(self, tracking_number: str) -> TrackingSnapshot:
        now = activity.info().started_time
        first_seen = self.first_seen.setdefault(tracking_number, now)
        self.calls[tracking_number] += 1
        self.times[tracking_number].append(now)
        return journeys.snapshot_at(tracking_number, first_seen, now, speed=1.0, journeys=self.journeys)

    def tracking_url(self, tracking_number: str) -> str:
        return f"https://carrier.example/track/{tracking_number}"

    async def aclose(self) -> None:
        return None


@dataclass
class Harness:
    env: WorkflowEnvironment
    task_queue: str
    store: Store
    sink: MailSink
    carrier: ServerClockCarrier
    attempts: Counter[str]  # activity attempts the worker ran, by activity type (`costs.py`)
    started: list[str] = field(default_factory=list)

    @property
    def client(self) -> Client:
        return self.env.client

    sms: SmsSink | None = None

    def mails_for(self, email: str) -> list[EmailMessage]:
        return [m for m in self.sink.messages if email in str(m["To"])]

    def kinds_mailed(self, email: str) -> list[str]:
        """The kinds of the mails `email` received, in order."""
        return [str(m["X-Ordertrack-Message"]) for m in self.mails_for(email)]

    def texts_for(self, phone: str) -> list[str]:
        return [text.body for text in self.sms.messages if text.to == phone] if self.sms else []

    def whatsapp_for(self, phone: str) -> list[SmsMessage]:
        return [m for m in self.sms.messages if m.to == whatsapp_address(phone)] if self.sms else []

    async def advance_until(
        self,
        handle: WorkflowHandle[Any, OrderView],
        done: Callable[[OrderView], bool] | None = None,
        step: timedelta = timedelta(hours=6),
        limit: timedelta = timedelta(days=40),
    ) -> OrderView | None:
        """Move the server's clock in steps until `done(view)` or the workflow closes; the view
        `done` accepted (None without `done`: the order is queried only to ask it, since a query
        takes a workflow task of its own when it comes while one is open, and the cost bench counts
        them).

        The time-skipping server skips timers on its own only while nothing holds it back, and an
        activity retried for a while (the carrier poll) does; `sleep` moves the clock regardless.
        """
        waited = timedelta(0)
        while True:
            description = await handle.describe()
            view = await handle.query(OrderWorkflow.status) if done else None
            if (done and view and done(view)) or description.status != WorkflowExecutionStatus.RUNNING:
                return view
            assert waited < limit, f"still {description.status} after {waited}"
            await self.env.sleep(step)
            waited += step

    async def carrier_answered(self, handle: WorkflowHandle[Any, OrderView]) -> None:
        """Wait, the server's clock standing still, for the carrier's first answer to reach the order.

        For a test that stops the polling (a push, a correction) right after shipping: the workflow
        task would cancel the first poll just as it completes. A real server fails that task and
        retries it with the answer; the time-skipping server then fails it again, or refuses the
        update it carried ("Already accepted update"), and the order hangs.
        """

        async def answered() -> bool:
            return (await handle.query(OrderWorkflow.status)).status not in PRE_CARRIER

        await eventually(answered, "the carrier's first answer")

    async def terminate_leftovers(self) -> None:
        """Orders a test left running would hold the shared server's clock back for the next test."""
        for workflow_id in self.started:
            handle = self.client.get_workflow_handle(workflow_id)
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test finished")

    async def run_to_end(self, handle: WorkflowHandle[Any, OrderView]) -> OrderView:
        await self.advance_until(handle)
        return await handle.result()


REVIEW_URL = "https://shop.example/review/{order_id}"


def _texts(sink: SmsSink, sender: str) -> TwilioSms:
    return TwilioSms(sink.url, account_sid=sink.account_sid, auth_token=sink.auth_token, from_number=sender)


@asynccontextmanager
async def order_worker(
    env: WorkflowEnvironment,
    tmp_path: Path,
    sink: MailSink,
    task_queue: str,
    webhooks: ShopWebhookActivities | None = None,
    sms: SmsSink | None = None,
    workflow: type = OrderWorkflow,
    review_url: str | None = REVIEW_URL,
) -> AsyncIterator[Harness]:
    """`workflow`: OrderWorkflow, or a stand-in under its name (the bench's path before a patch).
    `sms`: texts and WhatsApp messages go to this sink (WhatsApp with a template for every text)."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}"
    await migrate(database_url)
    store = Store.from_url(database_url)
    carrier = ServerClockCarrier()
    counter = AttemptCounter()
    registry = CarrierRegistry([carrier])
    settings = Settings(smtp_host="127.0.0.1", smtp_port=sink.port, database_url=database_url)
    activities = order_activities(
        store,
        registry,
        SmtpMailer(settings),
        public_url="https://shop.example",
        mail_from=settings.mail_from,
        webhooks=webhooks,
        sms=_texts(sms, DEV_FROM) if sms else None,
        whatsapp=_texts(sms, whatsapp_address(DEV_FROM)) if sms else None,
        whatsapp_templates=DEV_WHATSAPP_TEMPLATES,
        review_url=review_url,
    )
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[workflow],
        activities=activities,
        interceptors=[counter],
    ):
        harness = Harness(env, task_queue, store, sink, carrier, counter.attempts, sms=sms)
        yield harness
        await harness.terminate_leftovers()
    await store.close()
