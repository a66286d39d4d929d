"""The application's own counters, on the Temporal SDK's metric meter, so there is one Prometheus
endpoint: the worker's (`ORDERTRACK_METRICS_BIND`) serves them beside the SDK's own, and
`ordertrack up` on its HTTP server's `/metrics`. Each carries the meter's labels (namespace, task
queue, activity or workflow type) and its own, listed in docs/operations.md.

Each outcome is counted once, where it becomes final: a retried message is counted when it is sent,
refused or left unconfirmed, not per attempt. Replays count nothing (the SDK drops a workflow's
metrics while it replays).
"""

from dataclasses import dataclass

from temporalio import activity
from temporalio.common import MetricMeter


@dataclass(frozen=True)
class Counter:
    name: str
    description: str

    def add(self, meter: MetricMeter | None, **labels: str) -> None:
        """Count one; no meter (code run outside an activity, as tests do) counts nothing."""
        if meter is not None:
            meter.create_counter(self.name, self.description).add(1, labels)


MESSAGES = Counter(
    "ordertrack_messages_total", "Customer messages by channel, kind and outcome (sent, refused, unconfirmed)"
)
CARRIER_CALLS = Counter(
    "ordertrack_carrier_calls_total",
    "Carrier tracking requests by carrier and outcome (changed, unchanged, error)",
)
SHOP_WEBHOOK_DELIVERIES = Counter(
    "ordertrack_shop_webhook_deliveries_total",
    "Shop webhook POSTs by outcome (delivered, rejected, failed: retried)",
)
SHOP_WEBHOOK_GIVE_UPS = Counter(
    "ordertrack_shop_webhook_give_ups_total",
    "Shop events given up: rejected by the shop, or undelivered for a day",
)


def activity_meter() -> MetricMeter | None:
    """The running activity's meter; None outside an activity."""
    return activity.metric_meter() if activity.in_activity() else None
