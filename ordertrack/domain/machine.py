"""The order state machine: which changes are allowed and what each one does.

Every function takes the current `OrderState` and returns an `Outcome` (the next state, the new
timeline entries and the customer notices to send) or raises `TransitionRejected` with a message a
person can act on. The workflow calls the `check_*` functions from its update validators and the
`on_*` functions to apply; both share one rule set, so a validator never disagrees with its handler.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any

from ordertrack.domain.durations import format_duration
from ordertrack.domain.messages import (
    AddressChangeRequest,
    CancelRequest,
    CorrectionRequest,
    FulfillmentUpdate,
    TokenRotationRequest,
)
from ordertrack.domain.models import Order, PaymentStatus
from ordertrack.domain.notices import PAYMENT_PENDING, MessageKind, Notice
from ordertrack.domain.policy import TimingPolicy
from ordertrack.domain.progress import DelayKind
from ordertrack.domain.state import OrderState
from ordertrack.domain.statuses import (
    FINAL,
    NEEDS_TRACKING,
    PRE_SHIPMENT,
    TRACKED,
    FulfillmentEvent,
    OrderStatus,
)
from ordertrack.domain.timeline import EntryKind, TimelineEntry
from ordertrack.domain.tracking import TrackingSnapshot

SYSTEM = "system"
SHOP = "shop"
CARRIER = "carrier"


class TransitionRejected(ValueError):
    """A requested change is not allowed now; the message says what was asked, why not, and what is."""


@dataclass(frozen=True)
class Outcome:
    """`withdrawn`: kinds of messages still waiting to go out that this change makes untrue (an
    operator reverted the status they announce)."""

    state: OrderState
    entries: tuple[TimelineEntry, ...] = ()
    notices: tuple[Notice, ...] = ()
    withdrawn: tuple[MessageKind, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.entries)


# event -> (statuses it may come from, status it leads to)
FULFILLMENT_RULES: dict[FulfillmentEvent, tuple[frozenset[OrderStatus], OrderStatus]] = {
    FulfillmentEvent.PAYMENT_CONFIRMED: (frozenset({OrderStatus.RECEIVED}), OrderStatus.CONFIRMED),
    FulfillmentEvent.PICKING_STARTED: (frozenset({OrderStatus.CONFIRMED}), OrderStatus.PICKING),
    FulfillmentEvent.PACKED: (
        frozenset({OrderStatus.CONFIRMED, OrderStatus.PICKING}),
        OrderStatus.PACKED,
    ),
    FulfillmentEvent.SHIPPED: (
        frozenset({OrderStatus.CONFIRMED, OrderStatus.PICKING, OrderStatus.PACKED}),
        OrderStatus.SHIPPED,
    ),
}


def delivery_attempt(state: OrderState) -> int:
    """Which delivery attempt the order is on: out for delivery, the one under way; after a failed
    attempt, the one that failed."""
    return state.failed_attempts + (state.status == OrderStatus.OUT_FOR_DELIVERY)


# The message entering each status sends, and its dedupe key: once per shipment, delivery attempt
# or order, so repeated carrier scans and an operator's revert-and-redo never send it twice.
STATUS_MESSAGES: dict[OrderStatus, tuple[MessageKind, Callable[[OrderState], str]]] = {
    OrderStatus.CONFIRMED: (MessageKind.CONFIRMATION, lambda s: "confirmed"),
    OrderStatus.SHIPPED: (MessageKind.SHIPPED, lambda s: f"shipped:{s.tracking_number}"),
    OrderStatus.OUT_FOR_DELIVERY: (
        MessageKind.OUT_FOR_DELIVERY,
        lambda s: f"out-for-delivery:{delivery_attempt(s)}",
    ),
    OrderStatus.DELIVERY_FAILED: (
        MessageKind.DELIVERY_FAILED,
        lambda s: f"delivery-failed:{delivery_attempt(s)}",
    ),
    OrderStatus.AVAILABLE_FOR_PICKUP: (
        MessageKind.AVAILABLE_FOR_PICKUP,
        lambda s: f"pickup:{s.tracking_number}",
    ),
    OrderStatus.DELIVERED: (MessageKind.DELIVERED, lambda s: "delivered"),
    OrderStatus.CANCELLED: (MessageKind.CANCELLED, lambda s: "cancelled"),
    OrderStatus.RETURNED: (MessageKind.RETURNED, lambda s: "returned"),
    OrderStatus.LOST: (MessageKind.LOST, lambda s: "lost"),
}

# Messages that name the delivery attempt they are about.
ATTEMPT_MESSAGES = frozenset({OrderStatus.OUT_FOR_DELIVERY, OrderStatus.DELIVERY_FAILED})

# Messages that say where the parcel is (the pickup point, where the attempt was made).
LOCATED_MESSAGES = frozenset({OrderStatus.DELIVERY_FAILED, OrderStatus.AVAILABLE_FOR_PICKUP})

# Where a parcel may still be delivered; with no delivery event this long, the review request goes anyway.
AWAITING_DELIVERY = frozenset(
    {
        OrderStatus.SHIPPED,
        OrderStatus.IN_TRANSIT,
        OrderStatus.OUT_FOR_DELIVERY,
        OrderStatus.AVAILABLE_FOR_PICKUP,
    }
)

# Statuses an operator may never set by hand: the start, the workflow's own ending, and the
# cancellation that has its own update (with its own "before shipping" rule).
NOT_CORRECTABLE_TO = frozenset({OrderStatus.RECEIVED, OrderStatus.COMPLETED, OrderStatus.CANCELLED})


def _names(values: Iterable[StrEnum]) -> str:
    listed = sorted(value.value for value in values)
    return ", ".join(listed) if listed else "nothing"


def _reject(action: str, state: OrderState, why: str, allowed: Iterable[StrEnum] | str) -> None:
    allowed_text = allowed if isinstance(allowed, str) else _names(allowed)
    raise TransitionRejected(
        f"{action} refused: the order is {state.status.value}; {why}. Allowed now: {allowed_text}."
    )


def allowed_fulfillment_events(state: OrderState) -> list[FulfillmentEvent]:
    return [event for event, (sources, _) in FULFILLMENT_RULES.items() if state.status in sources]


def allowed_corrections(state: OrderState) -> list[OrderStatus]:
    if state.status in FINAL:
        return []
    has_tracking = bool(state.carrier and state.tracking_number)
    return [
        status
        for status in OrderStatus
        if status not in NOT_CORRECTABLE_TO
        and status != state.status
        and (has_tracking or status not in NEEDS_TRACKING)
    ]


def is_whole_day(moment: datetime) -> bool:
    """A carrier's date without a time of day comes as midnight: it means that whole day."""
    return moment.timetz().replace(tzinfo=None) == time(0, 0)


