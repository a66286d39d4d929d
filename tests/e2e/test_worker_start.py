"""`ordertrack worker` started before Temporal: it waits and retries, then polls; settings the server
will never accept end it with one line and exit status 2. Real processes, real sockets, no internet.
"""

import asyncio
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import grpc
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.conftest import eventually, free_port, self_signed_certificate, start_dev_server

pytestmark = pytest.mark.e2e

ORDERTRACK = str(Path(sys.executable).parent / "ordertrack")


class Worker:
    """`ordertrack worker` as a child process, its stderr in a file."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path, health_port: int | None) -> None:
        self.process, self.log_file, self.health_port = process, log, health_port

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    async def health(self) -> httpx.Response | None:
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                return await http.get(f"http://127.0.0.1:{self.health_port}/healthz")
        except httpx.TransportError:
            return None

    async def exit_status(self, within: float = 60) -> int:
        async with asyncio.timeout(within):
            return await self.process.wait()


@asynccontextmanager
async def worker(tmp_path: Path, address: str, **settings: str) -> AsyncIterator[Worker]:
    """A worker for `address` on its own task queue and database; killed at the end if still running."""
    env = {
        **os.environ,
        "ORDERTRACK_TEMPORAL_ADDRESS": address,
        "ORDERTRACK_TASK_QUEUE": f"start-{secrets.token_hex(4)}",
        "ORDERTRACK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'ordertrack.db'}",
        "ORDERTRACK_SIMULATED_CARRIER_URL": "http://127.0.0.1:9",
        **{f"ORDERTRACK_{name.upper()}": value for name, value in settings.items()},
    }
    health_port = (
        int(settings["worker_health_bind"].rsplit(":", 1)[1]) if "worker_health_bind" in settings else None
    )
    log = tmp_path / f"worker-{secrets.token_hex(3)}.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            ORDERTRACK, "worker", env=env, cwd=tmp_path, stdout=out, stderr=out
        )
    try:
        yield Worker(process, log, health_port)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


async def test_a_worker_started_before_temporal_waits_then_polls(tmp_path: Path) -> None:
    port, health_port = free_port(), free_port()
    async with worker(tmp_path, f"127.0.0.1:{port}", worker_health_bind=f"127.0.0.1:{health_port}") as w:

        async def retried_twice() -> bool:
            assert w.process.returncode is None, w.log()
            return "(attempt 2)" in w.log()

        await eventually(retried_twice, "two logged connection attempts", within=60)
        before = await w.health()
        assert before is not None and before.status_code == 503
        body = before.json()
        assert body["status"] == "connecting"
        assert body["temporal"] == f"127.0.0.1:{port}"
        assert "connection refused" in body["problem"]

        env = await start_dev_server(port)
        try:

            async def polling() -> bool:
                assert w.process.returncode is None, w.log()
                answer = await w.health()
                return answer is not None and answer.status_code == 200

            await eventually(polling, "the health endpoint saying 200", within=90)
            assert (await w.health()).json()["status"] == "polling"  # type: ignore[union-attr]
            log = w.log()
            assert "worker polling task queue" in log
            assert f"Temporal at 127.0.0.1:{port} not available (attempt 1)" in log
            # each attempt is logged once
            for attempt in range(1, 3):
                assert log.count(f"(attempt {attempt})") == 1
            assert "Traceback" not in log

            w.process.send_signal(signal.SIGTERM)
            assert await w.exit_status() == 0, w.log()
        finally:
            await env.shutdown()


async def test_a_worker_stopped_while_waiting_exits_cleanly(tmp_path: Path) -> None:
    async with worker(tmp_path, f"127.0.0.1:{free_port()}") as w:

        async def retried() -> bool:
            return "(attempt 1)" in w.log()

        await eventually(retried, "a logged connection attempt")
        w.process.send_signal(signal.SIGTERM)
        assert await w.exit_status() == 0, w.log()


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        (
            {"temporal_namespace": "no-such-namespace"},
            ["namespace 'no-such-namespace' does not exist", "ORDERTRACK_TEMPORAL_NAMESPACE"],
        ),
        ({"temporal_tls": "true"}, ["did not answer in TLS", "ORDERTRACK_TEMPORAL_TLS"]),
    ],
    ids=["unknown namespace", "TLS to a plain-text server"],
)
async def test_settings_the_server_refuses_end_the_worker_with_one_line(
    tmp_path: Path, dev_env: WorkflowEnvironment, settings: dict[str, str], says: list[str]
) -> None:
    address = dev_env.client.service_client.config.target_host
    async with worker(tmp_path, address, **settings) as w:
        assert await w.exit_status() == 2
        [line] = error_lines(w.log())
    assert line.startswith(f"error: Temporal at {address}: ")
    for words in says:
        assert words in line


class _Refuse(grpc.GenericRpcHandler):
    """Answers every call with one status, as a server that refuses the credentials does."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self.code = code

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        def refuse(request: bytes, context: grpc.ServicerContext) -> bytes:
            context.abort(self.code, "request unauthorized")

        return grpc.unary_unary_rpc_method_handler(refuse)


@contextmanager
def refusing_server(code: grpc.StatusCode) -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[_Refuse(code)])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED])
async def test_refused_credentials_end_the_worker_with_one_line(
    tmp_path: Path, code: grpc.StatusCode
) -> None:
    api_key = "wrong-key-" + secrets.token_hex(8)
    with refusing_server(code) as address:
        async with worker(tmp_path, address, temporal_api_key=api_key, temporal_tls="false") as w:
            assert await w.exit_status() == 2
            [line] = error_lines(w.log())
    assert "refused the credentials" in line and "ORDERTRACK_TEMPORAL_API_KEY" in line
    assert api_key not in line


async def test_an_untrusted_server_certificate_ends_the_worker_with_one_line(tmp_path: Path) -> None:
    import ssl

    certificate, key = self_signed_certificate("127.0.0.1")
    (tmp_path / "server.pem").write_bytes(certificate)
    (tmp_path / "server.key").write_bytes(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    context.set_alpn_protocols(["h2"])

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", free_port(), ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        # The system's roots do not know a self-signed certificate.
        async with worker(tmp_path, f"127.0.0.1:{port}", temporal_tls="true") as w:
            assert await w.exit_status() == 2
            [line] = error_lines(w.log())
    finally:
        server.close()
    assert "certificate is not trusted (" in line
    assert "ORDERTRACK_TEMPORAL_TLS_SERVER_CA" in line
