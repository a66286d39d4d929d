"""A worker for workflow tests: the real activities over SQLite and an SMTP sink, on skipped time.

The carrier is the simulated carrier's own journeys, played on the Temporal server's clock (the
activity's scheduled time), so a three-day journey takes a few seconds on the time-skipping server.
"""

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from activities.carrier import CarrierActivities
from activities.notify import NotifyActivities
from activities.store import StoreActivities
from ordertrack.carriers import journeys
from ordertrack.carriers.registry import CarrierRegistry
from ordertrack.domain.tracking import TrackingSnapshot
from ordertrack.mail.sink import MailSink
from ordertrack.mail.smtp import SmtpMailer
from ordertrack.settings import Settings
from ordertrack.store.migrate import migrate
from ordertrack.store.repository import Store
from workflows.order import OrderWorkflow


class ServerClockCarrier:
    """The simulated carrier's journeys at speed 1, timed by the Temporal server's (skippable) clock."""

    name = journeys.CARRIER

    def __init__(self) -> None:
        self.first_seen: dict[str, datetime] = {}
        self.calls: Counter[str] = Counter()

    async def track(self, tracking_number: str) -> TrackingSnapshot:
        now = activity.info().current_attempt_scheduled_time
        first_seen = self.first_seen.setdefault(tracking_number, now)
        self.calls[tracking_number] += 1
        return journeys.snapshot_at(tracking_number, first_seen, now, speed=1.0)

    def tracking_url(self, tracking_number: str) -> str:
        return f"https://carrier.example/track/{tracking_number}"

    async def aclose(self) -> None:
        return None


@dataclass
class Harness:
    client: Client
    task_queue: str
    store: Store
    sink: MailSink
    carrier: ServerClockCarrier

    def mails_for(self, email: str) -> list[str]:
        return [str(m["Subject"]) for m in self.sink.messages if email in str(m["To"])]


@asynccontextmanager
async def order_worker(
    client: Client, tmp_path: Path, sink: MailSink, task_queue: str
) -> AsyncIterator[Harness]:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}"
    await migrate(database_url)
    store = Store.from_url(database_url)
    carrier = ServerClockCarrier()
    registry = CarrierRegistry([carrier])
    settings = Settings(smtp_host="127.0.0.1", smtp_port=sink.port, database_url=database_url)
    notify = NotifyActivities(
        store,
        SmtpMailer(settings),
        public_url="https://shop.example",
        mail_from=settings.mail_from,
        carrier_url=registry.carrier_url,
    )
    store_activities = StoreActivities(store)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[OrderWorkflow],
        activities=[
            store_activities.save_order,
            store_activities.record_change,
            notify.send_notification,
            CarrierActivities(registry).poll_carrier,
        ],
    ):
        yield Harness(client, task_queue, store, sink, carrier)
    await store.close()
