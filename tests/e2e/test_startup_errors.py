"""Start-up failures a person can fix end `ordertrack up`, `worker`, `serve` and `carrier-sim` with
one line on stderr naming what failed and the setting or flag that fixes it, exit status 2.

Each test holds a port itself (or points at one nothing listens on) and runs the real CLI."""

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.conftest import free_port

pytestmark = pytest.mark.e2e

ORDERTRACK = str(Path(sys.executable).parent / "ordertrack")


@contextmanager
def held_port() -> Iterator[int]:
    """A loopback port another program listens on for the block."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))
        sock.listen()
        yield sock.getsockname()[1]


def run(cwd: Path, *args: str, timeout: float = 60, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **{f"ORDERTRACK_{name.upper()}": value for name, value in settings.items()}}
    return subprocess.run(
        [ORDERTRACK, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def the_one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The command failed with status 2 and said why in exactly one line, without a traceback."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def free_up_ports() -> tuple[list[str], dict[str, str]]:
    """Flags and settings that move every port `ordertrack up` takes away from the defaults (another
    stack on this machine may hold those)."""
    flags = ["--port", str(free_port()), "--ui-port", str(free_port()), "--sms-port", str(free_port())]
    settings = {
        "temporal_address": f"localhost:{free_port()}",
        "smtp_port": str(free_port()),
        "simulated_carrier_url": f"http://127.0.0.1:{free_port()}",
        "http_metrics_bind": f"127.0.0.1:{free_port()}",
    }
    return flags, settings


@pytest.mark.parametrize(
    ("what", "moved_by"),
    [
        ("SMTP sink", "ORDERTRACK_SMTP_PORT"),
        ("HTTP server", "--port"),
        ("Temporal UI", "--ui-port"),
        ("Temporal dev server", "ORDERTRACK_TEMPORAL_ADDRESS"),
        ("simulated carrier", "ORDERTRACK_SIMULATED_CARRIER_URL"),
        ("SMS sink", "--sms-port"),
        ("metrics server", "ORDERTRACK_HTTP_METRICS_BIND"),
    ],
)
def test_up_names_the_busy_port_and_what_moves_it(tmp_path: Path, what: str, moved_by: str) -> None:
    flags, settings = free_up_ports()
    with held_port() as port:
        if moved_by.startswith("--"):
            flags[flags.index(moved_by) + 1] = str(port)
        elif moved_by == "ORDERTRACK_SMTP_PORT":
            settings["smtp_port"] = str(port)
        elif moved_by == "ORDERTRACK_TEMPORAL_ADDRESS":
            settings["temporal_address"] = f"localhost:{port}"
        elif moved_by == "ORDERTRACK_HTTP_METRICS_BIND":
            settings["http_metrics_bind"] = f"127.0.0.1:{port}"
        else:
            settings["simulated_carrier_url"] = f"http://127.0.0.1:{port}"
        line = the_one_line(run(tmp_path, "up", "--demo", *flags, **settings))
    assert line == (
        f"error: {what}: 127.0.0.1:{port} is already in use (another ordertrack, or another program?); "
        f"set {moved_by} to a free port"
    )
    assert not (tmp_path / "var" / "temporal.db").exists()  # nothing was started


def test_serve_names_the_busy_port(tmp_path: Path) -> None:
    with held_port() as port:
        line = the_one_line(run(tmp_path, "serve", "--port", str(port)))
    assert f"HTTP server: 127.0.0.1:{port} is already in use" in line and "set --port" in line


def test_carrier_sim_names_the_busy_port(tmp_path: Path) -> None:
    with held_port() as port:
        line = the_one_line(run(tmp_path, "carrier-sim", "--port", str(port)))
    assert f"simulated carrier: 127.0.0.1:{port} is already in use" in line and "set --port" in line


def test_worker_names_the_busy_health_port(tmp_path: Path) -> None:
    with held_port() as port:
        done = run(
            tmp_path,
            "worker",
            temporal_address=f"127.0.0.1:{free_port()}",
            worker_health_bind=f"127.0.0.1:{port}",
        )
    line = the_one_line(done)
    assert f"worker health endpoint: 127.0.0.1:{port} is already in use" in line
    assert "set ORDERTRACK_WORKER_HEALTH_BIND" in line


UNREACHABLE_DATABASE = "postgresql+asyncpg://ordertrack:db-S3CRET@127.0.0.1:{port}/ordertrack"


def test_serve_names_an_unreachable_database_without_its_password(tmp_path: Path) -> None:
    port = free_port()
    line = the_one_line(
        run(
            tmp_path, "serve", "--port", str(free_port()), database_url=UNREACHABLE_DATABASE.format(port=port)
        )
    )
    masked = f"postgresql+asyncpg://ordertrack:***@127.0.0.1:{port}/ordertrack"
    assert line.startswith(f"error: cannot open the read model's database at {masked}: ")
    assert "ORDERTRACK_DATABASE_URL" in line and "S3CRET" not in line


def test_worker_names_an_unreachable_database(tmp_path: Path, dev_env: WorkflowEnvironment) -> None:
    port = free_port()
    done = run(
        tmp_path,
        "worker",
        temporal_address=dev_env.client.service_client.config.target_host,
        task_queue=f"startup-{port}",
        database_url=UNREACHABLE_DATABASE.format(port=port),
    )
    line = the_one_line(done)
    assert "cannot open the read model's database" in line and "S3CRET" not in line


def test_db_upgrade_names_an_unreachable_database(tmp_path: Path) -> None:
    done = run(tmp_path, "db", "upgrade", database_url=UNREACHABLE_DATABASE.format(port=free_port()))
    assert "cannot open the read model's database" in the_one_line(done)


@pytest.mark.parametrize("command", [["worker"], ["serve", "--port", "0"], ["up"]])
def test_a_bad_setting_is_one_line_naming_it(tmp_path: Path, command: list[str]) -> None:
    line = the_one_line(run(tmp_path, *command, smtp_port="twenty-five"))
    assert line.startswith("error: invalid settings: ORDERTRACK_SMTP_PORT: Input should be a valid integer")


def test_serve_stops_for_settings_temporal_refuses(tmp_path: Path, dev_env: WorkflowEnvironment) -> None:
    done = run(
        tmp_path,
        "serve",
        "--port",
        str(free_port()),
        temporal_address=dev_env.client.service_client.config.target_host,
        temporal_namespace="no-such-namespace",
    )
    assert "namespace 'no-such-namespace' does not exist" in the_one_line(done)
