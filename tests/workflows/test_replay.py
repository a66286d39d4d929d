"""Recorded order histories must replay on today's OrderWorkflow: running orders survive a deploy.

`tests/histories/*.json` were recorded before the `customer-messages-v2` patch (orders still on the
old path); `tests/histories/customer_messages_v2/` holds the same journeys and a texting one, recorded
after it and before the `cost-per-order` patch; `tests/histories/cost_per_order/` the same, after
that; `tests/histories/awaiting_payment/` orders awaiting payment after the `awaiting-payment` patch
(the only orders that take it). When a change fails here, guard it with `workflow.patched(...)` (see
docs/workflow-evolution.md) instead of re-recording; re-record (`python -m tests.histories.record`,
into the newest folder) only for changes that replay cleanly. The older folders are never re-recorded.
"""

import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from ordertrack.domain.machine import Outcome
from ordertrack.domain.messages import OrderInput
from ordertrack.domain.view import OrderView
from workflows.order import AWAITING_PAYMENT, COST_PER_ORDER, MESSAGES_V2, OrderWorkflow

ROOT = Path(__file__).parents[1] / "histories"
PRE_PATCH = sorted(ROOT.glob("*.json"))
V2 = sorted((ROOT / "customer_messages_v2").glob("*.json"))
COSTS = sorted((ROOT / "cost_per_order").glob("*.json"))
AWAITING = sorted((ROOT / "awaiting_payment").glob("*.json"))
HISTORIES = sorted(ROOT.glob("**/*.json"))
JOURNEYS = {"on_time", "estimate_moved", "failed_attempt", "lost", "payment_timeout", "operator_actions"}


def name(path: Path) -> str:
    return path.relative_to(ROOT).with_suffix("").as_posix()


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"order-{path.stem}", path.read_text())


def patches(history: WorkflowHistory) -> set[str]:
    """The ids of the patches the recorded run went through (its `core_patch` markers)."""
    return {
        json.loads(event.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)["id"]
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and event.marker_recorded_event_attributes.marker_name == "core_patch"
    }


def test_every_kind_of_journey_is_recorded():
    assert {path.stem for path in PRE_PATCH} >= JOURNEYS
    assert {path.stem for path in V2} >= JOURNEYS | {"texts_quiet_hours_reminder"}
    assert {path.stem for path in COSTS} == {path.stem for path in V2}
    assert {path.stem for path in AWAITING} == {"payment_timeout", "paid_after_the_reminder"}


def test_each_folder_took_its_own_path():
    """Pre-patch files carry no patch marker, v2 ones v2's alone, the newest the newest alone (its
    path includes v2's, so a new order asks for that patch only)."""
    assert all(patches(load(path)) == set() for path in PRE_PATCH)
    assert all(patches(load(path)) == {MESSAGES_V2} for path in V2)
    assert all(patches(load(path)) == {COST_PER_ORDER} for path in COSTS)
    assert all(patches(load(path)) == {AWAITING_PAYMENT} for path in AWAITING)


@pytest.mark.parametrize("path", HISTORIES, ids=name)
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


@pytest.mark.parametrize("path", [PRE_PATCH[0], V2[0], COSTS[0], AWAITING[0]], ids=name)
async def test_an_incompatible_change_is_caught(path: Path):
    replayer = Replayer(workflows=[OrderWorkflowWithoutReadModel], data_converter=pydantic_data_converter)
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(load(path))
