"""The Temporal worker: builds the client, the activities' resources and the Worker; stops gracefully.

Run it as `ordertrack worker` (production) or inside `ordertrack up` (development). Workers are
stateless beyond Temporal and the database, so any number of them can serve the `orders` queue.
"""

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from temporalio.client import Client
from temporalio.worker import Interceptor, Worker

from activities.carrier import CarrierActivities
from activities.notify import NotifyActivities
from activities.store import StoreActivities
from activities.webhooks import ShopWebhookActivities
from ordertrack.carriers.registry import CarrierRegistry, build_registry
from ordertrack.connection import ConnectionSettingsError, connect
from ordertrack.logs import configure_logging
from ordertrack.mail.smtp import SmtpMailer
from ordertrack.settings import Settings, get_settings
from ordertrack.sms.provider import SmsProvider, build_sms_provider
from ordertrack.store.migrate import migrate
from ordertrack.store.repository import Store
from ordertrack.telemetry import TelemetrySettingsError, worker_telemetry
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
    sms: SmsProvider | None = None,
    support_email: str | None = None,
    review_url: str | None = None,
) -> list[Callable[..., Any]]:
    """Every activity the order workflow runs, bound to this process's database, mailer, SMS provider,
    carriers and shop webhook (no webhook configured: shop events are logged and dropped; no SMS
    provider: `send_sms` fails for good, saying what to set)."""
    webhooks = webhooks or ShopWebhookActivities(None, None)
    notify = NotifyActivities(
        store,
        mailer,
        public_url=public_url,
        mail_from=mail_from,
        carrier_url=registry.carrier_url,
        sms=sms,
        support_email=support_email,
        review_url=review_url,
    )
    store_activities = StoreActivities(store)
    return [
        store_activities.save_order,
        store_activities.record_change,
        notify.send_notification,
        notify.send_sms,
        CarrierActivities(registry).poll_carrier,
        webhooks.deliver_shop_event,
    ]


def worker_options(settings: Settings) -> dict[str, Any]:
    """The Worker's tuning from settings: concurrency, sticky cache, graceful shutdown (unset: SDK
    defaults)."""
    options: dict[str, Any] = {
        "max_cached_workflows": settings.worker_max_cached_workflows,
        "graceful_shutdown_timeout": settings.worker_shutdown_grace,
    }
    if settings.worker_max_concurrent_activities is not None:
        options["max_concurrent_activities"] = settings.worker_max_concurrent_activities
    if settings.worker_max_concurrent_workflow_tasks is not None:
        options["max_concurrent_workflow_tasks"] = settings.worker_max_concurrent_workflow_tasks
    return options


@asynccontextmanager
async def order_worker(
    client: Client, settings: Settings, *, interceptors: Sequence[Interceptor] = ()
) -> AsyncIterator[Worker]:
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
                sms=build_sms_provider(settings),
                support_email=settings.support_email,
                review_url=settings.review_url,
            ),
            interceptors=interceptors,
            **worker_options(settings),
        )


async def run_worker(settings: Settings, stop: asyncio.Event, client: Client | None = None) -> None:
    """Serve the queue until `stop` is set, then finish running activities within the grace period.

    Without a client, connects with the production telemetry (Prometheus runtime, tracing)."""
    telemetry = worker_telemetry(settings) if client is None else None
    try:
        if telemetry is not None:
            client = await connect(settings, telemetry.runtime)
        assert client is not None
        await _serve(client, settings, stop, telemetry.interceptors if telemetry else ())
    finally:
        if telemetry:
            telemetry.shutdown()


async def _serve(
    client: Client, settings: Settings, stop: asyncio.Event, interceptors: Sequence[Interceptor]
) -> None:
    async with order_worker(client, settings, interceptors=interceptors) as worker:
        target = client.service_client.config.target_host
        log.info("worker polling task queue %r on %s (%s)", settings.task_queue, target, client.namespace)
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


def main() -> None:
    configure_logging()
    try:
        asyncio.run(_main())
    except (ConnectionSettingsError, TelemetrySettingsError) as err:  # a setting to fix: no traceback
        log.error("%s", err)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
