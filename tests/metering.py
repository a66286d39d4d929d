"""Activities run with a real SDK metric meter whose updates the test reads back (a `MetricBuffer`),
to check what `ordertrack.counters` counted."""

from typing import Any

from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig
from temporalio.testing import ActivityEnvironment


class MeteredEnvironment(ActivityEnvironment):
    def __init__(self) -> None:
        super().__init__()
        self._buffer = MetricBuffer(10_000)
        self._runtime = Runtime(telemetry=TelemetryConfig(metrics=self._buffer))
        self.metric_meter = self._runtime.metric_meter

    def counted(self, name: str) -> list[dict[str, Any]]:
        """The labels of each update of counter `name` since the last call (one per count of 1)."""
        return [
            dict(update.attributes)
            for update in self._buffer.retrieve_updates()
            if update.metric.name == name and update.value == 1
        ]
