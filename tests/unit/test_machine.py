"""The order state machine, without Temporal: every allowed and every illegal transition."""

from datetime import timedelta

import pytest

from ordertrack.domain import machine
from ordertrack.domain.machine import TransitionRejected
from ordertrack.domain.messages import (
    AddressChangeRequest,
    CancelRequest,
    CorrectionRequest,
    FulfillmentUpdate,
)
from ordertrack.domain.models import Address
from ordertrack.domain.notices import PAYMENT_PENDING, MessageKind, Notice
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.statuses import (
    FINAL,
    NEEDS_TRACKING,
    PRE_SHIPMENT,
    FulfillmentEvent,
    OrderStatus,
)
from ordertrack.domain.timeline import EntryKind
from ordertrack.domain.tracking import TrackingEvent, TrackingSnapshot
from tests.factories import NOW, sample_order, state_in

POLICY = TimingPolicy()
LABEL = {"carrier": "simulated", "tracking_number": "SIM-ONTIME-1"}

# The only (status, event) pairs that move an order; every other pair must be refused.
ALLOWED_FULFILLMENT = {
    (OrderStatus.RECEIVED, FulfillmentEvent.PAYMENT_CONFIRMED): OrderStatus.CONFIRMED,
    (OrderStatus.CONFIRMED, FulfillmentEvent.PICKING_STARTED): OrderStatus.PICKING,
    (OrderStatus.CONFIRMED, FulfillmentEvent.PACKED): OrderStatus.PACKED,
    (OrderStatus.PICKING, FulfillmentEvent.PACKED): OrderStatus.PACKED,
    (OrderStatus.CONFIRMED, FulfillmentEvent.SHIPPED): OrderStatus.SHIPPED,
    (OrderStatus.PICKING, FulfillmentEvent.SHIPPED): OrderStatus.SHIPPED,
    (OrderStatus.PACKED, FulfillmentEvent.SHIPPED): OrderStatus.SHIPPED,
}
EVENT_TARGET = {event: target for (_, event), target in ALLOWED_FULFILLMENT.items()}


def snapshot(status: OrderStatus, *events: TrackingEvent, eta_days: float | None = 3, **changes: object):
    data = {
        **LABEL,
        "status": status,
        "events": list(events),
        "estimated_delivery": NOW + timedelta(days=eta_days) if eta_days is not None else None,
    }
    return TrackingSnapshot.model_validate({**data, **changes})


def scan(hours: float, status: OrderStatus = OrderStatus.IN_TRANSIT, message: str = "Departed facility"):
    return TrackingEvent(at=NOW + timedelta(hours=hours), status=status, message=message, location="Campinas")


# -- start -----------------------------------------------------------------------------------------


def test_paid_order_is_confirmed_at_start_with_a_confirmation():
    outcome = machine.on_start(sample_order(), POLICY, NOW)
    assert outcome.state.status == OrderStatus.CONFIRMED
    assert [n.kind for n in outcome.notices] == [MessageKind.CONFIRMATION]
    assert [e.seq for e in outcome.entries] == [1, 2]


def test_pending_order_waits_in_received_and_says_how_and_by_when_to_pay():
    outcome = machine.on_start(sample_order(payment={"status": "pending"}), POLICY, NOW)
    assert outcome.state.status == OrderStatus.RECEIVED
    pay_by = (NOW + POLICY.payment_timeout).isoformat()
    assert outcome.notices == (Notice(MessageKind.AWAITING_PAYMENT, "awaiting-payment", {"pay_by": pay_by}),)
    assert [e.seq for e in outcome.entries] == [1]  # a message, not a change of the order


