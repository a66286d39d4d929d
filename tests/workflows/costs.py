"""What an order costs on Temporal Cloud, counted from its history the way Cloud bills actions.

Billable: the workflow's start, each signal, each accepted update, each timer started, each search
attribute upsert (the SDK's TemporalChangeVersion upsert for a patch included), each activity
attempt (a poll's retries included), and the local activities of one workflow task together as one.

A history shows an activity's attempts on its started event, written when the activity closes; a
poll cancelled while it waits for its next attempt leaves its attempts out. `AttemptCounter`, a
worker interceptor, counts every attempt the worker runs, for a worker serving one order.
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from temporalio import activity
from temporalio.api.history.v1 import HistoryEvent
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

LOCAL_ACTIVITY_MARKER = "core_local_activity"
# One action each: the event's attribute field and the kind it is counted as.
ONE_ACTION_EACH = {
    "workflow_execution_started_event_attributes": "start",
    "workflow_execution_signaled_event_attributes": "signal",
    "workflow_execution_update_accepted_event_attributes": "update",
    "timer_started_event_attributes": "timer",
    "upsert_workflow_search_attributes_event_attributes": "upsert",
}


def billable_actions(
    events: Iterable[HistoryEvent], attempts: Mapping[str, int] | None = None
) -> Counter[str]:
    """Actions by kind: the kinds above, "local activities", and each activity type's attempts.

    `attempts`: activity attempts by type as a worker counted them (`AttemptCounter`), which take the
    place of the history's count where it saw fewer.
    """
    actions: Counter[str] = Counter()
    activity_types: dict[int, str] = {}
    local_tasks: set[int] = set()
    for event in events:
        kind = event.WhichOneof("attributes")
        if kind in ONE_ACTION_EACH:
            actions[ONE_ACTION_EACH[kind]] += 1
        elif kind == "activity_task_scheduled_event_attributes":
            activity_types[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif kind == "activity_task_started_event_attributes":
            started = event.activity_task_started_event_attributes
            actions[activity_types[started.scheduled_event_id]] += started.attempt
        elif kind == "marker_recorded_event_attributes":
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == LOCAL_ACTIVITY_MARKER:
                local_tasks.add(marker.workflow_task_completed_event_id)
    if local_tasks:
        actions["local activities"] = len(local_tasks)
    for name, count in (attempts or {}).items():
        actions[name] = max(actions[name], count)
    return actions


class AttemptCounter(Interceptor):
    """Counts the activity attempts a worker runs, by activity type (local activities apart)."""

    def __init__(self) -> None:
        self.attempts: Counter[str] = Counter()

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CountAttempts(next, self.attempts)


class _CountAttempts(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, attempts: Counter[str]) -> None:
        super().__init__(next)
        self._attempts = attempts

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        if not info.is_local:
            self._attempts[info.activity_type] += 1
        return await super().execute_activity(input)
