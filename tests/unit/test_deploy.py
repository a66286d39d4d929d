"""The deploy files, checked without a Docker engine or a cluster (none runs here), and offline:

- `deploy/compose.yaml` against the Compose Specification's JSON schema, as vendored by the
  `check-jsonschema` package (its `vendor.compose-spec` builtin schema, a copy of
  compose-spec/compose-spec's `schema/compose-spec.json`);
- every manifest in `deploy/k8s/` against the Kubernetes API's JSON schemas shipped inside the
  `kubernetes-validate` package (strict: unknown fields fail), for the oldest and newest versions
  it carries that we support;

then what no schema knows: image versions that match the `temporal` CLI the tests run, the ports
that stay on the host, probes that point at real endpoints, a grace period longer than the
worker's, secrets mounted where `ORDERTRACK_SECRETS_DIR` looks, no migration at start.
"""

import json
import re
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from ordertrack.domain.durations import parse_duration
from ordertrack.names import SearchAttributes as sa
from ordertrack.settings import Settings
from starter.devserver import temporal_cli

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def interpolate(value: str) -> str:
    """Compose's `${NAME:-default}` with nothing set: the default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def manifests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in manifests() if doc["kind"] == kind}


def temporal_versions() -> tuple[str, str]:
    """(server, UI) of the `temporal` CLI the tests use: `... (Server 1.32.0, UI 2.54.1)`."""
    out = subprocess.run([temporal_cli(), "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"Server (\d+\.\d+\.\d+), UI (\d+\.\d+\.\d+)", out)
    assert found, out
    return found.group(1), found.group(2)


def test_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads(
        resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    )
    jsonschema.validate(compose(), schema, cls=jsonschema.validators.validator_for(schema))


def test_compose_runs_temporal_the_current_way_at_the_tested_versions() -> None:
    services = compose()["services"]
    images = {name: interpolate(service.get("image", "")) for name, service in services.items()}
    assert not any("auto-setup" in image for image in images.values())
    server, ui = temporal_versions()
    assert images["temporal"] == f"temporalio/server:{server}"
    assert images["temporal-schema"] == images["temporal-namespace"] == f"temporalio/admin-tools:{server}"
    assert images["temporal-ui"] == f"temporalio/ui:{ui}"
    # the server starts on a set-up schema, the ordertrack processes on a namespace that exists
    assert (
        services["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    )
    for name in ("worker", "api"):
        depends = services[name]["depends_on"]
        assert depends["temporal-namespace"]["condition"] == "service_completed_successfully"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    script = services["temporal-namespace"]["command"][0]
    for key in sa.ALL:
        assert key.name in script


def test_compose_publishes_only_the_api_beyond_the_host() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            if name == "api":
                continue
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond the host"
    assert compose()["services"]["temporal"]["ports"] == ["127.0.0.1:7233:7233"]


def test_compose_migrates_once_and_reads_secrets_from_files() -> None:
    services = compose()["services"]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for name in ("migrate", "worker", "api"):
        env = services[name]["environment"]
        assert env["ORDERTRACK_MIGRATE_ON_START"] == "false"
        assert env["ORDERTRACK_SECRETS_DIR"] == "/run/secrets"
        assert "ORDERTRACK_API_KEYS" not in env and "ORDERTRACK_DATABASE_URL" not in env
        assert set(services[name]["secrets"]) == {"ORDERTRACK_DATABASE_URL", "ORDERTRACK_API_KEYS"}
    for secret in compose()["secrets"].values():
        assert (DEPLOY / secret["file"]).is_file()
    # the example secret files are settings ordertrack accepts
    settings = Settings(_secrets_dir=DEPLOY / "secrets")  # type: ignore[call-arg]
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert {key.role for key in settings.api_keys.values()} == {"shop", "operator"}


def test_compose_gives_the_worker_more_time_to_stop_than_its_own_grace() -> None:
    worker = compose()["services"]["worker"]
    grace = parse_duration(worker["environment"]["ORDERTRACK_WORKER_SHUTDOWN_GRACE"])
    assert parse_duration(worker["stop_grace_period"]) > grace
    assert "8081/healthz" in " ".join(worker["healthcheck"]["test"])


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    ("name", "doc"), manifests(), ids=lambda value: value if isinstance(value, str) else ""
)
def test_manifest_is_valid_kubernetes(name: str, doc: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert set(kustomization["resources"]) == files


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    return only


def env_of(doc: dict[str, Any]) -> dict[str, str]:
    config = by_kind("ConfigMap")["ordertrack-config"]["data"]
    return {**config, **{item["name"]: item["value"] for item in container(doc).get("env", [])}}


def test_worker_probes_its_health_endpoint_and_outlasts_its_grace() -> None:
    worker = by_kind("Deployment")["ordertrack-worker"]
    env = env_of(worker)
    port = int(env["ORDERTRACK_WORKER_HEALTH_BIND"].rsplit(":", 1)[1])
    ports = {p["name"]: p["containerPort"] for p in container(worker)["ports"]}
    assert container(worker)["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container(worker)["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "health"}
    assert ports["health"] == port
    grace = parse_duration(env["ORDERTRACK_WORKER_SHUTDOWN_GRACE"]).total_seconds()
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > grace


def test_api_probes_healthz_for_readiness_and_livez_for_liveness() -> None:
    api = by_kind("Deployment")["ordertrack-api"]
    assert container(api)["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container(api)["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert container(api)["ports"] == [{"name": "http", "containerPort": 8000}]


def test_nothing_migrates_at_start_but_the_job() -> None:
    assert by_kind("ConfigMap")["ordertrack-config"]["data"]["ORDERTRACK_MIGRATE_ON_START"] == "false"
    job = by_kind("Job")["ordertrack-migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]


def test_every_workload_mounts_the_secrets_where_the_settings_look_and_sets_resources() -> None:
    secrets_dir = by_kind("ConfigMap")["ordertrack-config"]["data"]["ORDERTRACK_SECRETS_DIR"]
    workloads = [*by_kind("Deployment").values(), *by_kind("Job").values()]
    for workload in workloads:
        spec = workload["spec"]["template"]["spec"]
        [main] = spec["containers"]
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        mounts = {mount["mountPath"]: mount["name"] for mount in main["volumeMounts"]}
        assert volumes[mounts[secrets_dir]]["secret"]["secretName"] == "ordertrack-secrets"
        assert {"cpu", "memory"} <= set(main["resources"]["requests"])
        assert "memory" in main["resources"]["limits"]
        assert {"configMapRef": {"name": "ordertrack-config"}} in main["envFrom"]


def test_every_deployment_has_a_disruption_budget() -> None:
    budgets = by_kind("PodDisruptionBudget").values()
    for deployment in by_kind("Deployment").values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(
            all(labels.get(key) == value for key, value in budget["spec"]["selector"]["matchLabels"].items())
            for budget in budgets
        ), deployment["metadata"]["name"]


def test_the_example_secret_holds_only_settings_that_exist() -> None:
    [secret] = by_kind("Secret").values()
    names = {f"ORDERTRACK_{field.upper()}" for field in Settings.model_fields}
    assert set(secret["stringData"]) <= names