def estimate_deadline(estimate: datetime) -> datetime:
    """When an estimated delivery counts as missed: a date-only estimate (midnight) lasts all day."""
    if is_whole_day(estimate):
        return estimate + timedelta(days=1)
    return estimate


def describe_moment(moment: datetime) -> str:
    """A date, or a date and time when the carrier gave one (midnight means a whole day)."""
    if is_whole_day(moment):
        return f"{moment:%Y-%m-%d}"
    return f"{moment:%Y-%m-%d %H:%M %Z}".strip()


# ---------------------------------------------------------------------------------------------
# Building outcomes


class _Change:
    """Accumulates one outcome: field updates, timeline entries and notices, applied in order."""

    def __init__(self, state: OrderState, now: datetime) -> None:
        self.state = state
        self.now = now
        self.entries: list[TimelineEntry] = []
        self.notices: list[Notice] = []
        self.withdrawn: list[MessageKind] = []

    def update(self, **fields: Any) -> None:
        self.state = self.state.model_copy(update=fields)

    def record(
        self,
        kind: EntryKind,
        message: str,
        actor: str,
        *,
        reason: str | None = None,
        location: str | None = None,
        at: datetime | None = None,
        code: str | None = None,
    ) -> None:
        entry = TimelineEntry(
            seq=self.state.version + 1,
            at=at or self.now,
            kind=kind,
            status=self.state.status,
            message=message,
            actor=actor,
            reason=reason,
            location=location,
            code=code,
        )
        self.entries.append(entry)
        self.update(timeline=(*self.state.timeline, entry))

    def notify(self, kind: MessageKind, dedupe_key: str, **details: str) -> None:
        self.notices.append(Notice(kind, dedupe_key, details))

    def set_status(
        self,
        status: OrderStatus,
        message: str,
        actor: str,
        reason: str | None = None,
        *,
        notify: bool = True,
        details: dict[str, str] | None = None,
    ) -> None:
        """Move to `status` and run what entering it does (timestamps, delay flag, its message).

        `details` go with the message (see `ordertrack.domain.notices`); `notify=False` (an operator's
        silent change) sends none.
        """
        if status == self.state.status:
            return
        if self.state.status == OrderStatus.RECEIVED:  # paid or cancelled: no more asking to pay
            self.withdrawn.extend(PAYMENT_PENDING)
        fields: dict[str, Any] = {"status": status, "status_since": self.now}
        if status == OrderStatus.CONFIRMED:
            fields["confirmed_at"] = self.state.confirmed_at or self.now
        elif status == OrderStatus.SHIPPED:
            fields["shipped_at"] = self.state.shipped_at or self.now
        elif status == OrderStatus.DELIVERED:
            fields.update(delivered_at=self.now, delayed=False, delay_reason=None, delay_kind=None)
        elif status == OrderStatus.DELIVERY_FAILED:
            fields["failed_attempts"] = self.state.failed_attempts + 1
        if status != OrderStatus.DELIVERED and self.state.delivered_at and status in TRACKED:
            fields["delivered_at"] = None  # an operator reverted a delivery: no review request
        self.update(**fields)
        self.record(EntryKind.STATUS, message, actor, reason=reason)
        if notify and status in STATUS_MESSAGES:
            kind, key_for = STATUS_MESSAGES[status]
            message_details = dict(details or {})
            if status in ATTEMPT_MESSAGES:
                message_details["attempt"] = str(delivery_attempt(self.state))
            self.notify(kind, key_for(self.state), **message_details)

    def flag_delay(
        self, kind: DelayKind, dedupe_key: str, reason: str, new_date: datetime | None = None
    ) -> None:
        self.update(delayed=True, delay_reason=reason, delay_kind=kind)
        self.record(EntryKind.DELAY, reason, SYSTEM, code=kind.value)
        details = {"reason": reason, "delay_kind": kind.value}
        if new_date:
            details["new_date"] = new_date.isoformat()
        self.notify(MessageKind.DELAYED, dedupe_key, **details)

    def withdraw(self, kind: MessageKind) -> None:
        self.withdrawn.append(kind)

    def outcome(self) -> Outcome:
        return Outcome(self.state, tuple(self.entries), tuple(self.notices), tuple(self.withdrawn))


