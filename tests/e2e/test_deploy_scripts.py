"""The compose file's `temporal-namespace` job, run as written (with `$$` unescaped) by `sh` and the
`temporal` CLI of the tests against a dev server: it creates the namespace and the contract's search
attributes, and a second run changes nothing. (No Docker engine here; the script is what can run.)"""

import os
import secrets
import subprocess
from pathlib import Path

import pytest
import yaml
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from ordertrack.names import SearchAttributes as sa
from starter.devserver import temporal_cli
from tests.conftest import free_port

pytestmark = pytest.mark.e2e

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"


async def test_the_namespace_job_sets_up_a_namespace_and_is_idempotent() -> None:
    script = yaml.safe_load(COMPOSE.read_text())["services"]["temporal-namespace"]["command"][0]
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli(), port=free_port())
    namespace = f"orders-{secrets.token_hex(3)}"
    job_env = {
        **os.environ,
        "PATH": f"{Path(temporal_cli()).parent}{os.pathsep}{os.environ['PATH']}",
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": namespace,
    }
    try:
        for _ in range(2):
            done = subprocess.run(  # noqa: ASYNC221 - the job runs to its end, as compose runs it
                ["sh", "-c", script.replace("$$", "$")],
                env=job_env,
                capture_output=True,
                text=True,
                timeout=240,
                check=False,
            )
            assert done.returncode == 0, done.stdout + done.stderr
        assert all(f"search attribute {key.name} exists" in done.stdout for key in sa.ALL)
        listed = await env.client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        assert {key.name for key in sa.ALL} <= set(listed.custom_attributes)
    finally:
        await env.shutdown()
