"""`ordertrack up`: the whole system on embedded defaults, in one terminal; Ctrl-C stops it all.

Temporal dev server (state in `var/temporal.db`, UI on :8233), the worker, a local SMTP sink that
keeps every mail under `var/mail/`, an SMS sink that keeps every text under `var/sms/`, and the
simulated carrier; `--demo` also feeds sample orders.
"""

import asyncio
import contextlib
import logging
import signal
from datetime import time, timedelta
from urllib.parse import urlsplit

from pydantic import SecretStr
from temporalio.client import Client
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig

from ordertrack.carriers.simulator import FaultConfig, serve_simulator
from ordertrack.mail.sink import MailSink
from ordertrack.settings import VAR_DIR, ApiKey, Settings
from ordertrack.sms.sink import DEFAULT_PORT as SMS_SINK_PORT
from ordertrack.sms.sink import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, DEV_FROM, SmsSink
from ordertrack.web.server import serve
from starter.client import connect
from starter.devserver import start_dev_server
from worker import configure_logging, run_worker

log = logging.getLogger("ordertrack.up")

UI_PORT = 8233
HTTP_PORT = 8000
SMS_SINK_URL = f"http://127.0.0.1:{SMS_SINK_PORT}"
# Embedded defaults for a laptop only: `ordertrack serve` in production has no keys unless given.
DEV_API_KEYS = {
    "dev-shop-key": ApiKey(role="shop", name="dev shop"),
    "dev-operator-key": ApiKey(role="operator", name="dev operator"),
}
# Demo: a carrier day passes in 24 s, and the policy is scaled to match.
DEMO_SPEED = 3600.0
DEMO_POLICY = {
    "carrier_poll_interval": timedelta(seconds=2),
    # One pace: the adaptive one follows the customer's real days and nights, not the demo's.
    "carrier_poll_min": timedelta(seconds=2),
    "carrier_poll_max": timedelta(seconds=2),
    "ship_by": timedelta(seconds=90),
    "stale_tracking_after": timedelta(seconds=40),
    "review_request_delay": timedelta(seconds=30),
    "payment_timeout": timedelta(seconds=60),
    "estimate_slip": timedelta(seconds=12),
    "failed_attempt_follow_up": timedelta(seconds=4),
    "review_without_delivery_after": timedelta(minutes=2),
    # Quiet hours off: a demo day lasts 24 s, so waiting for 08:00 would stall it for real hours.
    "daytime_starts": time(0, 0),
    "daytime_ends": time(0, 0),
}


async def wait_for_temporal(settings: Settings, runtime: Runtime, patience: float = 60.0) -> Client:
    """Connect once the dev server answers (it takes a few seconds to start)."""
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        try:
            return await connect(settings, runtime)
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _stack(settings: Settings, demo: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    port = int(settings.temporal_address.rsplit(":", 1)[1])
    # With encryption on, the UI decodes payloads through this process's codec server.
    codec_endpoint = f"http://127.0.0.1:{HTTP_PORT}/codec" if settings.encryption_keys else None
    server = start_dev_server(
        port=port,
        ui_port=UI_PORT,
        db_file=VAR_DIR / "temporal.db",
        log_file=VAR_DIR / "temporal.log",
        ui_codec_endpoint=codec_endpoint,
    )
    sink = MailSink(VAR_DIR / "mail", host=settings.smtp_host, port=settings.smtp_port)
    sms_sink = SmsSink(VAR_DIR / "sms", port=SMS_SINK_PORT) if _texts_to_sink(settings) else None
    tasks: list[asyncio.Task[None]] = []
    try:
        # One Runtime for the worker and the HTTP server, so /metrics shows the worker's SDK metrics.
        sdk_metrics = MetricBuffer(100_000)
        client = await wait_for_temporal(settings, Runtime(telemetry=TelemetryConfig(metrics=sdk_metrics)))
        log.info("Temporal dev server on %s, UI at http://localhost:%d", settings.temporal_address, UI_PORT)
        if codec_endpoint:
            log.info(
                "payloads encrypted with key %r; the UI decodes them through %s",
                settings.encryption_key_id,
                codec_endpoint,
            )
            if settings.codec_auth_token is not None:
                log.warning(
                    "ORDERTRACK_CODEC_AUTH_TOKEN is set: the dev server's UI cannot send it over plain "
                    "HTTP, so it will show encrypted payloads"
                )
        sink.start()
        log.info(
            "SMTP sink on %s:%d, mails kept in %s", settings.smtp_host, settings.smtp_port, VAR_DIR / "mail"
        )
        if sms_sink is not None:
            sms_sink.start()
            log.info("SMS sink on %s, texts kept in %s", sms_sink.url, VAR_DIR / "sms")
        sim = urlsplit(settings.simulated_carrier_url)
        speed = settings.simulated_carrier_speed
        services = [
            asyncio.create_task(
                serve_simulator(
                    sim.hostname or "127.0.0.1", sim.port or 8010, speed, FaultConfig(), stop=stop
                ),
                name="carrier-sim",
            ),
            asyncio.create_task(run_worker(settings, stop, client), name="worker"),
            asyncio.create_task(
                serve(settings, "127.0.0.1", HTTP_PORT, stop=stop, temporal=client, sdk_metrics=sdk_metrics),
                name="http",
            ),
        ]
        tasks.extend(services)
        log.info("simulated carrier on %s at %gx", settings.simulated_carrier_url, speed)
        log.info("HTTP API and tracking pages on http://127.0.0.1:%d (docs at /docs)", HTTP_PORT)
        if settings.api_keys is DEV_API_KEYS:
            log.info("development API keys: dev-shop-key (shop), dev-operator-key (operator)")
        if demo:
            from starter.demo import feed_demo_orders

            tasks.append(asyncio.create_task(feed_demo_orders(client, settings), name="demo"))
        log.info("ready; Ctrl-C stops everything")
        # Runs until Ctrl-C, or until a service stops by itself (a port taken, a lost server).
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([stopped, *services], return_when=asyncio.FIRST_COMPLETED)
        for task in services:
            if task.done() and not task.cancelled() and task.exception():
                log.error("%s stopped: %s", task.get_name(), task.exception())
    finally:
        log.info("stopping")
        stop.set()
        for task in tasks:
            if task.get_name() == "demo":
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        sink.stop()
        if sms_sink is not None:
            sms_sink.stop()
        server.terminate()
        with contextlib.suppress(Exception):
            server.wait(timeout=15)
        log.info("stopped")


def _texts_to_sink(settings: Settings) -> bool:
    """Texts go to the local SMS sink unless a real provider is configured."""
    return settings.sms_provider_url == SMS_SINK_URL


def run_stack(settings: Settings, *, demo: bool) -> None:
    configure_logging()
    VAR_DIR.mkdir(exist_ok=True)
    if not settings.api_keys:
        settings = settings.model_copy(update={"api_keys": DEV_API_KEYS})
    if settings.sms_account_sid is None:
        settings = settings.model_copy(
            update={
                "sms_provider_url": SMS_SINK_URL,
                "sms_account_sid": DEV_ACCOUNT_SID,
                "sms_auth_token": SecretStr(DEV_AUTH_TOKEN),
                "sms_from": DEV_FROM,
            }
        )
    if demo:
        settings = settings.model_copy(update={**DEMO_POLICY, "simulated_carrier_speed": DEMO_SPEED})
    asyncio.run(_stack(settings, demo))
