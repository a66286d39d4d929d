"""The production worker's telemetry: SDK metrics for Prometheus and, optionally, OpenTelemetry tracing.

- `ORDERTRACK_METRICS_BIND` (e.g. `0.0.0.0:9464`): the worker's Temporal `Runtime` serves the SDK's
  metrics (task slots, poll and schedule-to-start latencies, sticky cache, activity failures...)
  at `http://<bind>/metrics`. Unset: the SDK's default runtime, no metrics endpoint.
- `ORDERTRACK_OTEL_ENDPOINT` (e.g. `http://otel-collector:4318`, OTLP over HTTP): workflow and
  activity spans via `temporalio.contrib.opentelemetry.TracingInterceptor`. Needs the optional
  extra (`pip install 'ordertrack[otel]'`); without it the worker logs one line and runs untraced.

`ordertrack up` keeps its own Runtime with a `MetricBuffer` (metrics on the HTTP server's /metrics).
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Interceptor

from ordertrack.settings import Settings, split_bind

log = logging.getLogger("ordertrack.telemetry")

OTEL_EXTRA_MISSING = (
    "ORDERTRACK_OTEL_ENDPOINT is set but the OpenTelemetry packages are not installed "
    "(pip install 'ordertrack[otel]'); running without tracing"
)


class TelemetrySettingsError(ValueError):
    """A telemetry setting that cannot work."""


def metrics_bind_address(value: str) -> str:
    """`host:port` for the SDK's Prometheus endpoint, checked so a typo fails at start, not silently."""
    bind = split_bind(value)
    if bind is None:
        raise TelemetrySettingsError(f"ORDERTRACK_METRICS_BIND must look like 0.0.0.0:9464, not {value!r}")
    return value.strip()


def telemetry_config(settings: Settings) -> TelemetryConfig | None:
    """The Runtime's telemetry for these settings; None means the SDK's default runtime will do."""
    if not settings.metrics_bind:
        return None
    return TelemetryConfig(metrics=PrometheusConfig(bind_address=metrics_bind_address(settings.metrics_bind)))


def otlp_traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for a collector's base URL (a full `.../v1/traces` URL is kept)."""
    endpoint = endpoint.strip().rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


@dataclass
class WorkerTelemetry:
    """What `run_worker` needs: the Runtime for its client, interceptors for its Worker, and a
    shutdown that flushes spans still buffered."""

    runtime: Runtime | None = None
    interceptors: Sequence[Interceptor] = ()
    _closers: list[Callable[[], object]] = field(default_factory=list)

    def shutdown(self) -> None:
        for close in self._closers:
            try:
                close()
            except Exception:  # flushing telemetry must never stop a shutdown
                log.exception("telemetry shutdown failed")
        self._closers.clear()


def tracing(settings: Settings) -> tuple[list[Interceptor], list[Callable[[], object]]]:
    """A TracingInterceptor exporting to the OTLP endpoint, or nothing (unset, or extra missing)."""
    if not settings.otel_endpoint:
        return [], []
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from temporalio.contrib.opentelemetry import TracingInterceptor
    except ImportError:
        log.warning(OTEL_EXTRA_MISSING)
        return [], []
    url = otlp_traces_url(settings.otel_endpoint)
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.otel_service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    trace.set_tracer_provider(provider)
    log.info("OpenTelemetry tracing to %s as %r", url, settings.otel_service_name)
    return [TracingInterceptor(provider.get_tracer("ordertrack"))], [provider.shutdown]


def worker_telemetry(settings: Settings) -> WorkerTelemetry:
    """Build the worker's telemetry once per process (a Prometheus runtime binds its port)."""
    config = telemetry_config(settings)
    try:
        runtime = Runtime(telemetry=config) if config else None
    except ValueError as err:  # the SDK: "Failed starting Prometheus exporter: Address already in use"
        raise TelemetrySettingsError(
            f"ORDERTRACK_METRICS_BIND={settings.metrics_bind}: {err}; set it to a free port"
        ) from None
    if config:
        log.info("Temporal SDK metrics for Prometheus on http://%s/metrics", settings.metrics_bind)
    interceptors, closers = tracing(settings)
    return WorkerTelemetry(runtime=runtime, interceptors=interceptors, _closers=closers)
