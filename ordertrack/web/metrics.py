"""Prometheus metrics for `GET /metrics`: the HTTP server's own, and the Temporal SDK's.

HTTP: `ordertrack_http_requests_total` and `ordertrack_http_request_duration_seconds` by method,
route template (`/api/orders/{order_id}`, never the raw path, so cardinality stays bounded) and
status. Each app has its own registry, so several apps in one process (tests) do not collide.

Temporal: when the worker runs in this process on a `Runtime` whose telemetry writes to a
`temporalio.runtime.MetricBuffer`, `SdkMetrics` drains that buffer (regularly, and on each scrape)
and exposes what it collected: counters summed, gauges as their last value, histograms bucketed.
"""

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    BufferedMetricUpdate,
    MetricBuffer,
)

log = logging.getLogger("ordertrack.web.metrics")

UNMATCHED_ROUTE = "<unmatched>"  # requests no route matched (404s), as one series

# Seconds; the SDK's millisecond durations are bucketed with the same bounds times 1000.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
PLAIN_BUCKETS = (1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0, 10000.0)


class HttpMetrics:
    """The HTTP server's request count and latency, in the app's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("method", "route", "status")
        self.requests = Counter(
            "ordertrack_http_requests",
            "HTTP requests answered, by method, route template and status.",
            labels,
            registry=registry,
        )
        self.duration = Histogram(
            "ordertrack_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status.",
            labels,
            registry=registry,
            buckets=DURATION_BUCKETS,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.duration.labels(*labels).observe(seconds)


_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def _label_name(name: str) -> str:
    cleaned = _INVALID_NAME_CHARS.sub("_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"_{cleaned}"


LabelSet = tuple[tuple[str, str], ...]


@dataclass
class _HistogramState:
    bounds: tuple[float, ...]
    counts: list[int]  # per bucket, not cumulative; the last is +Inf
    total: float = 0.0
    observations: int = 0

    def observe(self, value: float) -> None:
        index = next((i for i, bound in enumerate(self.bounds) if value <= bound), len(self.bounds))
        self.counts[index] += 1
        self.total += value
        self.observations += 1


@dataclass
class _Family:
    name: str
    description: str
    kind: int
    values: dict[LabelSet, float] = field(default_factory=dict)
    histograms: dict[LabelSet, _HistogramState] = field(default_factory=dict)


class SdkMetrics(Collector):
    """A Prometheus collector over a Temporal `MetricBuffer` (see the module's docstring)."""

    def __init__(self, buffer: MetricBuffer) -> None:
        self._buffer = buffer
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}
        # MetricBuffer keeps the format private; its durations are milliseconds unless asked otherwise.
        seconds = bool(getattr(buffer, "_durations_as_seconds", False))
        self._duration_bounds = DURATION_BUCKETS if seconds else tuple(b * 1000 for b in DURATION_BUCKETS)

    def drain(self) -> int:
        """Move the buffer's updates into the totals; returns how many there were."""
        with self._lock:
            try:
                updates = self._buffer.retrieve_updates()
            except RuntimeError:  # no Runtime uses the buffer yet
                return 0
            for update in updates:
                self._apply(update)
            return len(updates)

    def _apply(self, update: BufferedMetricUpdate) -> None:
        metric = update.metric
        family = self._families.get(metric.name)
        if family is None:
            description = metric.description or metric.name
            family = _Family(name=_label_name(metric.name), description=description, kind=metric.kind)
            self._families[metric.name] = family
        labels: LabelSet = tuple(
            sorted((_label_name(str(key)), str(value)) for key, value in update.attributes.items())
        )
        value = float(update.value)
        if metric.kind == BUFFERED_METRIC_KIND_COUNTER:
            family.values[labels] = family.values.get(labels, 0.0) + value
        elif metric.kind == BUFFERED_METRIC_KIND_GAUGE:
            family.values[labels] = value
        else:
            state = family.histograms.get(labels)
            if state is None:
                bounds = self._duration_bounds if metric.unit == "duration" else PLAIN_BUCKETS
                state = _HistogramState(bounds=bounds, counts=[0] * (len(bounds) + 1))
                family.histograms[labels] = state
            state.observe(value)

    def collect(self) -> Iterable[Metric]:
        self.drain()
        with self._lock:
            return list(self._metrics())

    def _metrics(self) -> Iterator[Metric]:
        for family in self._families.values():
            if family.kind == BUFFERED_METRIC_KIND_COUNTER:
                counter = Metric(family.name.removesuffix("_total"), family.description, "counter")
                for labels, value in family.values.items():
                    counter.add_sample(f"{counter.name}_total", dict(labels), value)
                yield counter
            elif family.kind == BUFFERED_METRIC_KIND_GAUGE:
                gauge = Metric(family.name, family.description, "gauge")
                for labels, value in family.values.items():
                    gauge.add_sample(family.name, dict(labels), value)
                yield gauge
            else:
                histogram = Metric(family.name, family.description, "histogram")
                for labels, state in family.histograms.items():
                    cumulative = 0
                    for bound, count in zip((*state.bounds, float("inf")), state.counts, strict=True):
                        cumulative += count
                        le = "+Inf" if bound == float("inf") else repr(float(bound))
                        histogram.add_sample(f"{family.name}_bucket", {**dict(labels), "le": le}, cumulative)
                    histogram.add_sample(f"{family.name}_count", dict(labels), state.observations)
                    histogram.add_sample(f"{family.name}_sum", dict(labels), state.total)
                yield histogram

    async def drain_forever(self, interval: float = 1.0) -> None:
        """Keep the SDK's buffer from filling up between scrapes (a full buffer drops updates)."""
        while True:
            try:
                self.drain()
            except Exception:  # never let metrics take the server down
                log.exception("draining the Temporal SDK's metric buffer failed")
            await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def draining(sdk: SdkMetrics | None, interval: float = 1.0) -> AsyncIterator[None]:
    """While open, drain the SDK's buffer every `interval` seconds (nothing to do without one)."""
    if sdk is None:
        yield
        return
    task = asyncio.create_task(sdk.drain_forever(interval))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
