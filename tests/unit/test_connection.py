"""Production connection, worker tuning and telemetry settings: what they turn into, without a server."""

import logging
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.runtime import PrometheusConfig
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from ordertrack.connection import (
    ConnectionSettingsError,
    classify_connect_error,
    connect_options,
    load_profile,
)
from ordertrack.settings import Settings
from ordertrack.telemetry import (
    OTEL_EXTRA_MISSING,
    TelemetrySettingsError,
    otlp_traces_url,
    telemetry_config,
    tracing,
    worker_telemetry,
)
from worker import worker_options


@pytest.fixture
def pem(tmp_path: Path):
    def write(name: str, body: str) -> Path:
        path = tmp_path / name
        path.write_text(f"-----BEGIN {name}-----\n{body}\n-----END {name}-----\n")
        return path

    return write


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch, tmp_path):
    """Neither the machine's ORDERTRACK_* nor its temporal.toml may leak into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith(("ORDERTRACK_", "TEMPORAL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "absent.toml"))


def test_defaults_are_plain_localhost():
    assert connect_options(Settings()) == {
        "target_host": "localhost:7233",
        "namespace": "default",
        "tls": False,
    }


def test_tls_flag_alone_uses_the_system_roots():
    options = connect_options(Settings(temporal_address="temporal.internal:7233", temporal_tls=True))
    assert options["tls"] is True
    assert "api_key" not in options


def test_mtls_files_become_a_tls_config(pem):
    ca, cert, key = pem("CA", "ca"), pem("CERT", "cert"), pem("KEY", "key")
    options = connect_options(
        Settings(
            temporal_address="orders.a1b2c.tmprl.cloud:7233",
            temporal_namespace="orders.a1b2c",
            temporal_tls_server_ca=ca,
            temporal_tls_client_cert=cert,
            temporal_tls_client_key=key,
            temporal_tls_server_name="orders.a1b2c.tmprl.cloud",
        )
    )
    tls = options["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.server_root_ca_cert == ca.read_bytes()
    assert tls.client_cert == cert.read_bytes()
    assert tls.client_private_key == key.read_bytes()
    assert tls.domain == "orders.a1b2c.tmprl.cloud"
    assert options["target_host"] == "orders.a1b2c.tmprl.cloud:7233"
    assert options["namespace"] == "orders.a1b2c"


def test_api_key_implies_tls():
    options = connect_options(
        Settings(temporal_address="us-east-1.aws.api.temporal.io:7233", temporal_api_key="secret-key")
    )
    assert options["api_key"] == "secret-key"
    assert options["tls"] is True


def test_settings_never_show_the_api_key():
    assert "secret-key" not in repr(Settings(temporal_api_key="secret-key"))


def test_missing_cert_file_names_the_setting_and_the_path(tmp_path, pem):
    missing = tmp_path / "nope" / "client.pem"
    settings = Settings(temporal_tls_client_cert=missing, temporal_tls_client_key=pem("KEY", "key"))
    with pytest.raises(ConnectionSettingsError) as err:
        connect_options(settings)
    assert "ORDERTRACK_TEMPORAL_TLS_CLIENT_CERT" in str(err.value)
    assert str(missing) in str(err.value)
    assert isinstance(err.value, ConnectionError)  # the CLI's one-line "cannot connect: ..." path


def test_cert_without_key_is_refused(pem):
    with pytest.raises(ConnectionSettingsError, match="both"):
        connect_options(Settings(temporal_tls_client_cert=pem("CERT", "cert")))


def test_tls_off_with_tls_files_is_refused(pem):
    with pytest.raises(ConnectionSettingsError, match="TLS=false"):
        connect_options(Settings(temporal_tls=False, temporal_tls_server_ca=pem("CA", "ca")))


def test_settings_come_from_the_environment(monkeypatch, pem):
    ca = pem("CA", "ca")
    monkeypatch.setenv("ORDERTRACK_TEMPORAL_ADDRESS", "temporal.prod:7233")
    monkeypatch.setenv("ORDERTRACK_TEMPORAL_TLS_SERVER_CA", str(ca))
    monkeypatch.setenv("ORDERTRACK_TEMPORAL_API_KEY", "k")
    options = connect_options(Settings())
    assert options["target_host"] == "temporal.prod:7233"
    assert isinstance(options["tls"], TLSConfig)
    assert options["tls"].server_root_ca_cert == ca.read_bytes()
    assert options["api_key"] == "k"


PROFILE_TOML = """
[profile.prod]
address = "prod.tmprl.cloud:7233"
namespace = "orders.prod"
api_key = "profile-key"

