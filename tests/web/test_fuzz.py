"""Property-based fuzzing of the API from its own OpenAPI schema (schemathesis): no input gets a 5xx.

The app runs under uvicorn on a real port, on its own thread and event loop, with its own Temporal
client (to the session's dev server) and an in-process worker: schemathesis calls are synchronous,
so the server must keep running while a test blocks this thread.
"""

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from ordertrack.mail.sink import MailSink
from ordertrack.serving import serve_app
from ordertrack.web.app import create_app
from tests.conftest import free_port
from tests.web.conftest import METRICS_TOKEN, OPERATOR_KEY, api_settings
from worker import order_worker

Stopper = tuple[asyncio.AbstractEventLoop, asyncio.Event]


@dataclass
class Server:
    base_url: str
    errors: list[BaseException]


def _run_server(
    target_host: str, namespace: str, tmp_path: Path, smtp_port: int, port: int,
    ready: threading.Event, stop: list[Stopper], errors: list[BaseException],
) -> None:  # fmt: skip
    async def main() -> None:
        client = await Client.connect(
            target_host, namespace=namespace, data_converter=pydantic_data_converter
        )
        settings = api_settings(tmp_path, smtp_port)
        stopping = asyncio.Event()
        stop.append((asyncio.get_running_loop(), stopping))
        async with order_worker(client, settings) as worker:
            running = asyncio.create_task(worker.run())
            serving = asyncio.create_task(
                serve_app(create_app(settings, temporal=client), "127.0.0.1", port, stop=stopping)
            )
            while not ready.is_set() and not serving.done():
                await asyncio.sleep(0.05)
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    ready.set()
                except OSError:
                    pass
            await serving
            await worker.shutdown()
            await running

    try:
        asyncio.run(main())
    except BaseException as err:  # reported by the fixture
        errors.append(err)
        ready.set()


@pytest.fixture(scope="module")
def fuzz_server(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp_path = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    ready, stop, errors = threading.Event(), list[Stopper](), list[BaseException]()
    with MailSink(tmp_path / "mail", port=free_port()) as sink:
        thread = threading.Thread(
            target=_run_server,
            args=(
                dev_env.client.service_client.config.target_host,
                dev_env.client.namespace,
                tmp_path,
                sink.port,
                port,
                ready,
                stop,
                errors,
            ),
            daemon=True,
        )
        thread.start()
        assert ready.wait(30), "the fuzzing server did not start"
        assert not errors, errors
        yield Server(base_url=f"http://127.0.0.1:{port}", errors=errors)
        for loop, stopping in stop:
            loop.call_soon_threadsafe(stopping.set)
        thread.join(30)
    assert not errors, errors


def _openapi() -> dict[str, Any]:
    """The app's schema, built without starting it (its lifespan opens nothing until served)."""
    return create_app(api_settings(Path("/nonexistent"), 0)).openapi()


# Loaded at collection: schemathesis' lazy `from_fixture` does not work with this pytest.
schema = schemathesis.openapi.from_dict(_openapi())
# One test per operation, named after it (schemathesis' own `parametrize` gives every case the same
# node id, which pytest-xdist cannot tell apart).
OPERATIONS = [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_no_input_gets_a_server_error(operation: APIOperation, fuzz_server: Server) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(
            base_url=fuzz_server.base_url,
            headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
            checks=[not_a_server_error],
            timeout=30,
        )

    call()


def test_the_fuzzer_reached_every_operation(fuzz_server: Server) -> None:
    scraper = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    text = requests.get(f"{fuzz_server.base_url}/metrics", headers=scraper, timeout=10).text
    seen = [line for line in text.splitlines() if line.startswith("ordertrack_http_requests_total{")]
    assert not [line for line in seen if 'status="5' in line]
    for route in schema.raw_schema["paths"]:
        assert f'route="{route}"' in text, route