# -- warehouse events --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(OrderStatus))
@pytest.mark.parametrize("event", list(FulfillmentEvent))
def test_every_fulfillment_transition(status: OrderStatus, event: FulfillmentEvent):
    state = state_in(status, tracking=True)
    update = FulfillmentUpdate(event=event, **(LABEL if event == FulfillmentEvent.SHIPPED else {}))
    target = ALLOWED_FULFILLMENT.get((status, event))
    if target is not None:
        outcome = machine.on_fulfillment(state, update, NOW)
        assert outcome.state.status == target
        assert outcome.entries[-1].kind == EntryKind.STATUS
    elif status == EVENT_TARGET[event]:  # the same report again: a harmless retry
        assert machine.on_fulfillment(state, update, NOW).changed is False
    else:
        with pytest.raises(TransitionRejected) as refused:
            machine.check_fulfillment(state, update)
        message = str(refused.value)
        assert f"the order is {status.value}" in message
        assert "Allowed now:" in message


def test_shipping_needs_a_carrier_and_tracking_number():
    state = state_in(OrderStatus.PACKED, tracking=False)
    with pytest.raises(TransitionRejected, match="needs a carrier and a tracking number"):
        machine.check_fulfillment(state, FulfillmentUpdate(event=FulfillmentEvent.SHIPPED))


def test_packed_label_is_used_when_shipping():
    state = state_in(OrderStatus.PICKING, tracking=False)
    packed = machine.on_fulfillment(state, FulfillmentUpdate(event=FulfillmentEvent.PACKED, **LABEL), NOW)
    shipped = machine.on_fulfillment(packed.state, FulfillmentUpdate(event=FulfillmentEvent.SHIPPED), NOW)
    assert (shipped.state.carrier, shipped.state.tracking_number) == ("simulated", "SIM-ONTIME-1")
    assert shipped.notices[0].kind == MessageKind.SHIPPED
    assert shipped.state.shipped_at == NOW


def test_label_on_picking_started_is_refused():
    state = state_in(OrderStatus.CONFIRMED)
    with pytest.raises(TransitionRejected, match="belong to packed or shipped"):
        machine.check_fulfillment(state, FulfillmentUpdate(event=FulfillmentEvent.PICKING_STARTED, **LABEL))


# -- operator corrections -------------------------------------------------------------------------------


@pytest.mark.parametrize("current", list(OrderStatus))
@pytest.mark.parametrize("target", list(OrderStatus))
def test_every_correction(current: OrderStatus, target: OrderStatus):
    state = state_in(current)
    request = CorrectionRequest(status=target, reason="carrier mixed up the scans", operator="rita")
    legal = (
        current not in FINAL
        and target != current
        and target not in {OrderStatus.RECEIVED, OrderStatus.COMPLETED, OrderStatus.CANCELLED}
        and (target not in NEEDS_TRACKING or state.tracking_number is not None)
    )
    if legal:
        outcome = machine.on_correction(state, request, NOW)
        entry = outcome.entries[-1]
        assert (outcome.state.status, entry.actor, entry.reason) == (target, "rita", request.reason)
    else:
        with pytest.raises(TransitionRejected, match=f"correct_status to '{target.value}' refused"):
            machine.check_correction(state, request)


def test_correction_to_tracking_status_without_label_names_the_problem():
    state = state_in(OrderStatus.PACKED, tracking=False)
    request = CorrectionRequest(status=OrderStatus.DELIVERED, reason="customer called", operator="rita")
    with pytest.raises(TransitionRejected, match="needs a carrier and a tracking number"):
        machine.check_correction(state, request)


def test_reverting_a_delivery_puts_the_review_request_back_to_the_no_delivery_rule():
    delivered = state_in(OrderStatus.DELIVERED, delivered_at=NOW)
    request = CorrectionRequest(status=OrderStatus.IN_TRANSIT, reason="wrong parcel scanned", operator="rita")
    outcome = machine.on_correction(delivered, request, NOW)
    assert outcome.state.delivered_at is None
    assert machine.review_deadline(outcome.state, POLICY) is None
    assert (
        machine.undelivered_review_deadline(outcome.state, POLICY)
        == NOW + POLICY.review_without_delivery_after
    )


