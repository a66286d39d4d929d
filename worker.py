"""The Temporal worker: builds the client, the activities' resources and the Worker; stops gracefully.

Run it as `ordertrack worker` (production) or inside `ordertrack up` (development). Workers are
stateless beyond Temporal and the database, so any number of them can serve the `orders` queue.
"""

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.carrier import CarrierActivities
from activities.notify import NotifyActivities
from activities.store import StoreActivities
from activities.webhooks import ShopWebhookActivities
from ordertrack.carriers.registry import CarrierRegistry, build_registry
from ordertrack.mail.smtp import SmtpMailer
from ordertrack.settings import Settings, get_settings
from ordertrack.store.migrate import migrate
from ordertrack.store.repository import Store
from starter.client import connect
from workflows.order import OrderWorkflow

log = logging.getLogger("ordertrack.worker")


def order_activities(
    store: Store,
    registry: CarrierRegistry,
    mailer: SmtpMailer,
    *,
    public_url: str,
    mail_from: str,
    webhooks: ShopWebhookActivities | None = None,
) -> list[Callable[..., Any]]:
    """Every activity the order workflow runs, bound to this process's database, mailer, carriers
    and shop webhook (none configured: shop events are logged and dropped)."""
    webhooks = webhooks or ShopWebhookActivities(None, None)
    notify = NotifyActivities(
        store, mailer, public_url=public_url, mail_from=mail_from, carrier_url=registry.carrier_url
    )
    store_activities = StoreActivities(store)
    return [
        store_activities.save_order,
        store_activities.record_change,
        notify.send_notification,
        CarrierActivities(registry).poll_carrier,
        webhooks.deliver_shop_event,
    ]


@asynccontextmanager
async def order_worker(client: Client, settings: Settings) -> AsyncIterator[Worker]:
    """A ready Worker for the orders queue, with its database, mailer, carriers and webhook client open."""
    await migrate(settings.database_url)
    async with AsyncExitStack() as stack:
        store = Store.from_url(settings.database_url)
        stack.push_async_callback(store.close)
        registry = build_registry(settings)
        stack.push_async_callback(registry.aclose)
        secret = settings.shop_webhook_secret
        webhooks = ShopWebhookActivities(
            settings.shop_webhook_url, secret.get_secret_value() if secret else None
        )
        stack.push_async_callback(webhooks.aclose)
        yield Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[OrderWorkflow],
            activities=order_activities(
                store,
                registry,
                SmtpMailer(settings),
                public_url=settings.public_url,
                mail_from=settings.mail_from,
                webhooks=webhooks,
            ),
            graceful_shutdown_timeout=settings.worker_shutdown_grace,
        )


async def run_worker(settings: Settings, stop: asyncio.Event, client: Client | None = None) -> None:
    """Serve the queue until `stop` is set, then finish running activities within the grace period."""
    client = client or await connect(settings)
    async with order_worker(client, settings) as worker:
        log.info("worker polling task queue %r on %s", settings.task_queue, settings.temporal_address)
        running = asyncio.create_task(worker.run())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not running.done():
            log.info("shutting down: waiting up to %s for running activities", settings.worker_shutdown_grace)
            await worker.shutdown()
        await running


def stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def _main() -> None:
    stop = asyncio.Event()
    stop_on_signals(stop)
    await run_worker(get_settings(), stop)


def configure_logging() -> None:
    """One line per thing that happened; per-request chatter from libraries only on warnings."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpcore", "mail.log", "alembic.runtime.migration"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def main() -> None:
    configure_logging()
    asyncio.run(_main())


if __name__ == "__main__":
    main()
