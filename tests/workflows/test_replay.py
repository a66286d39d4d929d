"""Recorded order histories must replay on today's OrderWorkflow: running orders survive a deploy.

When a change fails here, guard it with `workflow.patched(...)` (see the README) instead of
re-recording; re-record (`python -m tests.histories.record`) only for changes that replay cleanly.
"""

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from ordertrack.domain.machine import Outcome
from ordertrack.domain.messages import OrderInput
from ordertrack.domain.view import OrderView
from workflows.order import OrderWorkflow

HISTORIES = sorted((Path(__file__).parents[1] / "histories").glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"order-{path.stem}", path.read_text())


def test_every_kind_of_journey_is_recorded():
    assert {path.stem for path in HISTORIES} >= {
        "on_time",
        "estimate_moved",
        "failed_attempt",
        "lost",
        "payment_timeout",
        "operator_actions",
    }


@pytest.mark.parametrize("path", HISTORIES, ids=lambda path: path.stem)
async def test_recorded_order_replays(path: Path):
    replayer = Replayer(workflows=[OrderWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(load(path))


@workflow.defn(name="OrderWorkflow", sandboxed=False)
class OrderWorkflowWithoutReadModel(OrderWorkflow):
    """A careless change: the start no longer writes the read model row."""

    @workflow.run
    async def run(self, input: OrderInput) -> OrderView:
        return await super().run(input)

    async def _setup(self, start: Outcome) -> None:
        self._publish(None, start)
        self._ready = True


async def test_an_incompatible_change_is_caught():
    replayer = Replayer(workflows=[OrderWorkflowWithoutReadModel], data_converter=pydantic_data_converter)
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(load(HISTORIES[0]))
