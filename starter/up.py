"""`ordertrack up`: the whole system on embedded defaults, in one terminal; Ctrl-C stops it all.

Temporal dev server (state in `var/temporal.db`, UI on :8233), the worker, a local SMTP sink that
keeps every mail under `var/mail/`, an SMS sink that keeps every text under `var/sms/`, and the
simulated carrier; `--demo` also feeds sample orders.

Every port is checked before anything starts: one that is taken (another `ordertrack up`, a mail
catcher on 1025) ends the command with one line naming it and the setting or flag that moves it.
"""

import asyncio
import contextlib
import logging
import signal
import subprocess
from dataclasses import dataclass
from datetime import time, timedelta
from urllib.parse import urlsplit

from pydantic import SecretStr
from temporalio.client import Client
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig

from ordertrack.carriers.simulator import FaultConfig, serve_simulator
from ordertrack.connection import connect
from ordertrack.logs import configure_logging
from ordertrack.mail.sink import MailSink
from ordertrack.serving import listen, port_problem
from ordertrack.settings import VAR_DIR, ApiKey, Settings, split_bind
from ordertrack.sms.sink import DEFAULT_PORT as SMS_SINK_PORT
from ordertrack.sms.sink import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, DEV_FROM, SmsSink
from ordertrack.startup import StartupError, describe, migrate_or_explain
from ordertrack.web.server import placements, serve
from starter.devserver import start_dev_server
from worker import run_worker

log = logging.getLogger("ordertrack.up")

UI_PORT = 8233
HTTP_PORT = 8000
DEV_METRICS_BIND = "127.0.0.1:9465"  # the HTTP server's /metrics under `up`
TEMPORAL_LOG = VAR_DIR / "temporal.log"


@dataclass(frozen=True)
class UpPorts:
    """The ports `up` serves on that no setting names (`--port`, `--ui-port`, `--sms-port`)."""

    http: int = HTTP_PORT
    ui: int = UI_PORT
    sms: int = SMS_SINK_PORT

    @property
    def sms_sink_url(self) -> str:
        return f"http://127.0.0.1:{self.sms}"


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
    "payment_reminder_before": timedelta(seconds=20),
    "estimate_slip": timedelta(seconds=12),
    "failed_attempt_follow_up": timedelta(seconds=4),
    "review_without_delivery_after": timedelta(minutes=2),
    # Quiet hours off: a demo day lasts 24 s, so waiting for 08:00 would stall it for real hours.
    "daytime_starts": time(0, 0),
    "daytime_ends": time(0, 0),
}


async def wait_for_temporal(
    settings: Settings,
    runtime: Runtime,
    patience: float = 60.0,
    server: subprocess.Popen[bytes] | None = None,
) -> Client:
    """Connect once the dev server answers (it takes a few seconds to start); a dev server that
    exits or stays silent is a `StartupError` pointing at its log."""
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        try:
            return await connect(settings, runtime)
        except RuntimeError:
            if server is not None and server.poll() is not None:
                raise StartupError(
                    f"the Temporal dev server exited at start (status {server.returncode}); "
                    f"its log is {TEMPORAL_LOG}"
                ) from None
            if asyncio.get_running_loop().time() > deadline:
                raise StartupError(
                    f"the Temporal dev server did not answer on {settings.temporal_address} within "
                    f"{patience:.0f} s; its log is {TEMPORAL_LOG}"
                ) from None
            await asyncio.sleep(0.5)


def _temporal_port(settings: Settings) -> int:
    host, _, port = settings.temporal_address.rpartition(":")
    if not host or not port.isdigit():
        raise StartupError(
            f"ORDERTRACK_TEMPORAL_ADDRESS={settings.temporal_address!r}: `up` needs host:port, "
            "e.g. localhost:7233"
        )
    return int(port)


def check_ports(settings: Settings, ports: UpPorts) -> None:
    """Every port `up` will serve on is free now, or a `StartupError` names the first one taken and
    what moves it; nothing has started yet, so there is nothing to stop."""
    sim = urlsplit(settings.simulated_carrier_url)
    wanted = [
        ("Temporal dev server", "127.0.0.1", _temporal_port(settings), "ORDERTRACK_TEMPORAL_ADDRESS"),
        ("Temporal UI", "127.0.0.1", ports.ui, "--ui-port"),
        ("HTTP server", "127.0.0.1", ports.http, "--port"),
        ("SMTP sink", settings.smtp_host, settings.smtp_port, "ORDERTRACK_SMTP_PORT"),
        (
            "simulated carrier",
            sim.hostname or "127.0.0.1",
            sim.port or 8010,
            "ORDERTRACK_SIMULATED_CARRIER_URL",
        ),
    ]
    if _texts_to_sink(settings, ports):
        wanted.append(("SMS sink", "127.0.0.1", ports.sms, "--sms-port"))
    binds = [("metrics server", settings.http_metrics_bind, "ORDERTRACK_HTTP_METRICS_BIND")]
    if settings.encryption_keys:
        binds.append(("codec server", settings.codec_bind, "ORDERTRACK_CODEC_BIND"))
    for what, bind, moved_by in binds:
        if bind and (address := split_bind(bind)):
            wanted.append((what, *address, moved_by))
    for what, host, port, moved_by in wanted:
        listen(host, port, what=what, moved_by=moved_by).close()