# ---------------------------------------------------------------------------------------------
# The start


def initial_state(order: Order, now: datetime) -> OrderState:
    return OrderState(
        status=OrderStatus.RECEIVED,
        status_since=now,
        delayed=False,
        received_at=now,
        shipping_address=order.shipping_address,
    )


def on_start(order: Order, policy: TimingPolicy, now: datetime) -> Outcome:
    """A new order: received, and confirmed at once when it is already paid; otherwise the
    customer hears that it awaits payment, how to pay (the order's instructions) and by when."""
    change = _Change(initial_state(order, now), now)
    change.record(EntryKind.STATUS, "Order received", SHOP)
    if order.payment.status == PaymentStatus.PAID:
        change.set_status(OrderStatus.CONFIRMED, "Order confirmed (paid)", SYSTEM)
    elif pay_by := payment_deadline(change.state, policy):
        change.notify(MessageKind.AWAITING_PAYMENT, "awaiting-payment", pay_by=pay_by.isoformat())
    return change.outcome()


# ---------------------------------------------------------------------------------------------
# Requests (update handlers): check_* for validators, on_* to apply


def check_fulfillment(state: OrderState, update: FulfillmentUpdate) -> OrderStatus | None:
    """The status the event leads to, None when it repeats what is already recorded (a retry)."""
    action = f"record_fulfillment {update.event.value!r}"
    sources, target = FULFILLMENT_RULES[update.event]
    repeat = state.status == target and (
        update.tracking_number in (None, state.tracking_number) and update.carrier in (None, state.carrier)
    )
    if repeat:
        return None
    if state.status not in sources:
        _reject(
            action,
            state,
            f"{update.event.value} comes only after {_names(sources)}",
            allowed_fulfillment_events(state),
        )
    if update.event == FulfillmentEvent.SHIPPED:
        if not ((update.carrier or state.carrier) and (update.tracking_number or state.tracking_number)):
            _reject(
                action,
                state,
                "shipping needs a carrier and a tracking number, "
                "and none were given here or when the order was packed",
                "shipped with carrier and tracking_number",
            )
    elif update.event != FulfillmentEvent.PACKED and (update.carrier or update.tracking_number):
        _reject(
            action,
            state,
            "a carrier and tracking number belong to packed or shipped",
            allowed_fulfillment_events(state),
        )
    return target


