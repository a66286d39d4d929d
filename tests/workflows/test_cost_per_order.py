"""Cost per order on the time-skipping server: the carrier is polled seldom, yet on the estimated day
and after the customer hears of what they wait for within the poll interval, on every journey; and
an on-time order keeps within the issue's budget of billable actions, carrier calls and events.

Times are the server's: when the carrier reported a scan (the journey's offset from its first sight
of the number) against when the order recorded it (its timeline), never the wall clock.
"""

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from ordertrack.carriers import journeys
from ordertrack.carriers.journeys import Journey, Step
from ordertrack.domain.machine import CARRIER
from ordertrack.domain.polling import estimated_day
from ordertrack.domain.statuses import OrderStatus
from ordertrack.domain.timeline import EntryKind, TimelineEntry
from ordertrack.mail.sink import MailSink
from tests.conftest import eventually
from tests.workflows.costs import billable_actions
from tests.workflows.harness import Harness, order_worker
from tests.workflows.test_order_workflow import POLICY, new_order, ship, start

H = timedelta(hours=1)
# What the customer must hear of within the interval, on the estimated day and after (and a moved
# estimate, below).
AWAITED = frozenset({OrderStatus.OUT_FOR_DELIVERY, OrderStatus.DELIVERED, OrderStatus.DELIVERY_FAILED})
# The simulated journeys hear little on their estimated day: this one has it all there. Out for
# delivery in the night, a failed attempt in the morning, the estimate moved a day later, then
# out for delivery and delivered on the new day.
AT_THE_DOOR = Journey(
    "TEST-DOOR-",
    (
        *journeys.journey_for("SIM-ONTIME-").steps[:3],
        Step(64 * H, OrderStatus.OUT_FOR_DELIVERY, "SIM_OUT_FOR_DELIVERY", "Out for delivery", "Station"),
        Step(67 * H, OrderStatus.DELIVERY_FAILED, "SIM_ATTEMPT_FAILED", "Nobody home", "Recipient address"),
        Step(70 * H, OrderStatus.IN_TRANSIT, "SIM_RESCHEDULED", "Redelivery tomorrow", "Station"),
        Step(88 * H, OrderStatus.OUT_FOR_DELIVERY, "SIM_OUT_FOR_DELIVERY", "Out for delivery", "Station"),
        Step(92 * H, OrderStatus.DELIVERED, "SIM_DELIVERED", "Delivered", "Recipient address"),
    ),
    eta=journeys.ETA,
    eta_moves_at=5,
    eta_delay=24 * H,
)
JOURNEYS = (*journeys.JOURNEYS, AT_THE_DOOR)


@pytest.fixture
async def harness(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path, mail_sink: MailSink
) -> AsyncIterator[Harness]:
    async with order_worker(time_skipping_env, tmp_path, mail_sink, f"orders-{uuid.uuid4()}") as running:
        running.carrier.journeys = JOURNEYS
        yield running


def news(journey: Journey) -> Iterator[tuple[int, Step, bool]]:
    """The steps the customer hears of: (index, step, whether it moves the estimate)."""
    for index, step in enumerate(journey.steps):
        moves = journey.eta_after(index + 1) != journey.eta_after(index)
        status_changes = index == 0 or step.status != journey.steps[index - 1].status
        if moves or status_changes:
            yield index, step, moves


def heard_at(timeline: tuple[TimelineEntry, ...], reported: datetime, step: Step, moves: bool) -> datetime:
    """When the order recorded the carrier's news: the entry that tells it to the customer."""
    return min(
        entry.at
        for entry in timeline
        if entry.at >= reported
        and (
            (entry.kind == EntryKind.STATUS and entry.actor == CARRIER and entry.status == step.status)
            or (moves and entry.kind in (EntryKind.DELAY, EntryKind.ESTIMATE))
        )
    )


@pytest.mark.parametrize("journey", JOURNEYS, ids=lambda journey: journey.prefix.strip("-"))
async def test_on_the_estimated_day_and_after_the_customer_hears_within_the_interval(
    harness: Harness, journey: Journey
):
    order = new_order()  # no time zone: the policy's default, UTC, is the destination's
    handle = await start(harness, order)
    number = f"{journey.prefix}{order.order_id}"
    await ship(harness, order, number)
    result = await harness.run_to_end(handle)
    assert result.status in (OrderStatus.COMPLETED, OrderStatus.RETURNED, OrderStatus.LOST)

    first_seen = harness.carrier.first_seen[number]
    late = []
    for index, step, moves in news(journey):
        reported = first_seen + step.after
        waited = heard_at(result.timeline, reported, step, moves) - reported
        # The day the customer was told to expect the parcel when the carrier reported this.
        expected_from = estimated_day(first_seen + journey.eta_after(index or 1), UTC)[0]
        awaited = moves or step.status in AWAITED
        if awaited and reported >= expected_from and waited > POLICY.carrier_poll_interval:
            late.append(f"{step.code} at +{step.after}: heard {waited} later")
        # Before that day, no news waits longer than the longest wait between two polls (and the
        # moment its answer takes to reach the order).
        assert waited <= POLICY.carrier_poll_bounds[1] + timedelta(seconds=1), (step.code, waited)
    assert not late, late


async def test_an_on_time_order_stays_within_the_budget(harness: Harness):
    """The issue's goals for one on-time order: at most 60 billable actions, 24 carrier calls and
    120 history events (before: 185, 148 and about 170)."""
    order = new_order()
    handle = await start(harness, order)

    # The warehouse starts once the confirmation is out, as it would: the first workflow tasks then
    # fall the same way on every run instead of batching by chance.
    async def confirmation_sent() -> bool:
        return "confirmation" in harness.kinds_mailed(order.customer.email)

    await eventually(confirmation_sent, "the confirmation sent")
    number = f"SIM-ONTIME-{order.order_id}"
    await ship(harness, order, number)
    assert (await harness.run_to_end(handle)).status == OrderStatus.COMPLETED
    events = (await handle.fetch_history()).events
    actions = billable_actions(events, harness.attempts)
    assert harness.carrier.calls[number] <= 24
    assert sum(actions.values()) <= 60, actions
    assert len(events) <= 120
    # Read-model writes are local activities, each deadline has one timer, and the poll paces itself:
    # one attempt per carrier call, and one per answer that changed something, to say when to ask next.
    assert {"record_change", "save_order"}.isdisjoint(actions) and actions["timer"] == 3, actions
    assert actions["poll_carrier"] == harness.carrier.calls[number] + 4, actions