async def _stack(settings: Settings, demo: bool, ports: UpPorts) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    await migrate_or_explain(settings.database_url)
    # With encryption on, the UI decodes payloads through this process's codec server: behind its
    # token on the HTTP port, else on its own loopback listener.
    codec_endpoint = None
    if settings.encryption_keys and settings.codec_auth_token is not None:
        codec_endpoint = f"http://127.0.0.1:{ports.http}/codec"
    elif settings.encryption_keys and settings.codec_bind:
        codec_endpoint = f"http://{settings.codec_bind}/codec"
    server = start_dev_server(
        port=_temporal_port(settings),
        ui_port=ports.ui,
        db_file=VAR_DIR / "temporal.db",
        log_file=TEMPORAL_LOG,
        ui_codec_endpoint=codec_endpoint,
    )
    sink = MailSink(VAR_DIR / "mail", host=settings.smtp_host, port=settings.smtp_port)
    sms_sink = SmsSink(VAR_DIR / "sms", port=ports.sms) if _texts_to_sink(settings, ports) else None
    tasks: list[asyncio.Task[None]] = []
    failed: BaseException | None = None
    try:
        # One Runtime for the worker and the HTTP server, so /metrics shows the worker's SDK metrics.
        sdk_metrics = MetricBuffer(100_000)
        runtime = Runtime(telemetry=TelemetryConfig(metrics=sdk_metrics))
        client = await wait_for_temporal(settings, runtime, server=server)
        log.info("Temporal dev server on %s, UI at http://localhost:%d", settings.temporal_address, ports.ui)
        for placement in placements(settings):
            log.info("%s", placement)
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
        try:
            sink.start()
        except OSError as err:  # taken since check_ports looked
            raise port_problem(
                "SMTP sink", settings.smtp_host, settings.smtp_port, err, "ORDERTRACK_SMTP_PORT"
            ) from None
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
                    sim.hostname or "127.0.0.1",
                    sim.port or 8010,
                    speed,
                    FaultConfig(),
                    stop=stop,
                    moved_by="ORDERTRACK_SIMULATED_CARRIER_URL",
                ),
                name="carrier-sim",
            ),
            asyncio.create_task(run_worker(settings, stop, client), name="worker"),
            asyncio.create_task(
                serve(settings, "127.0.0.1", ports.http, stop=stop, temporal=client, sdk_metrics=sdk_metrics),
                name="http",
            ),
        ]
        tasks.extend(services)
        log.info("simulated carrier on %s at %gx", settings.simulated_carrier_url, speed)
        log.info("HTTP API and tracking pages on http://127.0.0.1:%d (docs at /docs)", ports.http)
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
            if task.done() and not task.cancelled() and (error := task.exception()):
                if describe(error) is None:
                    log.error("%s stopped: %s", task.get_name(), error)
                failed = failed or error
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
    if failed is not None:  # a service that could not start: the caller says why in one line
        raise failed


def _texts_to_sink(settings: Settings, ports: UpPorts) -> bool:
    """Texts go to the local SMS sink unless a real provider is configured."""
    return settings.sms_provider_url == ports.sms_sink_url


def run_stack(settings: Settings, *, demo: bool, ports: UpPorts | None = None) -> None:
    """Run the stack until Ctrl-C; a port taken, a database that cannot be opened or a dev server
    that does not start is a `StartupError`."""
    ports = ports or UpPorts()
    configure_logging()
    VAR_DIR.mkdir(exist_ok=True)
    given = settings.model_fields_set
    if not settings.api_keys:
        settings = settings.model_copy(update={"api_keys": DEV_API_KEYS})
    if "public_url" not in given:  # the tracking links point at this process's HTTP port
        settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{ports.http}"})
    if "codec_cors_origins" not in given:  # the dev UI's own origin may call the codec server
        origins = [f"http://localhost:{ports.ui}", f"http://127.0.0.1:{ports.ui}"]
        settings = settings.model_copy(update={"codec_cors_origins": origins})
    if settings.http_metrics_bind is None and settings.metrics_token is None:  # metrics on loopback
        settings = settings.model_copy(update={"http_metrics_bind": DEV_METRICS_BIND})
    if settings.sms_account_sid is None:
        settings = settings.model_copy(
            update={
                "sms_provider_url": ports.sms_sink_url,
                "sms_account_sid": DEV_ACCOUNT_SID,
                "sms_auth_token": SecretStr(DEV_AUTH_TOKEN),
                "sms_from": DEV_FROM,
            }
        )
    if demo:
        settings = settings.model_copy(update={**DEMO_POLICY, "simulated_carrier_speed": DEMO_SPEED})
    check_ports(settings, ports)
    asyncio.run(_stack(settings, demo, ports))