[profile.mtls]
address = "temporal.internal:7233"
namespace = "orders"
[profile.mtls.tls]
server_name = "temporal.internal"
client_cert_data = "PROFILE CERT"
client_key_data = "PROFILE KEY"
"""


@pytest.fixture
def profile_file(monkeypatch, tmp_path):
    path = tmp_path / "temporal.toml"
    path.write_text(PROFILE_TOML)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(path))
    return path


def test_profile_supplies_what_settings_leave_out(profile_file):
    options = connect_options(Settings(temporal_profile="prod"))
    assert options == {
        "target_host": "prod.tmprl.cloud:7233",
        "namespace": "orders.prod",
        "api_key": "profile-key",
        "tls": True,
    }


def test_explicit_settings_override_the_profile(profile_file):
    settings = Settings(temporal_profile="prod", temporal_namespace="orders.staging", temporal_api_key="mine")
    options = connect_options(settings)
    assert options["target_host"] == "prod.tmprl.cloud:7233"  # from the profile
    assert options["namespace"] == "orders.staging"
    assert options["api_key"] == "mine"


def test_profile_mtls_is_kept_and_overridden_field_by_field(profile_file, pem):
    options = connect_options(Settings(temporal_profile="mtls"))
    tls = options["tls"]
    assert isinstance(tls, TLSConfig)
    assert (tls.client_cert, tls.client_private_key, tls.domain) == (
        b"PROFILE CERT",
        b"PROFILE KEY",
        "temporal.internal",
    )
    ca = pem("CA", "ca")
    tls = connect_options(Settings(temporal_profile="mtls", temporal_tls_server_ca=ca))["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.server_root_ca_cert == ca.read_bytes()
    assert tls.client_cert == b"PROFILE CERT"


def test_unknown_profile_is_a_clear_error(profile_file):
    with pytest.raises(ConnectionSettingsError, match="ORDERTRACK_TEMPORAL_PROFILE=nope"):
        load_profile("nope")


def test_worker_tuning_reaches_the_worker_options():
    settings = Settings(
        worker_max_concurrent_activities=25,
        worker_max_concurrent_workflow_tasks=10,
        worker_max_cached_workflows=200,
        worker_shutdown_grace=timedelta(seconds=45),
    )
    assert worker_options(settings) == {
        "max_concurrent_activities": 25,
        "max_concurrent_workflow_tasks": 10,
        "max_cached_workflows": 200,
        "graceful_shutdown_timeout": timedelta(seconds=45),
    }


def test_worker_tuning_defaults_leave_the_sdk_defaults():
    assert worker_options(Settings()) == {
        "max_cached_workflows": 1000,
        "graceful_shutdown_timeout": timedelta(seconds=20),
    }


def test_worker_tuning_from_the_environment(monkeypatch):
    monkeypatch.setenv("ORDERTRACK_WORKER_MAX_CONCURRENT_ACTIVITIES", "7")
    monkeypatch.setenv("ORDERTRACK_WORKER_MAX_CACHED_WORKFLOWS", "0")
    monkeypatch.setenv("ORDERTRACK_WORKER_SHUTDOWN_GRACE", "2m")
    options = worker_options(Settings())
    assert options["max_concurrent_activities"] == 7
    assert options["max_cached_workflows"] == 0
    assert options["graceful_shutdown_timeout"] == timedelta(minutes=2)


@pytest.mark.parametrize(
    "field, value",
    [
        ("worker_max_concurrent_activities", 0),
        ("worker_max_concurrent_workflow_tasks", 1),  # the SDK needs two with a sticky cache
        ("worker_max_cached_workflows", -1),
    ],
)
def test_worker_tuning_rejects_unworkable_values(field, value):
    with pytest.raises(ValueError, match=field):
        Settings(**{field: value})


def test_no_metrics_bind_no_runtime():
    assert telemetry_config(Settings()) is None
    telemetry = worker_telemetry(Settings())
    assert telemetry.runtime is None
    assert list(telemetry.interceptors) == []


def test_metrics_bind_becomes_a_prometheus_endpoint():
    config = telemetry_config(Settings(metrics_bind="0.0.0.0:9464"))
    assert config is not None
    assert isinstance(config.metrics, PrometheusConfig)
    assert config.metrics.bind_address == "0.0.0.0:9464"


@pytest.mark.parametrize("bad", ["9464", "0.0.0.0:", "host:port", "0.0.0.0:70000"])
def test_bad_metrics_bind_is_refused(bad):
    with pytest.raises(TelemetrySettingsError, match="ORDERTRACK_METRICS_BIND"):
        telemetry_config(Settings(metrics_bind=bad))


def test_otlp_traces_url():
    assert otlp_traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert otlp_traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert otlp_traces_url("http://collector:4318/v1/traces") == "http://collector:4318/v1/traces"


def test_no_otel_endpoint_no_tracing():
    assert tracing(Settings()) == ([], [])


def test_otel_endpoint_without_the_extra_logs_and_runs_untraced(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if not installed
    with caplog.at_level(logging.WARNING, logger="ordertrack.telemetry"):
        interceptors, closers = tracing(Settings(otel_endpoint="http://collector:4318"))
    assert (interceptors, closers) == ([], [])
    assert OTEL_EXTRA_MISSING in caplog.text


def test_otel_endpoint_with_the_extra_gives_a_tracing_interceptor():
    pytest.importorskip("opentelemetry.sdk.trace")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    from temporalio.contrib.opentelemetry import TracingInterceptor

    interceptors, closers = tracing(Settings(otel_endpoint="http://127.0.0.1:1"))
    try:
        assert len(interceptors) == 1
        assert isinstance(interceptors[0], TracingInterceptor)
    finally:
        for close in closers:
            close()


# What the SDK says when a connect fails (recorded from temporalio 1.35), and what waiting can fix.
TRANSPORT = "Failed client connect: Server connection error: tonic::transport::Error(Transport, "
REFUSED = (
    TRANSPORT + 'ConnectError(ConnectError("tcp connect error", 127.0.0.1:7233, '
    'Os { code: 111, kind: ConnectionRefused, message: "Connection refused" })))'
)
NO_SUCH_HOST = (
    TRANSPORT + 'ConnectError(ConnectError("dns error", '
    'Custom { kind: Uncategorized, error: "failed to lookup address information" })))'
)
STARTING = (
    "Failed client connect: `get_system_info` call error after connection: Status { code: Unavailable, "
    'message: "service not ready", metadata: MetadataMap { headers: {} }, source: None }'
)
KEY_PARSE = TRANSPORT + "PrivateKeyParseError)"
UNTRUSTED = (
    TRANSPORT + "ConnectError(Custom { kind: InvalidData, error: "
    "InvalidCertificate(Other(OtherError(CaUsedAsEndEntity))) }))"
)


@pytest.mark.parametrize(
    ("text", "permanent", "says"),
    [
        (REFUSED, False, "connection refused"),
        (NO_SUCH_HOST, False, "does not resolve"),
        (STARTING, False, "Unavailable: service not ready"),
        (KEY_PARSE, True, "ORDERTRACK_TEMPORAL_TLS_CLIENT_CERT"),
        (UNTRUSTED, True, "not trusted (CaUsedAsEndEntity)"),
    ],
)
def test_connect_failures_are_sorted_into_what_waiting_can_fix(text, permanent, says):
    failure = classify_connect_error(RuntimeError(text), Settings())
    assert failure.permanent is permanent
    assert says in failure.reason


def test_a_missing_namespace_is_permanent_and_names_the_setting():
    err = RPCError("Namespace orders is not found.", RPCStatusCode.NOT_FOUND, b"")
    failure = classify_connect_error(err, Settings(temporal_namespace="orders"))
    assert failure.permanent
    assert "ORDERTRACK_TEMPORAL_NAMESPACE" in failure.reason