def on_fulfillment(state: OrderState, update: FulfillmentUpdate, now: datetime) -> Outcome:
    target = check_fulfillment(state, update)
    change = _Change(state, now)
    if target is None:
        return change.outcome()
    if update.carrier or update.tracking_number:
        change.update(
            carrier=update.carrier or state.carrier,
            tracking_number=update.tracking_number or state.tracking_number,
        )
    messages = {
        OrderStatus.CONFIRMED: "Payment confirmed",
        OrderStatus.PICKING: "Picking started",
        OrderStatus.PACKED: "Packed",
        OrderStatus.SHIPPED: f"Handed to {change.state.carrier} ({change.state.tracking_number})",
    }
    change.set_status(target, messages[target], SHOP)
    return change.outcome()


def check_correction(state: OrderState, request: CorrectionRequest) -> None:
    allowed = allowed_corrections(state)
    if request.status in allowed:
        return
    action = f"correct_status to {request.status.value!r}"
    if request.status == state.status:
        why = "it already has that status"
    elif request.status == OrderStatus.CANCELLED:
        why = "cancelling has its own update, cancel, allowed only before shipping"
    elif request.status in NOT_CORRECTABLE_TO:
        why = f"{request.status.value} is set only by the order itself"
    elif state.status in FINAL:
        why = "a finished order cannot change"
    else:
        why = f"{request.status.value} needs a carrier and a tracking number, and the order has none"
    _reject(action, state, why, allowed)


def on_correction(state: OrderState, request: CorrectionRequest, now: datetime) -> Outcome:
    check_correction(state, request)
    change = _Change(state, now)
    change.set_status(
        request.status,
        f"Status corrected from {state.status.value} to {request.status.value}",
        request.operator,
        reason=request.reason,
        notify=request.notify_customer,
    )
    # Back to a status the order had been in: what the left status announced is no longer true.
    earlier = {entry.status for entry in state.timeline if entry.kind == EntryKind.STATUS}
    if request.status in earlier and state.status in STATUS_MESSAGES:
        change.withdraw(STATUS_MESSAGES[state.status][0])
    return change.outcome()


def check_cancel(state: OrderState, request: CancelRequest) -> None:
    if state.status not in PRE_SHIPMENT:
        _reject(
            "cancel",
            state,
            "an order can be cancelled only before it is shipped",
            "correct_status" if state.status not in FINAL else "nothing",
        )


def on_cancel(state: OrderState, request: CancelRequest, now: datetime) -> Outcome:
    check_cancel(state, request)
    change = _Change(state, now)
    change.set_status(
        OrderStatus.CANCELLED,
        "Order cancelled",
        request.operator,
        reason=request.reason,
        notify=request.notify_customer,
        details={"cause": "shop"},
    )
    return change.outcome()


def check_address_change(state: OrderState, request: AddressChangeRequest) -> None:
    if state.status not in PRE_SHIPMENT:
        _reject(
            "change_shipping_address",
            state,
            "the address can change only before the parcel is shipped",
            "correct_status" if state.status not in FINAL else "nothing",
        )
    if request.address == state.shipping_address:
        _reject(
            "change_shipping_address",
            state,
            "the new address is the one already on the order",
            "a different address",
        )


def on_address_change(state: OrderState, request: AddressChangeRequest, now: datetime) -> Outcome:
    check_address_change(state, request)
    change = _Change(state, now)
    change.update(shipping_address=request.address)
    change.record(
        EntryKind.ADDRESS,
        f"Shipping address changed (now {request.address.city}, {request.address.country})",
        request.operator,
        reason=request.reason,
    )
    if request.notify_customer:
        change.notify(MessageKind.ADDRESS_CHANGED, f"address:{change.state.version}")
    return change.outcome()