# -- cancel and address ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(OrderStatus))
def test_cancel_only_before_shipping(status: OrderStatus):
    state = state_in(status)
    request = CancelRequest(reason="customer changed their mind", operator="rita")
    if status in PRE_SHIPMENT:
        outcome = machine.on_cancel(state, request, NOW)
        assert outcome.state.status == OrderStatus.CANCELLED
        assert outcome.notices[0].kind == MessageKind.CANCELLED
        assert outcome.notices[0].details == {"cause": "shop"}  # never the operator's own words
    else:
        with pytest.raises(TransitionRejected, match="only before it is shipped"):
            machine.check_cancel(state, request)


NEW_ADDRESS = Address(
    name="Ana Souza", line1="Rua Nova 10", city="Campinas", postal_code="13000-000", country="BR"
)


@pytest.mark.parametrize("status", list(OrderStatus))
def test_address_change_only_before_shipping(status: OrderStatus):
    state = state_in(status)
    request = AddressChangeRequest(address=NEW_ADDRESS, reason="typo in street", operator="rita")
    if status in PRE_SHIPMENT:
        outcome = machine.on_address_change(state, request, NOW)
        assert outcome.state.shipping_address == NEW_ADDRESS
        assert outcome.entries[-1].kind == EntryKind.ADDRESS
        assert "Rua Nova" not in outcome.entries[-1].message  # the timeline carries no street address
    else:
        with pytest.raises(TransitionRejected, match="only before the parcel is shipped"):
            machine.check_address_change(state, request)


def test_address_change_to_the_same_address_is_refused():
    state = state_in(OrderStatus.CONFIRMED)
    request = AddressChangeRequest(address=state.shipping_address, reason="no change", operator="rita")
    with pytest.raises(TransitionRejected, match="already on the order"):
        machine.check_address_change(state, request)


# -- carrier snapshots ------------------------------------------------------------------------------------


def test_snapshot_adds_scans_estimate_and_status_once():
    state = state_in(OrderStatus.SHIPPED)
    snap = snapshot(OrderStatus.IN_TRANSIT, scan(1), scan(2, message="Arrived at hub"))
    first = machine.on_tracking(state, snap, POLICY, NOW)
    assert first.state.status == OrderStatus.IN_TRANSIT
    assert [e.kind for e in first.entries] == [
        EntryKind.SCAN,
        EntryKind.SCAN,
        EntryKind.ESTIMATE,
        EntryKind.STATUS,
    ]
    again = machine.on_tracking(first.state, snap, POLICY, NOW)
    assert not again.changed


def test_snapshot_for_another_shipment_or_untracked_order_changes_nothing():
    other = snapshot(OrderStatus.IN_TRANSIT, scan(1), tracking_number="SIM-ONTIME-2")
    assert not machine.on_tracking(state_in(OrderStatus.SHIPPED), other, POLICY, NOW).changed
    for status in (OrderStatus.PACKED, OrderStatus.DELIVERED, OrderStatus.CANCELLED):
        assert not machine.on_tracking(
            state_in(status), snapshot(OrderStatus.IN_TRANSIT, scan(1)), POLICY, NOW
        ).changed


def test_outdated_snapshot_adds_scans_but_does_not_move_status_back():
    state = state_in(OrderStatus.OUT_FOR_DELIVERY, last_scan_at=NOW + timedelta(hours=10))
    outcome = machine.on_tracking(state, snapshot(OrderStatus.IN_TRANSIT, scan(2)), POLICY, NOW)
    assert outcome.state.status == OrderStatus.OUT_FOR_DELIVERY
    assert [e.kind for e in outcome.entries] == [EntryKind.SCAN, EntryKind.ESTIMATE]


