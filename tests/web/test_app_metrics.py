"""The application's counters on the worker's own Prometheus endpoint (`ORDERTRACK_METRICS_BIND`),
beside the SDK's: a real worker with the production telemetry, a real order, a real webhook receiver."""

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from ordertrack.mail.sink import MailSink
from ordertrack.settings import Settings
from ordertrack.telemetry import WorkerTelemetry, worker_telemetry
from tests.conftest import free_port
from tests.web.conftest import api_settings
from tests.web.conftest import running_api as running_api
from tests.workflows.test_shop_webhooks import SECRET, Receiver
from tests.workflows.test_shop_webhooks import receiver as receiver

SCRAPE_TIMEOUT = 60.0  # seconds for every outcome to be counted on a loaded machine


def counted(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of counter `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        found = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if found and all(f'{key}="{value}"' in found.group(1) for key, value in labels.items()):
            total += float(found.group(2))
    return total


@pytest.fixture
def telemetry() -> Iterator[tuple[WorkerTelemetry, str]]:
    bind = f"127.0.0.1:{free_port()}"
    built = worker_telemetry(Settings(metrics_bind=bind))  # as `ordertrack worker` builds it
    yield built, f"http://{bind}/metrics"
    built.shutdown()


async def test_messages_carrier_calls_and_shop_webhooks_are_counted_on_the_workers_endpoint(
    dev_env: WorkflowEnvironment,
    tmp_path: Path,
    mail_sink: MailSink,
    receiver: Receiver,
    telemetry: tuple[WorkerTelemetry, str],
) -> None:
    built, endpoint = telemetry
    # The first event fails once and is then delivered; the shop refuses the second for good.
    receiver.answer = lambda n: {0: 500, 1: 200}.get(n, 400)
    settings = api_settings(
        tmp_path, mail_sink.port, shop_webhook_url=receiver.url, shop_webhook_secret=SECRET
    )
    client = await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=dev_env.client.namespace,
        data_converter=pydantic_data_converter,
        runtime=built.runtime,
    )
    async with running_api(client, settings, mail_sink) as api, httpx.AsyncClient() as http:
        order_id, started = await api.start()
        assert started.status_code == 201, started.text
        await api.read(order_id, until="confirmed")
        shipped = await api.http.post(
            f"/api/orders/{order_id}/fulfillment",
            json={"event": "shipped", "carrier": "simulated", "tracking_number": f"SIM-ONTIME-{order_id}"},
            headers=api.shop,
        )
        assert shipped.status_code == 200, shipped.text

        expected = {
            (
                "ordertrack_messages_total",
                ("channel", "email"),
                ("kind", "confirmation"),
                ("outcome", "sent"),
            ): 1,
            ("ordertrack_messages_total", ("channel", "email"), ("kind", "shipped"), ("outcome", "sent")): 1,
            # Nothing answers at the carrier's address in these settings.
            ("ordertrack_carrier_calls_total", ("carrier", "simulated"), ("outcome", "error")): 1,
            ("ordertrack_shop_webhook_deliveries_total", ("outcome", "failed")): 1,
            ("ordertrack_shop_webhook_deliveries_total", ("outcome", "delivered")): 1,
            ("ordertrack_shop_webhook_deliveries_total", ("outcome", "rejected")): 1,
            ("ordertrack_shop_webhook_give_ups_total",): 1,
        }
        async with asyncio.timeout(SCRAPE_TIMEOUT):
            while True:
                text = (await http.get(endpoint)).text
                missing = [
                    key for key, least in expected.items() if counted(text, key[0], **dict(key[1:])) < least
                ]
                if not missing:
                    break
                await asyncio.sleep(0.5)

    assert "temporal_workflow_task_execution_latency" in text  # the SDK's own, on the same endpoint
    assert f'task_queue="{settings.task_queue}"' in text
    assert order_id not in text  # no order ids as labels
    if os.environ.get("SHOW_METRICS") == "1":
        print("\n".join(line for line in text.splitlines() if line.startswith("ordertrack_")))