def check_token_rotation(state: OrderState, request: TokenRotationRequest, current_token: str) -> None:
    if request.tracking_token == current_token:
        _reject("rotate_tracking_token", state, "the new token is the one in use", "a different token")


def on_token_rotation(
    state: OrderState, request: TokenRotationRequest, current_token: str, now: datetime
) -> Outcome:
    check_token_rotation(state, request, current_token)
    change = _Change(state, now)
    change.record(EntryKind.TRACKING_LINK, "Tracking link replaced", request.operator, reason=request.reason)
    return change.outcome()


# ---------------------------------------------------------------------------------------------
# The carrier


def on_tracking(
    state: OrderState, snapshot: TrackingSnapshot, policy: TimingPolicy, now: datetime
) -> Outcome:
    """Merge a carrier snapshot: new scans, a moved estimate (a delay), and the carrier's status.

    An estimate that moves later by `policy.estimate_slip` or more is a delay, with one notice per
    new estimate however many polls repeat it; a smaller shift (a time of day) is only recorded.

    A snapshot for another shipment, or for an order not (or no longer) tracked, changes nothing;
    one older than the scans already seen adds its missing scans but does not move the status back.
    """
    change = _Change(state, now)
    same_shipment = (snapshot.carrier, snapshot.tracking_number) == (state.carrier, state.tracking_number)
    if state.status not in TRACKED or not same_shipment:
        return change.outcome()

    seen = set(state.seen_scans)
    fresh = sorted((e for e in snapshot.events if e.key not in seen), key=lambda e: e.at)
    for event in fresh:
        change.record(EntryKind.SCAN, event.message, CARRIER, location=event.location, at=event.at)
    if fresh:
        latest = max(filter(None, (state.last_scan_at, fresh[-1].at)))
        change.update(seen_scans=(*state.seen_scans, *(e.key for e in fresh)), last_scan_at=latest)

    estimate, previous = snapshot.estimated_delivery, state.estimated_delivery
    if estimate and estimate != previous:
        change.update(estimated_delivery=estimate)
        if previous and estimate - previous >= policy.estimate_slip:
            change.flag_delay(
                DelayKind.ESTIMATE_MOVED,
                f"estimate:{estimate.isoformat()}",
                f"The carrier moved the estimated delivery from {describe_moment(previous)} "
                f"to {describe_moment(estimate)}",
                new_date=estimate,
            )
        else:
            change.record(EntryKind.ESTIMATE, f"Estimated delivery {describe_moment(estimate)}", CARRIER)

    outdated = state.last_scan_at and (snapshot.latest_event_at or now) < state.last_scan_at
    if snapshot.status != state.status and not outdated:
        last_scan = max(snapshot.events, key=lambda e: e.at, default=None)
        where = last_scan.location if last_scan and snapshot.status in LOCATED_MESSAGES else None
        change.set_status(
            snapshot.status,
            f"Carrier reports {snapshot.status.value.replace('_', ' ')}",
            CARRIER,
            details={"location": where} if where else None,
        )
    # Remembered even when nothing else changed, so the next poll waits for a different answer.
    change.update(tracking_fingerprint=snapshot.fingerprint())
    return change.outcome()


def on_tracking_error(state: OrderState, message: str, now: datetime) -> Outcome:
    """Tracking could not be read for good (unknown number, bad credentials): recorded for ops."""
    change = _Change(state, now)
    change.record(EntryKind.CARRIER_ERROR, message, CARRIER)
    return change.outcome()


# ---------------------------------------------------------------------------------------------
# Deadlines: when each is due, and what its passing does


def payment_deadline(state: OrderState, policy: TimingPolicy) -> datetime | None:
    return state.received_at + policy.payment_timeout if state.status == OrderStatus.RECEIVED else None


def payment_reminder_deadline(state: OrderState, policy: TimingPolicy) -> datetime | None:
    """One reminder `payment_reminder_before` the payment timeout, when that is after the start."""
    before, timeout = policy.payment_reminder_before, payment_deadline(state, policy)
    if timeout and before and before < policy.payment_timeout and not state.payment_reminded:
        return timeout - before
    return None


