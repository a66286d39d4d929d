"""The poll activity with a cadence, without a server: each "no change" says when to try again, and
a poll started right after an answer only says when to ask."""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.carrier import CarrierActivities
from ordertrack.carriers import journeys
from ordertrack.carriers.registry import CarrierRegistry
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.polling import PollState, next_poll
from ordertrack.domain.records import PollCadence, PollRequest
from ordertrack.domain.statuses import OrderStatus
from ordertrack.domain.tracking import TrackingSnapshot

SHIPPED_AT = datetime(2026, 11, 30, 9, tzinfo=UTC)
NUMBER = "SIM-ONTIME-1001"
POLICY = TimingPolicy()


class JourneyCarrier:
    """The simulated on-time journey, first seen at `SHIPPED_AT`, at the attempt's start."""

    name = journeys.CARRIER
    display_name = "Simulated Carrier"

    def __init__(self, env: ActivityEnvironment) -> None:
        self.env, self.calls = env, 0

    async def track(self, tracking_number: str) -> TrackingSnapshot:
        self.calls += 1
        return journeys.snapshot_at(tracking_number, SHIPPED_AT, self.env.info.started_time, speed=1.0)

    def tracking_url(self, tracking_number: str) -> str:
        return f"https://carrier.example/{tracking_number}"

    async def aclose(self) -> None:
        return None


def attempt(env: ActivityEnvironment, number: int, at: datetime) -> None:
    env.info = dataclasses.replace(env.info, attempt=number, started_time=at)


FIRST_SIGHT = journeys.snapshot_at(NUMBER, SHIPPED_AT, SHIPPED_AT, speed=1.0)
# In transit since the first sight, which answered at once.
STATE = PollState(
    status=OrderStatus.IN_TRANSIT,
    status_since=SHIPPED_AT,
    estimated_delivery=FIRST_SIGHT.estimated_delivery,
    answered_at=SHIPPED_AT,
)
REQUEST = PollRequest(
    carrier=journeys.CARRIER,
    tracking_number=NUMBER,
    known_fingerprint=FIRST_SIGHT.fingerprint(),
    cadence=PollCadence(state=STATE, policy=POLICY),
)


@pytest.fixture
def env() -> ActivityEnvironment:
    return ActivityEnvironment()


async def test_a_poll_started_right_after_an_answer_only_says_when_to_ask(env: ActivityEnvironment):
    carrier = JourneyCarrier(env)
    poll = CarrierActivities(CarrierRegistry([carrier])).poll_carrier
    attempt(env, 1, SHIPPED_AT)
    with pytest.raises(ApplicationError) as raised:
        await env.run(poll, REQUEST)
    assert raised.value.type == "NoChange" and carrier.calls == 0
    due = next_poll(STATE, POLICY, SHIPPED_AT)
    assert raised.value.next_retry_delay is not None
    assert abs(SHIPPED_AT + raised.value.next_retry_delay - due) < timedelta(seconds=1)


async def test_no_change_says_when_to_try_again_and_a_change_is_returned(env: ActivityEnvironment):
    carrier = JourneyCarrier(env)
    poll = CarrierActivities(CarrierRegistry([carrier])).poll_carrier
    early = SHIPPED_AT + timedelta(hours=16)  # nothing new since the first sight
    attempt(env, 2, early)
    with pytest.raises(ApplicationError) as raised:
        await env.run(poll, REQUEST)
    assert raised.value.type == "NoChange" and carrier.calls == 1
    due = next_poll(STATE, POLICY, early)
    assert raised.value.next_retry_delay is not None
    assert abs(early + raised.value.next_retry_delay - due) < timedelta(seconds=1)

    attempt(env, 3, SHIPPED_AT + timedelta(hours=21))  # departed at 20 h
    snapshot = await env.run(poll, REQUEST)
    assert len(snapshot.events) == 2 and carrier.calls == 2


async def test_a_poll_without_a_cadence_leaves_the_pace_to_the_retry_policy(env: ActivityEnvironment):
    carrier = JourneyCarrier(env)
    poll = CarrierActivities(CarrierRegistry([carrier])).poll_carrier
    attempt(env, 1, SHIPPED_AT + timedelta(hours=1))
    fixed = REQUEST.model_copy(update={"cadence": None})
    with pytest.raises(ApplicationError) as raised:
        await env.run(poll, fixed)
    assert raised.value.type == "NoChange" and raised.value.next_retry_delay is None and carrier.calls == 1