def test_estimate_moving_later_is_one_delay_per_new_date():
    state = machine.on_tracking(
        state_in(OrderStatus.SHIPPED), snapshot(OrderStatus.IN_TRANSIT, scan(1)), POLICY, NOW
    ).state
    later = machine.on_tracking(state, snapshot(OrderStatus.IN_TRANSIT, scan(1), eta_days=4), POLICY, NOW)
    assert later.state.delayed
    assert [(n.kind, n.dedupe_key) for n in later.notices] == [
        (MessageKind.DELAYED, "estimate:2026-11-24T15:00:00+00:00")
    ]
    assert later.notices[0].details["new_date"].startswith("2026-11-24")
    same_again = machine.on_tracking(
        later.state, snapshot(OrderStatus.IN_TRANSIT, scan(1), scan(5), eta_days=4), POLICY, NOW
    )
    assert same_again.notices == ()
    even_later = machine.on_tracking(
        same_again.state, snapshot(OrderStatus.IN_TRANSIT, scan(1), eta_days=5), POLICY, NOW
    )
    assert [n.dedupe_key for n in even_later.notices] == ["estimate:2026-11-25T15:00:00+00:00"]


def test_earlier_or_slightly_later_estimate_is_no_delay():
    state = machine.on_tracking(
        state_in(OrderStatus.SHIPPED), snapshot(OrderStatus.IN_TRANSIT, scan(1)), POLICY, NOW
    ).state
    same_day = machine.on_tracking(
        state, snapshot(OrderStatus.IN_TRANSIT, scan(1), eta_days=3.1), POLICY, NOW
    )
    earlier = machine.on_tracking(state, snapshot(OrderStatus.IN_TRANSIT, scan(1), eta_days=2), POLICY, NOW)
    assert not same_day.state.delayed and not earlier.state.delayed
    assert same_day.notices == earlier.notices == ()


def test_delivery_clears_the_delay_and_sends_delivered():
    state = state_in(OrderStatus.OUT_FOR_DELIVERY, delayed=True, delay_reason="late")
    outcome = machine.on_tracking(
        state, snapshot(OrderStatus.DELIVERED, scan(3, OrderStatus.DELIVERED)), POLICY, NOW
    )
    assert (outcome.state.status, outcome.state.delayed, outcome.state.delivered_at) == (
        OrderStatus.DELIVERED,
        False,
        NOW,
    )
    assert [n.kind for n in outcome.notices] == [MessageKind.DELIVERED]


def test_failed_attempt_then_delivered():
    state = state_in(OrderStatus.OUT_FOR_DELIVERY)
    failed = machine.on_tracking(
        state, snapshot(OrderStatus.DELIVERY_FAILED, scan(1, OrderStatus.DELIVERY_FAILED)), POLICY, NOW
    )
    assert failed.state.status == OrderStatus.DELIVERY_FAILED
    delivered = machine.on_tracking(
        failed.state,
        snapshot(
            OrderStatus.DELIVERED, scan(1, OrderStatus.DELIVERY_FAILED), scan(20, OrderStatus.DELIVERED)
        ),
        POLICY,
        NOW,
    )
    assert delivered.state.status == OrderStatus.DELIVERED


def test_a_poll_fingerprint_is_kept_even_when_nothing_else_changed():
    state = state_in(OrderStatus.IN_TRANSIT, tracking_fingerprint="old")
    snap = snapshot(OrderStatus.IN_TRANSIT, eta_days=None)
    outcome = machine.on_tracking(state, snap, POLICY, NOW)
    assert not outcome.changed
    assert outcome.state.tracking_fingerprint == snap.fingerprint()


# -- deadlines ---------------------------------------------------------------------------------------------


def test_payment_timeout_cancels_with_a_message():
    state = machine.on_start(sample_order(payment={"status": "pending"}), POLICY, NOW).state
    deadline = machine.payment_deadline(state, POLICY)
    assert deadline == NOW + POLICY.payment_timeout
    assert not machine.on_payment_timeout(state, POLICY, deadline - timedelta(seconds=1)).changed
    outcome = machine.on_payment_timeout(state, POLICY, deadline)
    assert outcome.state.status == OrderStatus.CANCELLED
    assert [n.kind for n in outcome.notices] == [MessageKind.CANCELLED]