def ship_by_deadline(state: OrderState, policy: TimingPolicy) -> datetime | None:
    waiting = state.status in PRE_SHIPMENT and state.status != OrderStatus.RECEIVED
    if waiting and state.confirmed_at and not state.ship_by_missed:
        return state.confirmed_at + policy.ship_by
    return None


def estimate_missed_deadline(state: OrderState, policy: TimingPolicy) -> datetime | None:
    estimate = state.estimated_delivery
    if state.status in TRACKED and estimate and state.estimate_passed != estimate:
        return estimate_deadline(estimate)
    return None


def stale_deadline(state: OrderState, policy: TimingPolicy) -> datetime | None:
    """No scan for this long marks a tracked order lost; a lost order is watched as long again."""
    if state.status == OrderStatus.LOST:
        return state.status_since + policy.stale_tracking_after
    since = state.tracking_since
    return since + policy.stale_tracking_after if state.status in TRACKED and since else None


def review_deadline(state: OrderState, policy: TimingPolicy) -> datetime | None:
    if state.status == OrderStatus.DELIVERED and state.delivered_at:
        return state.delivered_at + policy.review_request_delay
    return None


def undelivered_review_deadline(state: OrderState, policy: TimingPolicy) -> datetime | None:
    """Long after shipping when the carrier never reported a delivery (never for an order returned,
    lost or cancelled)."""
    if state.status in AWAITING_DELIVERY and state.shipped_at:
        return state.shipped_at + policy.review_without_delivery_after
    return None


def failed_attempt_deadline(state: OrderState, policy: TimingPolicy) -> datetime | None:
    """A failed delivery attempt still unresolved this long later gets one reminder."""
    if state.status == OrderStatus.DELIVERY_FAILED and state.followed_up_attempt < state.failed_attempts:
        return state.status_since + policy.failed_attempt_follow_up
    return None


def on_payment_timeout(state: OrderState, policy: TimingPolicy, now: datetime) -> Outcome:
    change = _Change(state, now)
    deadline = payment_deadline(state, policy)
    if deadline and now >= deadline:
        change.set_status(
            OrderStatus.CANCELLED,
            "Order cancelled: payment was not confirmed in time",
            SYSTEM,
            reason=f"payment not confirmed within {format_duration(policy.payment_timeout)}",
            details={"cause": "payment_timeout"},
        )
    return change.outcome()


def on_payment_reminder_due(state: OrderState, policy: TimingPolicy, now: datetime) -> Outcome:
    """The reminder, never once the timeout has passed: then the cancellation is the news."""
    change = _Change(state, now)
    deadline, timeout = payment_reminder_deadline(state, policy), payment_deadline(state, policy)
    if deadline and timeout and deadline <= now < timeout:
        change.update(payment_reminded=True)
        waited = format_duration(deadline - state.received_at)
        change.record(EntryKind.MESSAGE, f"Payment still pending after {waited}: reminder sent", SYSTEM)
        change.notify(MessageKind.PAYMENT_REMINDER, "payment-reminder", pay_by=timeout.isoformat())
    return change.outcome()


def on_ship_by_missed(state: OrderState, policy: TimingPolicy, now: datetime) -> Outcome:
    change = _Change(state, now)
    deadline = ship_by_deadline(state, policy)
    if deadline and now >= deadline:
        change.update(ship_by_missed=True)
        change.flag_delay(
            DelayKind.SHIP_BY, "ship-by", f"Not handed to the carrier by {deadline:%Y-%m-%d %H:%M %Z}".strip()
        )
    return change.outcome()


def on_estimate_missed(state: OrderState, policy: TimingPolicy, now: datetime) -> Outcome:
    change = _Change(state, now)
    deadline = estimate_missed_deadline(state, policy)
    estimate = state.estimated_delivery
    if deadline and estimate and now >= deadline:
        change.update(estimate_passed=estimate)
        change.flag_delay(
            DelayKind.ESTIMATE_MISSED,
            f"estimate-missed:{estimate.isoformat()}",
            f"The estimated delivery ({describe_moment(estimate)}) has passed",
        )
    return change.outcome()


