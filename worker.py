"""The Temporal worker: builds the client, the activities' resources and the Worker; stops gracefully.

Run it as `ordertrack worker` (production) or inside `ordertrack up` (development). Workers are
stateless beyond Temporal and the database, so any number of them can serve the `orders` queue.

Started before Temporal answers (a node reboot, a compose stack), it waits, retrying with capped
backoff (`connect_patiently`); settings the server will never accept end it with one line and exit
status 2. With `WORKER_HEALTH_BIND` set, `/healthz` says 503 until it polls, then 200.
"""

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from temporalio.client import Client
from temporalio.worker import Interceptor, Worker

from activities.carrier import CarrierActivities
from activities.notify import NotifyActivities
from activities.store import StoreActivities
from activities.webhooks import ShopWebhookActivities
from ordertrack.carriers.registry import CarrierRegistry, build_registry
from ordertrack.connection import connect_options, connect_patiently
from ordertrack.health import WorkerHealth, health_app
from ordertrack.logs import configure_logging
from ordertrack.mail.smtp import SmtpMailer
from ordertrack.serving import listen, serve_app
from ordertrack.settings import Settings, get_settings, split_bind
from ordertrack.sms.provider import SmsProvider, build_sms_provider, build_whatsapp_provider
from ordertrack.startup import one_line_startup_errors, prepare_database
from ordertrack.store.repository import Store
from ordertrack.telemetry import worker_telemetry
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
    whatsapp: SmsProvider | None = None,
    whatsapp_templates: Mapping[str, Mapping[str, str]] | None = None,
    support_email: str | None = None,
    review_url: str | None = None,
) -> list[Callable[..., Any]]:
    """Every activity the order workflow runs, bound to this process's database, mailer, text
    providers, carriers and shop webhook (no webhook configured: shop events are logged and dropped;
    no SMS or WhatsApp provider: `send_sms` or `send_whatsapp` fails for good, saying what to set)."""
    webhooks = webhooks or ShopWebhookActivities(None, None)
    notify = NotifyActivities(
        store,
        mailer,
        public_url=public_url,
        mail_from=mail_from,
        carrier_url=registry.carrier_url,
        carrier_name=registry.display_name,
        sms=sms,
        whatsapp=whatsapp,
        whatsapp_templates=whatsapp_templates,
        support_email=support_email,
        review_url=review_url,
    )
    store_activities = StoreActivities(store)
    return [
        store_activities.save_order,
        store_activities.record_change,
        notify.send_notification,
        notify.send_sms,
        notify.send_whatsapp,
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
    """A ready Worker for the orders queue, with its database (migrated unless `MIGRATE_ON_START`
    is false), mailer, carriers and webhook client open."""
    await prepare_database(settings)
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
                whatsapp=build_whatsapp_provider(settings),
                whatsapp_templates=settings.whatsapp_templates,
                support_email=settings.support_email,
                review_url=settings.review_url,
            ),
            interceptors=interceptors,
            **worker_options(settings),
        )


async def run_worker(settings: Settings, stop: asyncio.Event, client: Client | None = None) -> None:
    """Serve the queue until `stop` is set, then finish running activities within the grace period.

    Without a client, connects with the production telemetry (Prometheus runtime, tracing), waiting
    for the server as long as it takes (or until `stop`)."""
    address = (
        connect_options(settings)["target_host"]
        if client is None
        else client.service_client.config.target_host
    )
    health = WorkerHealth(address, settings.temporal_namespace, settings.task_queue)
    async with _health_endpoint(settings, health):
        telemetry = worker_telemetry(settings) if client is None else None
        try:
            if telemetry is not None:
                client = await connect_patiently(
                    settings, telemetry.runtime, stop=stop, on_failure=health.failed_attempt
                )
            if client is None:  # stopped while waiting for Temporal
                return
            health.state = "starting"
            await _serve(client, settings, stop, telemetry.interceptors if telemetry else (), health)
        finally:
            if telemetry:
                telemetry.shutdown()


@asynccontextmanager
async def _health_endpoint(settings: Settings, health: WorkerHealth) -> AsyncIterator[None]:
    """`/healthz` and `/livez` on `WORKER_HEALTH_BIND` for the block (unset: nothing)."""
    bind = split_bind(settings.worker_health_bind) if settings.worker_health_bind else None
    if bind is None:
        yield
        return
    host, port = bind
    sock = listen(host, port, what="worker health endpoint", moved_by="ORDERTRACK_WORKER_HEALTH_BIND")
    done = asyncio.Event()
    serving = asyncio.create_task(serve_app(health_app(health), host, port, stop=done, sock=sock))
    log.info("worker health on http://%s:%d/healthz", host, port)
    try:
        yield
    finally:
        done.set()
        await serving


async def _serve(
    client: Client,
    settings: Settings,
    stop: asyncio.Event,
    interceptors: Sequence[Interceptor],
    health: WorkerHealth | None = None,
) -> None:
    async with order_worker(client, settings, interceptors=interceptors) as worker:
        target = client.service_client.config.target_host
        log.info("worker polling task queue %r on %s (%s)", settings.task_queue, target, client.namespace)
        running = asyncio.create_task(worker.run())
        if health is not None:
            health.worker, health.state = worker, "polling"
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if health is not None:
            health.state = "stopping"
        if not running.done():
            log.info("shutting down: waiting up to %s for running activities", settings.worker_shutdown_grace)
            await worker.shutdown()
        stopped.cancel()
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
    """`ordertrack worker`: a start-up failure a person can fix (a bad setting, a busy health port,
    an unreachable database, settings Temporal refuses) is one line on stderr and exit status 2."""
    configure_logging()
    with one_line_startup_errors():
        asyncio.run(_main())


if __name__ == "__main__":
    main()