def pending(policy: TimingPolicy = POLICY):
    return machine.on_start(sample_order(payment={"status": "pending"}), policy, NOW).state


def test_one_payment_reminder_comes_its_time_before_the_timeout():
    state = pending()
    due = machine.payment_reminder_deadline(state, POLICY)
    assert due == NOW + POLICY.payment_timeout - timedelta(hours=24)
    assert not machine.on_payment_reminder_due(state, POLICY, due - timedelta(seconds=1)).changed

    reminded = machine.on_payment_reminder_due(state, POLICY, due)
    pay_by = (NOW + POLICY.payment_timeout).isoformat()
    assert reminded.notices == (Notice(MessageKind.PAYMENT_REMINDER, "payment-reminder", {"pay_by": pay_by}),)
    assert reminded.state.status == OrderStatus.RECEIVED
    assert reminded.entries[0].kind == EntryKind.MESSAGE
    assert reminded.entries[0].message == "Payment still pending after 2d: reminder sent"
    assert machine.payment_reminder_deadline(reminded.state, POLICY) is None  # once
    assert not machine.on_payment_reminder_due(reminded.state, POLICY, due + timedelta(hours=1)).changed


def test_no_payment_reminder_once_paid_or_cancelled():
    paid = machine.on_fulfillment(pending(), FulfillmentUpdate(event=FulfillmentEvent.PAYMENT_CONFIRMED), NOW)
    cancelled = machine.on_cancel(pending(), CancelRequest(reason="customer asked", operator="rita"), NOW)
    for outcome in (paid, cancelled):
        assert machine.payment_reminder_deadline(outcome.state, POLICY) is None
        later = NOW + POLICY.payment_timeout - timedelta(hours=1)
        assert not machine.on_payment_reminder_due(outcome.state, POLICY, later).changed
        # Payment messages still waiting for the customer's daytime are no longer true.
        assert set(outcome.withdrawn) == PAYMENT_PENDING
    assert (
        machine.payment_reminder_deadline(machine.on_start(sample_order(), POLICY, NOW).state, POLICY) is None
    )


def test_the_reminder_comes_before_the_timeout_and_never_after_it():
    state = pending()
    reminder, timeout = (
        machine.payment_reminder_deadline(state, POLICY),
        machine.payment_deadline(state, POLICY),
    )
    assert reminder and timeout and reminder < timeout
    names = [deadline.name for deadline in machine.DEADLINES]
    assert names.index("payment timeout") < names.index(machine.PAYMENT_REMINDER)
    # A worker back after both passed: the timeout cancels, and the reminder says nothing more.
    assert not machine.on_payment_reminder_due(state, POLICY, timeout).changed
    cancelled = machine.on_payment_timeout(state, POLICY, timeout + timedelta(hours=1))
    assert machine.payment_reminder_deadline(cancelled.state, POLICY) is None


@pytest.mark.parametrize(
    "before", [None, timedelta(hours=72), timedelta(days=5)], ids=["off", "equal", "longer"]
)
def test_no_reminder_when_switched_off_or_not_shorter_than_the_timeout(before: timedelta | None):
    policy = POLICY.model_copy(update={"payment_reminder_before": before})
    assert machine.payment_reminder_deadline(pending(policy), policy) is None


@pytest.mark.parametrize("text", ["0", "off", "OFF"])
def test_a_reminder_switched_off_in_settings_text(text: str):
    policy = TimingPolicy.model_validate({"payment_reminder_before": text})
    assert policy.payment_reminder_before is None
    assert TimingPolicy.model_validate_json(policy.model_dump_json()) == policy