def on_tracking_stale(state: OrderState, policy: TimingPolicy, now: datetime) -> Outcome:
    change = _Change(state, now)
    deadline = stale_deadline(state, policy)
    if state.status != OrderStatus.LOST and deadline and now >= deadline:
        change.set_status(
            OrderStatus.LOST,
            f"No carrier scan since {state.tracking_since:%Y-%m-%d %H:%M}",
            SYSTEM,
            reason=f"no scan for {format_duration(policy.stale_tracking_after)}",
        )
    return change.outcome()


def on_review_due(state: OrderState, policy: TimingPolicy, now: datetime) -> Outcome:
    change = _Change(state, now)
    deadline = review_deadline(state, policy) or undelivered_review_deadline(state, policy)
    if deadline and now >= deadline:
        change.notify(MessageKind.REVIEW_REQUEST, "review")
        if state.status == OrderStatus.DELIVERED:
            message = "Review request sent; order completed"
        else:
            waited = format_duration(policy.review_without_delivery_after)
            message = f"No delivery event {waited} after shipping: review request sent; order completed"
        change.set_status(OrderStatus.COMPLETED, message, SYSTEM)
    return change.outcome()


def on_failed_attempt_unresolved(state: OrderState, policy: TimingPolicy, now: datetime) -> Outcome:
    change = _Change(state, now)
    deadline = failed_attempt_deadline(state, policy)
    if deadline and now >= deadline:
        attempt = delivery_attempt(state)
        change.update(followed_up_attempt=attempt)
        waited = format_duration(policy.failed_attempt_follow_up)
        change.record(
            EntryKind.MESSAGE,
            f"Delivery attempt {attempt} still unresolved after {waited}: reminder sent",
            SYSTEM,
        )
        change.notify(
            MessageKind.DELIVERY_FAILED,
            f"delivery-failed:{attempt}:follow-up",
            attempt=str(attempt),
            follow_up="1",
        )
    return change.outcome()


def on_message_not_sent(state: OrderState, description: str, now: datetime) -> Outcome:
    """A customer message will not go out: refused for good (a bad address or number, a channel not
    configured) or not sent by choice (no review page, unsubscribed). Recorded for ops; the order
    carries on."""
    change = _Change(state, now)
    change.record(EntryKind.MESSAGE, description, SYSTEM)
    return change.outcome()


def on_refused_signal(
    state: OrderState, refusal: str, actor: str, reason: str | None, now: datetime
) -> Outcome:
    """A request that came as a signal and was refused (`refusal` says what was asked, why not and
    what is allowed now), or a signal the order cannot read: a signal cannot answer its sender, so
    the refusal is recorded for ops; nothing else changes."""
    change = _Change(state, now)
    change.record(EntryKind.REFUSED, refusal, actor, reason=reason)
    return change.outcome()


PAYMENT_REMINDER = "payment reminder"


@dataclass(frozen=True)
class Deadline:
    """A moment the order waits for: `due` says when (None: not now), `passed` what its passing does."""

    name: str
    due: Callable[[OrderState, TimingPolicy], datetime | None]
    passed: Callable[[OrderState, TimingPolicy, datetime], Outcome]


DEADLINES = (
    Deadline("payment timeout", payment_deadline, on_payment_timeout),
    Deadline(PAYMENT_REMINDER, payment_reminder_deadline, on_payment_reminder_due),
    Deadline("ship-by", ship_by_deadline, on_ship_by_missed),
    Deadline("estimated delivery", estimate_missed_deadline, on_estimate_missed),
    Deadline("stale tracking", stale_deadline, on_tracking_stale),
    Deadline("review request", review_deadline, on_review_due),
    Deadline("review request without delivery", undelivered_review_deadline, on_review_due),
    Deadline("failed attempt reminder", failed_attempt_deadline, on_failed_attempt_unresolved),
)


def is_done(state: OrderState, policy: TimingPolicy, now: datetime) -> bool:
    """Whether the workflow may end: a final status, or a lost order watched long enough."""
    if state.status in FINAL:
        return True
    deadline = stale_deadline(state, policy)
    return state.status == OrderStatus.LOST and deadline is not None and now >= deadline