def test_ship_by_missed_flags_one_delay():
    state = state_in(OrderStatus.PICKING, confirmed_at=NOW)
    deadline = machine.ship_by_deadline(state, POLICY)
    assert deadline == NOW + POLICY.ship_by
    assert not machine.on_ship_by_missed(state, POLICY, deadline - timedelta(seconds=1)).changed
    missed = machine.on_ship_by_missed(state, POLICY, deadline)
    assert missed.state.delayed and [n.dedupe_key for n in missed.notices] == ["ship-by"]
    assert machine.ship_by_deadline(missed.state, POLICY) is None
    assert machine.ship_by_deadline(state_in(OrderStatus.SHIPPED, confirmed_at=NOW), POLICY) is None


def test_estimate_passing_flags_a_delay_once_per_date():
    eta = NOW + timedelta(days=2)
    state = state_in(OrderStatus.IN_TRANSIT, estimated_delivery=eta)
    assert machine.estimate_missed_deadline(state, POLICY) == eta
    missed = machine.on_estimate_missed(state, POLICY, eta)
    assert [n.dedupe_key for n in missed.notices] == ["estimate-missed:2026-11-22T15:00:00+00:00"]
    assert machine.estimate_missed_deadline(missed.state, POLICY) is None


def test_date_only_estimate_lasts_the_whole_day():
    midnight = NOW.replace(hour=0) + timedelta(days=3)
    assert machine.estimate_deadline(midnight) == midnight + timedelta(days=1)


def test_no_scan_for_too_long_marks_lost_then_the_order_ends():
    state = state_in(OrderStatus.IN_TRANSIT, last_scan_at=NOW)
    deadline = machine.stale_deadline(state, POLICY)
    assert deadline == NOW + POLICY.stale_tracking_after
    lost = machine.on_tracking_stale(state, POLICY, deadline)
    assert lost.state.status == OrderStatus.LOST
    assert not machine.is_done(lost.state, POLICY, deadline)
    assert machine.is_done(lost.state, POLICY, deadline + POLICY.stale_tracking_after)


def test_a_scan_brings_a_lost_order_back():
    state = state_in(OrderStatus.LOST, last_scan_at=NOW)
    outcome = machine.on_tracking(state, snapshot(OrderStatus.OUT_FOR_DELIVERY, scan(200)), POLICY, NOW)
    assert outcome.state.status == OrderStatus.OUT_FOR_DELIVERY


def test_review_request_after_the_delay_completes_the_order():
    state = state_in(OrderStatus.DELIVERED, delivered_at=NOW)
    due = machine.review_deadline(state, POLICY)
    assert due == NOW + POLICY.review_request_delay
    outcome = machine.on_review_due(state, POLICY, due)
    assert outcome.state.status == OrderStatus.COMPLETED
    assert [n.kind for n in outcome.notices] == [MessageKind.REVIEW_REQUEST]
    assert machine.is_done(outcome.state, POLICY, due)


# -- customer messages -----------------------------------------------------------------------------------


def carrier_reports(state, status: OrderStatus, hours: float, location: str = "Campinas"):
    event = TrackingEvent(
        at=NOW + timedelta(hours=hours), status=status, message=status.value, location=location
    )
    return machine.on_tracking(state, snapshot(status, event), POLICY, NOW + timedelta(hours=hours))


def test_every_carrier_status_with_a_message_sends_it_once_per_real_change():
    state = state_in(OrderStatus.IN_TRANSIT)
    sent: list[tuple[MessageKind, str, dict[str, str]]] = []
    journey = [
        OrderStatus.OUT_FOR_DELIVERY,
        OrderStatus.DELIVERY_FAILED,
        OrderStatus.OUT_FOR_DELIVERY,
        OrderStatus.DELIVERY_FAILED,
        OrderStatus.AVAILABLE_FOR_PICKUP,
        OrderStatus.DELIVERED,
    ]
    for hours, status in enumerate(journey, start=1):
        outcome = carrier_reports(state, status, hours)
        state = outcome.state
        sent += [(n.kind, n.dedupe_key, n.details) for n in outcome.notices]
        # The same scan again (another poll, a webhook repeat) sends nothing more.
        assert not carrier_reports(state, status, hours).notices
    assert sent == [
        (MessageKind.OUT_FOR_DELIVERY, "out-for-delivery:1", {"attempt": "1"}),
        (MessageKind.DELIVERY_FAILED, "delivery-failed:1", {"attempt": "1", "location": "Campinas"}),
        (MessageKind.OUT_FOR_DELIVERY, "out-for-delivery:2", {"attempt": "2"}),
        (MessageKind.DELIVERY_FAILED, "delivery-failed:2", {"attempt": "2", "location": "Campinas"}),
        (MessageKind.AVAILABLE_FOR_PICKUP, "pickup:SIM-ONTIME-1", {"location": "Campinas"}),
        (MessageKind.DELIVERED, "delivered", {}),
    ]


@pytest.mark.parametrize(
    ("status", "kind"), [(OrderStatus.RETURNED, MessageKind.RETURNED), (OrderStatus.LOST, MessageKind.LOST)]
)
def test_returned_and_lost_send_their_message_and_never_a_review_request(
    status: OrderStatus, kind: MessageKind
):
    outcome = carrier_reports(state_in(OrderStatus.IN_TRANSIT), status, 1)
    assert [(n.kind, n.dedupe_key) for n in outcome.notices] == [(kind, status.value)]
    assert machine.review_deadline(outcome.state, POLICY) is None
    assert machine.undelivered_review_deadline(outcome.state, POLICY) is None


def test_no_review_request_for_a_cancelled_order():
    state = state_in(OrderStatus.CONFIRMED)
    cancelled = machine.on_cancel(state, CancelRequest(reason="out of stock", operator="rita"), NOW).state
    assert machine.review_deadline(cancelled, POLICY) is None
    assert machine.undelivered_review_deadline(cancelled, POLICY) is None


def test_without_a_delivery_event_the_review_request_goes_thirty_days_after_shipping():
    state = state_in(OrderStatus.IN_TRANSIT)
    due = machine.undelivered_review_deadline(state, POLICY)
    assert due == NOW + timedelta(days=30)
    outcome = machine.on_review_due(state, POLICY, due)
    assert [n.kind for n in outcome.notices] == [MessageKind.REVIEW_REQUEST]
    assert outcome.state.status == OrderStatus.COMPLETED
    assert "No delivery event 30d after shipping" in outcome.entries[-1].message


def test_a_failed_attempt_unresolved_a_day_later_gets_one_reminder():
    failed = carrier_reports(state_in(OrderStatus.OUT_FOR_DELIVERY), OrderStatus.DELIVERY_FAILED, 1).state
    due = machine.failed_attempt_deadline(failed, POLICY)
    assert due == failed.status_since + timedelta(days=1)
    assert not machine.on_failed_attempt_unresolved(failed, POLICY, due - timedelta(minutes=1)).changed
    reminded = machine.on_failed_attempt_unresolved(failed, POLICY, due)
    assert [(n.kind, n.dedupe_key, n.details) for n in reminded.notices] == [
        (MessageKind.DELIVERY_FAILED, "delivery-failed:1:follow-up", {"attempt": "1", "follow_up": "1"})
    ]
    assert reminded.entries[-1].kind == EntryKind.MESSAGE
    assert machine.failed_attempt_deadline(reminded.state, POLICY) is None  # one reminder only


def test_a_failed_attempt_resolved_within_the_day_gets_no_reminder():
    failed = carrier_reports(state_in(OrderStatus.OUT_FOR_DELIVERY), OrderStatus.DELIVERY_FAILED, 1).state
    delivered = carrier_reports(failed, OrderStatus.DELIVERED, 5).state
    assert machine.failed_attempt_deadline(delivered, POLICY) is None


def test_an_operator_reverting_a_status_withdraws_its_waiting_message():
    out = carrier_reports(state_in(OrderStatus.IN_TRANSIT), OrderStatus.OUT_FOR_DELIVERY, 1).state
    delivered = carrier_reports(out, OrderStatus.DELIVERED, 2).state
    back = CorrectionRequest(
        status=OrderStatus.OUT_FOR_DELIVERY, reason="scanned the wrong parcel", operator="rita"
    )
    outcome = machine.on_correction(delivered, back, NOW)
    assert outcome.withdrawn == (MessageKind.DELIVERED,)
    assert [n.kind for n in outcome.notices] == [MessageKind.OUT_FOR_DELIVERY]
    # Redone by the carrier later: the same dedupe key, so a delivered message already sent is not repeated.
    again = carrier_reports(outcome.state, OrderStatus.DELIVERED, 3)
    assert [n.dedupe_key for n in again.notices] == ["delivered"]


def test_an_operator_moving_an_order_forward_withdraws_nothing():
    shipped = state_in(OrderStatus.SHIPPED)
    forward = CorrectionRequest(status=OrderStatus.IN_TRANSIT, reason="carrier scan missing", operator="rita")
    assert machine.on_correction(shipped, forward, NOW).withdrawn == ()


def test_operator_actions_notify_the_customer_unless_told_not_to():
    state = state_in(OrderStatus.CONFIRMED)
    loud = AddressChangeRequest(address=NEW_ADDRESS, reason="typo in street", operator="rita")
    quiet = loud.model_copy(update={"notify_customer": False})
    assert [n.kind for n in machine.on_address_change(state, loud, NOW).notices] == [
        MessageKind.ADDRESS_CHANGED
    ]
    assert machine.on_address_change(state, quiet, NOW).notices == ()
    cancel = CancelRequest(reason="fraud check failed", operator="rita", notify_customer=False)
    assert machine.on_cancel(state, cancel, NOW).notices == ()
    correct = CorrectionRequest(
        status=OrderStatus.DELIVERED,
        reason="customer confirmed by phone",
        operator="rita",
        notify_customer=False,
    )
    assert machine.on_correction(state_in(OrderStatus.IN_TRANSIT), correct, NOW).notices == ()


def test_each_address_change_is_its_own_message():
    state = state_in(OrderStatus.CONFIRMED)
    first = machine.on_address_change(
        state, AddressChangeRequest(address=NEW_ADDRESS, reason="typo in street", operator="rita"), NOW
    )
    other = NEW_ADDRESS.model_copy(update={"line1": "Rua Velha 2"})
    second = machine.on_address_change(
        first.state, AddressChangeRequest(address=other, reason="customer moved", operator="rita"), NOW
    )
    assert first.notices[0].dedupe_key != second.notices[0].dedupe_key


def test_delay_messages_carry_the_delay_kind_for_translation():
    state = state_in(OrderStatus.CONFIRMED, confirmed_at=NOW)
    outcome = machine.on_ship_by_missed(state, POLICY, NOW + POLICY.ship_by)
    assert outcome.notices[0].details["delay_kind"] == "ship_by"


def test_a_refused_message_is_recorded_for_ops_without_changing_the_status():
    state = state_in(OrderStatus.SHIPPED)
    outcome = machine.on_message_refused(state, "shipped email refused: 550 no such user", NOW)
    assert outcome.state.status == OrderStatus.SHIPPED
    assert outcome.entries[-1].kind == EntryKind.MESSAGE and not outcome.notices


def test_a_refused_signal_is_recorded_for_ops_and_changes_nothing_else():
    state = state_in(OrderStatus.SHIPPED)
    refusal = "signal cancel refused: the order is shipped; ... Allowed now: correct_status."
    outcome = machine.on_refused_signal(state, refusal, "rita", "customer asked", NOW)
    (entry,) = outcome.entries
    assert (entry.kind, entry.message, entry.actor, entry.reason) == (
        EntryKind.REFUSED,
        refusal,
        "rita",
        "customer asked",
    )
    assert entry.seq == state.version + 1 and entry.status == OrderStatus.SHIPPED
    assert outcome.state.status == OrderStatus.SHIPPED and outcome.notices == () and outcome.withdrawn == ()
