"""OrderWorkflow: one per order, from receipt to review request, thin over the domain's state machine.

The workflow only waits and delegates: the pure `machine` decides what every request, carrier
snapshot and deadline does, and `_set_status()` is the one place where the status, the search
attributes, the UI's current details, the read model and the customer's messages change together.
"""

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from ordertrack.counters import SHOP_WEBHOOK_GIVE_UPS
    from ordertrack.domain import machine
    from ordertrack.domain.durations import format_duration
    from ordertrack.domain.machine import Outcome, TransitionRejected
    from ordertrack.domain.messages import (
        AddressChangeRequest,
        CancelRequest,
        CorrectionRequest,
        FulfillmentUpdate,
        OperatorAction,
        OrderInput,
        TokenRotationRequest,
    )
    from ordertrack.domain.models import Order, PaymentStatus
    from ordertrack.domain.notices import (
        PAYMENT_PENDING,
        SMS_KINDS,
        Channel,
        MessageKind,
        Notice,
        next_daytime,
        waits_for_daytime,
    )
    from ordertrack.domain.polling import PUSH_SLOWDOWN, PollState, pushes_quiet_at
    from ordertrack.domain.records import (
        ChangeRecord,
        NotificationRequest,
        NotificationResult,
        OrderRecord,
        PollCadence,
        PollRequest,
        ShopEvent,
    )
    from ordertrack.domain.state import OrderState
    from ordertrack.domain.statuses import TRACKED
    from ordertrack.domain.tracking import TrackingSnapshot
    from ordertrack.domain.view import OrderView, current_details, order_view
    from ordertrack.names import (
        CANCEL_SIGNAL,
        CANCEL_UPDATE,
        CARRIER_AUTH_FAILED_ERROR,
        CARRIER_UPDATE_SIGNAL,
        CHANGE_SHIPPING_ADDRESS_SIGNAL,
        CHANGE_SHIPPING_ADDRESS_UPDATE,
        CORRECT_STATUS_SIGNAL,
        CORRECT_STATUS_UPDATE,
        DELIVER_SHOP_EVENT,
        MESSAGE_REJECTED_ERROR,
        POLL_CARRIER,
        RECORD_CHANGE,
        RECORD_FULFILLMENT_UPDATE,
        ROTATE_TRACKING_TOKEN_UPDATE,
        SAVE_ORDER,
        SEARCH_ATTRIBUTE_FIELDS,
        SEND_NOTIFICATION,
        SEND_SMS,
        SEND_WHATSAPP,
        SHOP_WEBHOOK_REJECTED_ERROR,
        SIGNALS,
        SMS_NOT_CONFIGURED_ERROR,
        STATUS_QUERY,
        TRACKING_NOT_FOUND_ERROR,
        TRANSITION_REJECTED_ERROR,
        UNKNOWN_CARRIER_ERROR,
        WHATSAPP_NOT_CONFIGURED_ERROR,
        WORKFLOW_TYPE,
    )

STORE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
# A refused address or number is final; an unreachable server or provider is retried until it is back.
MESSAGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=[MESSAGE_REJECTED_ERROR],
)
SEND_ACTIVITY = {Channel.EMAIL: SEND_NOTIFICATION, Channel.SMS: SEND_SMS, Channel.WHATSAPP: SEND_WHATSAPP}
# A message that will never go out, recorded on the timeline for ops: a refused address or number,
# or texts asked for by an order while this deployment has no SMS (or WhatsApp) provider configured.
MESSAGE_REFUSALS = frozenset(
    {MESSAGE_REJECTED_ERROR, SMS_NOT_CONFIGURED_ERROR, WHATSAPP_NOT_CONFIGURED_ERROR}
)
# Shop webhooks: backoff from 2 s up to 10 min between attempts, for up to a day, then given up.
WEBHOOK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=[SHOP_WEBHOOK_REJECTED_ERROR],
)
WEBHOOK_GIVE_UP_AFTER = timedelta(days=1)
# Customer messages v2 (twelve kinds, texts, quiet hours, reminders, refusals on the timeline) came
# after orders were already running: those replay and finish on the old path, without its marker.
MESSAGES_V2 = "customer-messages-v2"
V1_KINDS = frozenset(
    {
        MessageKind.CONFIRMATION,
        MessageKind.SHIPPED,
        MessageKind.DELAYED,
        MessageKind.DELIVERED,
        MessageKind.REVIEW_REQUEST,
        MessageKind.CANCELLED,
    }
)
V2_DEADLINES = frozenset({"review request without delivery", "failed attempt reminder"})
# Operators' requests as signals, refusals and unreadable or unknown signals on the timeline: signals
# that reached older runs were ignored there, and replay the same way, without this marker.
OPERATOR_SIGNALS = "operator-signals"
OperatorRequest = TypeVar("OperatorRequest", bound=OperatorAction)
SignalInput = TypeVar("SignalInput")
# Cost per order: the carrier is polled at a pace that follows the journey, the read model is
# written by local activities, a deadline keeps its one timer across the loop's turns, and the
# search attributes are upserted only when one the server holds changes: fewer billable actions and
# history events per order. It includes v2. Orders started before it replay and finish as they began.
COST_PER_ORDER = "cost-per-order"
# Awaiting payment: an order started with its payment pending gets the awaiting-payment message and
# one reminder before the payment timeout. It includes cost-per-order; only pending orders ask for
# it (a paid order's commands are the same either way). Pending orders started before it replay
# and finish as they began, hearing nothing until paid or cancelled.
AWAITING_PAYMENT = "awaiting-payment"
# A message the notify activity chose not to send (no review page configured, an unsubscribed
# address) is recorded on the timeline; before, it was only in the message log, and runs that saw
# one replay without the entry.
SUPPRESSED = "suppressed-on-timeline"
# Errors after which polling this shipment again cannot help; ops see them in the timeline.
POLL_GIVE_UP = [TRACKING_NOT_FOUND_ERROR, CARRIER_AUTH_FAILED_ERROR, UNKNOWN_CARRIER_ERROR]


@workflow.defn(name=WORKFLOW_TYPE)
class OrderWorkflow:
    @workflow.init
    def __init__(self, input: OrderInput) -> None:
        # Here, not in run: a signal or update delivered with the first task runs before run starts.
        self._awaiting, self._lean, self._v2 = self._paths(input.order)
        # The deadlines this run's path knows.
        self._deadlines = [
            deadline
            for deadline in machine.DEADLINES
            if (self._v2 or deadline.name not in V2_DEADLINES)
            and (self._awaiting or deadline.name != machine.PAYMENT_REMINDER)
        ]
        self._order = input.order
        self._policy = input.policy
        self._token = input.tracking_token
        self._shop_webhooks = input.shop_webhooks
        self._start: Outcome | None = None
        if input.state is None:
            self._start = machine.on_start(input.order, input.policy, workflow.now())
            self._state = self._start.state
        else:
            self._state = input.state
        self._ready = input.state is not None
        self._lock = asyncio.Lock()
        # One queue per channel, each worked by its own courier; a channel is in flight while sending.
        self._outboxes: dict[Channel, list[NotificationRequest]] = {channel: [] for channel in Channel}
        self._in_flight: set[Channel] = set()
        self._webhook_outbox: list[ShopEvent] = []
        self._posting = False
        self._poll: asyncio.Task[TrackingSnapshot] | None = None
        self._poll_interval: timedelta | None = None  # the cadence the running poll was started with
        self._poll_request: PollRequest | None = None  # what the running poll was started with
        self._last_push_at: datetime | None = None  # the carrier's last webhook push
        self._answered_at: datetime | None = None  # the carrier's last answer: a poll result or a push
        self._poll_failed_for: tuple[str | None, str | None] | None = None
        self._alarm: tuple[datetime, asyncio.Task[None]] | None = None  # the deadline timer running

    def _paths(self, order: Order) -> tuple[bool, bool, bool]:
        """Whether this run takes the awaiting-payment path, the cost-per-order one and the
        customer-messages-v2 one.

        A new order asks for the newest patch that concerns it alone, which includes the older
        paths: one patch marker, and one TemporalChangeVersion upsert (the SDK adds one to each),
        instead of one for every path.
        """
        pending = order.payment.status == PaymentStatus.PENDING
        awaiting = pending and workflow.patched(AWAITING_PAYMENT)
        lean = awaiting or workflow.patched(COST_PER_ORDER)
        return awaiting, lean, lean or workflow.patched(MESSAGES_V2)

    # -- run -------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: OrderInput) -> OrderView:
        couriers = [asyncio.create_task(self._deliver_messages(channel)) for channel in Channel]
        if self._shop_webhooks:
            couriers.append(asyncio.create_task(self._deliver_shop_events()))
        if self._start is not None:
            await self._setup(self._start)
        while not machine.is_done(self._state, self._policy, workflow.now()):
            if workflow.info().is_continue_as_new_suggested():
                await self._drain(couriers)
                workflow.continue_as_new(
                    OrderInput(
                        order=self._order,
                        policy=self._policy,
                        tracking_token=self._token,
                        shop_webhooks=self._shop_webhooks,
                        state=self._state,
                    )
                )
            await self._step()
        await self._drain(couriers)
        return self._view()

    async def _setup(self, start: Outcome) -> None:
        """Create the read-model row, then publish the start like any other change."""
        async with self._lock:
            await self._write(
                SAVE_ORDER,
                OrderRecord(
                    order=self._order,
                    workflow_id=workflow.info().workflow_id,
                    tracking_token=self._token,
                    view=self._view(),
                    time_zone=self._time_zone,
                ),
            )
            self._publish(None, start)
            self._ready = True

    async def _step(self) -> None:
        """Wait for the next thing that matters: a change, a poll result, or the nearest deadline."""
        self._steer_polling()
        version, poll, push = self._state.version, self._poll, self._last_push_at
        due = [(when, d) for d in self._deadlines if (when := d.due(self._state, self._policy))]
        wakes = [(when, d.name) for when, d in due]
        if not self._lean and (quiet_at := self._pushes_quiet_at()) and quiet_at > workflow.now():
            wakes.append((quiet_at, "poll faster again"))

        def woken() -> bool:
            return (
                self._state.version != version
                or (poll is not None and poll.done())
                or self._last_push_at != push
            )

        if self._lean:
            await self._wait_with_alarm(woken, min(wakes, default=None))
        else:
            await self._wait_with_timeout(woken, min(wakes, default=None))
        if poll is not None and poll.done() and poll is self._poll:
            await self._take_poll_result(poll)
        for when, deadline in due:
            if when <= workflow.now():
                await self._set_status(partial(self._deadline_passed, deadline))

    async def _wait_with_timeout(self, woken: Callable[[], bool], wake: tuple[datetime, str] | None) -> None:
        """Before cost-per-order: a new timer for the nearest deadline at every turn of the loop."""
        if wake:
            nearest, name = wake
            timeout: float | None = (nearest - workflow.now()).total_seconds()
            summary: str | None = f"{name} at {nearest:%Y-%m-%d %H:%M:%S} UTC"
        else:
            timeout = summary = None
        if timeout is None or timeout > 0:
            with contextlib.suppress(TimeoutError):  # a deadline passed: handled by the caller
                await workflow.wait_condition(woken, timeout=timeout, timeout_summary=summary)

    async def _wait_with_alarm(self, woken: Callable[[], bool], wake: tuple[datetime, str] | None) -> None:
        """Wait for `woken()` or the nearest deadline, on one timer that outlives the loop's turns.

        A timer is started only when the nearest deadline changes (timers are billed when started).
        While the carrier is polled its next answer may well bring a nearer deadline (the estimate),
        so a timer for a deadline that moved later or went away is kept meanwhile: it fires early
        and the loop looks again. With no poll running, it is replaced at once.
        """
        alarm = self._alarm
        if alarm is not None and alarm[1].done():
            alarm = self._alarm = None
        if wake is not None and wake[0] <= workflow.now():
            return  # a deadline passed: handled by the caller
        moment = wake[0] if wake else None
        polling = self._poll is not None and not self._poll.done()
        if alarm is not None and alarm[0] != moment and (moment is None or moment < alarm[0] or not polling):
            alarm[1].cancel()
            alarm = self._alarm = None
        if wake is not None and alarm is None:
            nearest, name = wake
            summary = f"{name} at {nearest:%Y-%m-%d %H:%M:%S} UTC"
            timer = asyncio.create_task(workflow.sleep(nearest - workflow.now(), summary=summary))
            alarm = self._alarm = nearest, timer
        await workflow.wait_condition(lambda: woken() or (alarm is not None and alarm[1].done()))

    def _deadline_passed(self, deadline: machine.Deadline, state: OrderState) -> Outcome:
        return deadline.passed(state, self._policy, workflow.now())

    def _message_not_sent(self, description: str, state: OrderState) -> Outcome:
        return machine.on_message_not_sent(state, description, workflow.now())

    # -- the one place where a change is made ----------------------------------------------------

    async def _set_status(self, decide: Callable[[OrderState], Outcome]) -> Outcome:
        """Decide on the latest state and, when something changed, publish it everywhere at once."""
        async with self._lock:
            outcome = decide(self._state)
            previous, self._state = self._state, outcome.state
            if outcome.changed:
                self._publish(previous, outcome)
                address = outcome.state.shipping_address
                await self._write(
                    RECORD_CHANGE,
                    ChangeRecord(
                        view=self._view(timeline=False),
                        entries=outcome.entries,
                        shipping_address=address if address != previous.shipping_address else None,
                        time_zone=self._time_zone,
                    ),
                )
            return outcome

    def _publish(self, previous: OrderState | None, outcome: Outcome) -> None:
        """Search attributes and current details follow the state; notices queue for the courier.

        Without a previous state (the start) every known value is set, whoever started the order.
        A change of status or delay flag also queues a shop event, when this order sends them.
        """
        state = outcome.state
        updates: list[SearchAttributeUpdate] = []
        held = workflow.info().typed_search_attributes  # the start's values, then this run's upserts
        for key, field in SEARCH_ATTRIBUTE_FIELDS:
            value = getattr(state, field)
            # Since cost-per-order, compared with what the server holds; before, with the last state.
            before = held.get(key) if self._lean else getattr(previous, field, None)
            if value != before:
                updates.append(key.value_unset() if value is None else key.value_set(value))
        if updates:
            workflow.upsert_search_attributes(updates)
        workflow.set_current_details(current_details(self._view()))
        for outbox in self._outboxes.values():
            outbox[:] = [request for request in outbox if request.kind not in outcome.withdrawn]
        for notice in outcome.notices:
            for channel in self._channels(notice):
                self._outboxes[channel].append(self._notification(notice, channel))
        if self._shop_webhooks and (
            previous is None or (previous.status, previous.delayed) != (state.status, state.delayed)
        ):
            self._webhook_outbox.append(self._shop_event(outcome))

    def _channels(self, notice: Notice) -> list[Channel]:
        """The customer's choice from the order: email, and texts (SMS, WhatsApp) for the moments
        worth one."""
        wants, phone = self._order.notify, self._order.customer.phone
        if not self._v2:
            return [Channel.EMAIL] if wants.email and notice.kind in V1_KINDS else []
        if notice.kind in PAYMENT_PENDING and not self._awaiting:
            return []
        channels = [Channel.EMAIL] if wants.email else []
        if phone and notice.kind in SMS_KINDS:
            texts = ((Channel.SMS, wants.sms), (Channel.WHATSAPP, wants.whatsapp))
            channels += [channel for channel, wanted in texts if wanted]
        return channels

    def _notification(self, notice: Notice, channel: Channel) -> NotificationRequest:
        """The message with the order as it stands: its current address, and a time zone to show
        times in (the customer's, else the policy's default, the one quiet hours use too)."""
        customer = self._order.customer.model_copy(update={"time_zone": self._time_zone})
        return NotificationRequest(
            kind=notice.kind,
            dedupe_key=notice.dedupe_key,
            channel=channel,
            order=self._order.model_copy(
                update={
                    "shipping_address": self._state.shipping_address,
                    "customer": customer,
                }
            ),
            view=self._view(timeline=False),
            details=notice.details,
        )

    def _shop_event(self, outcome: Outcome) -> ShopEvent:
        at = max((entry.at for entry in outcome.entries), default=workflow.now())
        return ShopEvent.of(self._order.order_id, outcome.state, at)

    async def _deliver_messages(self, channel: Channel) -> None:
        """Send one channel's queued messages one at a time, in order, without holding up the order.

        Texts and marketing mail wait for the customer's daytime on a durable timer; one withdrawn
        meanwhile (an operator reverted what it announced) is dropped. A refusal for good (a bad
        address or number) is recorded on the timeline for ops, and the order carries on.
        """
        outbox = self._outboxes[channel]
        while True:
            await workflow.wait_condition(lambda: bool(outbox))
            request = outbox[0]
            quiet = self._v2 and waits_for_daytime(request.kind, channel)
            if quiet and not await self._daytime_for(request, outbox):
                continue
            outbox.pop(0)
            self._in_flight.add(channel)
            try:
                result = await workflow.execute_activity(
                    SEND_ACTIVITY[channel],
                    request,
                    result_type=NotificationResult,
                    start_to_close_timeout=self._policy.message_send_timeout,
                    retry_policy=MESSAGE_RETRY,
                    summary=f"{channel.value} {request.kind.value} ({request.dedupe_key})",
                )
                if result.status == "suppressed" and result.server_reply and workflow.patched(SUPPRESSED):
                    why = f"{request.kind.value} {channel.value} not sent: {result.server_reply}"
                    await self._set_status(partial(self._message_not_sent, why))
            except ActivityError as err:
                cause = err.cause
                if isinstance(cause, ApplicationError) and cause.type in MESSAGE_REFUSALS:
                    await self._set_status(partial(self._message_not_sent, cause.message))
                else:
                    workflow.logger.warning("message %s not sent: %s", request.dedupe_key, cause or err)
            finally:
                self._in_flight.discard(channel)

    async def _daytime_for(self, request: NotificationRequest, outbox: list[NotificationRequest]) -> bool:
        """Wait until 08:00-20:00 where the customer lives; False when the message was withdrawn."""
        zone = self._time_zone
        send_at = next_daytime(workflow.now(), zone, self._policy.daytime_starts, self._policy.daytime_ends)
        if send_at > workflow.now():
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: not outbox or outbox[0] is not request,
                    timeout=send_at - workflow.now(),
                    timeout_summary=f"quiet hours: {request.channel.value} {request.kind.value} "
                    f"at {send_at:%Y-%m-%d %H:%M} {zone} time",
                )
        return bool(outbox) and outbox[0] is request

    async def _deliver_shop_events(self) -> None:
        """POST queued shop events one at a time, in order, without holding up the order's progress.

        Each is retried with backoff for up to `WEBHOOK_GIVE_UP_AFTER`, then given up (logged), so a
        receiver that is down for a while gets every event, in order, once it is back.
        """
        while True:
            await workflow.wait_condition(lambda: bool(self._webhook_outbox))
            self._posting = True
            event = self._webhook_outbox.pop(0)
            try:
                await workflow.execute_activity(
                    DELIVER_SHOP_EVENT,
                    event,
                    start_to_close_timeout=self._policy.activity_timeout,
                    schedule_to_close_timeout=WEBHOOK_GIVE_UP_AFTER,
                    retry_policy=WEBHOOK_RETRY,
                    summary=f"webhook {event.status.value}{' delayed' * event.delayed} (seq {event.seq})",
                )
            except ActivityError as err:
                workflow.logger.warning(
                    "shop event %s given up, not delivered: %s", event.event_id, err.cause or err
                )
                SHOP_WEBHOOK_GIVE_UPS.add(workflow.metric_meter())
            finally:
                self._posting = False

    async def _drain(self, couriers: list[asyncio.Task[None]]) -> None:
        """Before ending or continuing as new: no poll in flight, handlers done, every message sent
        and every shop event delivered or given up."""
        self._stop_polling()
        await workflow.wait_condition(
            lambda: (
                workflow.all_handlers_finished()
                and not any(self._outboxes.values())
                and not self._in_flight
                and not self._webhook_outbox
                and not self._posting
            )
        )
        for courier in couriers:
            courier.cancel()

    # -- carrier polling -------------------------------------------------------------------------

    def _steer_polling(self) -> None:
        """Poll while the parcel is with the carrier; the poll's failures "no change" do the waiting."""
        state = self._state
        shipment = (state.carrier, state.tracking_number)
        if state.status not in TRACKED or shipment == self._poll_failed_for:
            self._stop_polling()
        elif self._lean:
            self._poll_adaptively()
        else:
            self._poll_at_fixed_interval()

    def _poll_adaptively(self) -> None:
        """The poll paces itself from the order's tracking state (`ordertrack.domain.polling`), so
        it is restarted only when that state changes: a poll result, a push, a correction."""
        cadence = PollCadence(
            state=PollState.of(self._state, self._time_zone, self._answered_at, self._last_push_at),
            policy=self._policy,
        )
        request = self._poll_request_for(cadence)
        if self._poll is not None and not self._poll.done():
            if request == self._poll_request:
                return
            self._stop_polling()
        longest = self._policy.carrier_poll_bounds[1]
        pace = f"every {format_duration(self._policy.carrier_poll_interval)} to {format_duration(longest)}"
        self._start_poll(request, self._policy.carrier_poll_interval, pace)

    def _poll_at_fixed_interval(self) -> None:
        """Before cost-per-order: the retry policy's interval is the cadence, slowed while pushed."""
        interval = self._policy.carrier_poll_interval
        quiet_at = self._pushes_quiet_at()
        if quiet_at and workflow.now() < quiet_at:
            interval *= PUSH_SLOWDOWN
        if self._poll is not None and not self._poll.done():
            if interval == self._poll_interval:
                return
            self._stop_polling()  # the carrier started or stopped pushing: change the cadence
        self._poll_interval = interval
        self._start_poll(self._poll_request_for(None), interval, f"every {format_duration(interval)}")

    def _poll_request_for(self, cadence: PollCadence | None) -> PollRequest:
        state = self._state
        return PollRequest(
            carrier=state.carrier or "",
            tracking_number=state.tracking_number or "",
            known_fingerprint=state.tracking_fingerprint,
            order_id=self._order.order_id,
            cadence=cadence,
        )

    def _start_poll(self, request: PollRequest, interval: timedelta, pace: str) -> None:
        """`interval` is the retry policy's: the pace of a poll without a cadence, and of retries
        after errors that do not say when to try again (a timeout)."""
        self._poll_request = request
        self._poll = workflow.start_activity(
            POLL_CARRIER,
            request,
            result_type=TrackingSnapshot,
            start_to_close_timeout=self._policy.activity_timeout,
            retry_policy=RetryPolicy(
                initial_interval=interval,
                backoff_coefficient=1.0,
                maximum_interval=interval,
                non_retryable_error_types=POLL_GIVE_UP,
            ),
            summary=f"poll {request.carrier} {request.tracking_number} {pace}",
        )

    def _pushes_quiet_at(self) -> datetime | None:
        """While the carrier keeps pushing, polling slows down; this long after the last push it
        speeds up again."""
        return pushes_quiet_at(self._last_push_at, self._policy)

    def _stop_polling(self) -> None:
        if self._poll is not None and not self._poll.done():
            self._poll.cancel()
            # Its outcome no longer matters; take it so it is not reported as unretrieved.
            self._poll.add_done_callback(lambda task: task.cancelled() or task.exception())
        self._poll = None

    async def _take_poll_result(self, poll: asyncio.Task[TrackingSnapshot]) -> None:
        self._poll = None
        try:
            snapshot = poll.result()
        except asyncio.CancelledError:
            return
        except ActivityError as err:
            message = str(err.cause.message if isinstance(err.cause, ApplicationError) else err)
            self._poll_failed_for = (self._state.carrier, self._state.tracking_number)
            await self._set_status(
                lambda state: machine.on_tracking_error(state, f"Tracking stopped: {message}", workflow.now())
            )
            return
        self._answered_at = workflow.now()
        await self._set_status(
            lambda state: machine.on_tracking(state, snapshot, self._policy, workflow.now())
        )

    # -- handlers --------------------------------------------------------------------------------

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> OrderView:
        return self._view()

    @workflow.signal(name=CARRIER_UPDATE_SIGNAL)
    async def carrier_update(self, raw: RawValue) -> None:
        """A carrier's webhook push; applied like a poll result, and polling slows down meanwhile."""
        await workflow.wait_condition(lambda: self._ready)
        snapshot = await self._read_signal(CARRIER_UPDATE_SIGNAL, raw, TrackingSnapshot)
        if snapshot is None:
            return
        self._last_push_at = self._answered_at = workflow.now()
        await self._set_status(
            lambda state: machine.on_tracking(state, snapshot, self._policy, workflow.now())
        )

    # Operators' requests as signals: the same rules as the updates below, but a signal cannot
    # answer, so a refusal is recorded on the timeline (and so in the UI's current details).

    @workflow.signal(name=CORRECT_STATUS_SIGNAL)
    async def correct_status_signal(self, raw: RawValue) -> None:
        await self._signalled(
            CORRECT_STATUS_SIGNAL, raw, CorrectionRequest, machine.check_correction, machine.on_correction
        )

    @workflow.signal(name=CANCEL_SIGNAL)
    async def cancel_signal(self, raw: RawValue) -> None:
        await self._signalled(CANCEL_SIGNAL, raw, CancelRequest, machine.check_cancel, machine.on_cancel)

    @workflow.signal(name=CHANGE_SHIPPING_ADDRESS_SIGNAL)
    async def change_shipping_address_signal(self, raw: RawValue) -> None:
        await self._signalled(
            CHANGE_SHIPPING_ADDRESS_SIGNAL,
            raw,
            AddressChangeRequest,
            machine.check_address_change,
            machine.on_address_change,
        )

    @workflow.signal(dynamic=True)
    async def unknown_signal(self, name: str, args: Sequence[RawValue]) -> None:
        await workflow.wait_condition(lambda: self._ready)
        await self._ignore_signal(name, f"this order takes only the signals {', '.join(SIGNALS)}")

    async def _signalled(
        self,
        name: str,
        raw: RawValue,
        request_type: type[OperatorRequest],
        check: Callable[[OrderState, OperatorRequest], object],
        apply: Callable[[OrderState, OperatorRequest, datetime], Outcome],
    ) -> None:
        """Check a signalled request like the update's validator, then apply it or record why not."""
        await workflow.wait_condition(lambda: self._ready)
        request = await self._read_signal(name, raw, request_type)
        if request is None:
            return
        if not workflow.patched(OPERATOR_SIGNALS):
            workflow.logger.warning("signal %r ignored: this run began before operators' signals", name)
            return
        refused = partial(machine.on_refused_signal, actor=request.operator, reason=request.reason)
        try:
            check(self._state, request)
            await self._set_status(lambda state: apply(state, request, workflow.now()))
        except TransitionRejected as err:  # refused now, or the state moved meanwhile
            refusal = f"signal {err}"
            await self._set_status(lambda state: refused(state, refusal, now=workflow.now()))

    async def _read_signal(
        self, name: str, raw: RawValue, request_type: type[SignalInput]
    ) -> SignalInput | None:
        """The signal's payload as `request_type`; None (recorded as ignored) when it does not read."""
        try:
            return workflow.payload_converter().from_payload(raw.payload, request_type)
        except Exception as err:  # any decoding or validation failure: the sender's mistake
            await self._ignore_signal(name, f"its payload is not a {request_type.__name__} ({err})")
            return None

    async def _ignore_signal(self, name: str, why: str) -> None:
        """Record a signal the order cannot take, with a warning in the worker's log; runs that began
        before operators' signals ignored it silently, and replay the same."""
        workflow.logger.warning("signal %r ignored: %s", name, why)
        if workflow.patched(OPERATOR_SIGNALS):
            refusal = f"signal {name!r} ignored: {why}"
            await self._set_status(
                lambda state: machine.on_refused_signal(
                    state, refusal[:500], machine.SYSTEM, None, workflow.now()
                )
            )

    @workflow.update(name=RECORD_FULFILLMENT_UPDATE)
    async def record_fulfillment(self, update: FulfillmentUpdate) -> OrderView:
        at = min(update.at, workflow.now()) if update.at else workflow.now()
        return await self._handle(lambda state: machine.on_fulfillment(state, update, at))

    @record_fulfillment.validator
    def _check_fulfillment(self, update: FulfillmentUpdate) -> None:
        self._validate(lambda: machine.check_fulfillment(self._state, update))

    @workflow.update(name=CORRECT_STATUS_UPDATE)
    async def correct_status(self, request: CorrectionRequest) -> OrderView:
        return await self._handle(lambda state: machine.on_correction(state, request, workflow.now()))

    @correct_status.validator
    def _check_correction(self, request: CorrectionRequest) -> None:
        self._validate(lambda: machine.check_correction(self._state, request))

    @workflow.update(name=CANCEL_UPDATE)
    async def cancel(self, request: CancelRequest) -> OrderView:
        return await self._handle(lambda state: machine.on_cancel(state, request, workflow.now()))

    @cancel.validator
    def _check_cancel(self, request: CancelRequest) -> None:
        self._validate(lambda: machine.check_cancel(self._state, request))

    @workflow.update(name=CHANGE_SHIPPING_ADDRESS_UPDATE)
    async def change_shipping_address(self, request: AddressChangeRequest) -> OrderView:
        return await self._handle(lambda state: machine.on_address_change(state, request, workflow.now()))

    @change_shipping_address.validator
    def _check_address_change(self, request: AddressChangeRequest) -> None:
        self._validate(lambda: machine.check_address_change(self._state, request))

    @workflow.update(name=ROTATE_TRACKING_TOKEN_UPDATE)
    async def rotate_tracking_token(self, request: TokenRotationRequest) -> OrderView:
        """The new token is in place before the change is published, so the read model gets it."""
        previous, self._token = self._token, request.tracking_token
        try:
            return await self._handle(
                lambda state: machine.on_token_rotation(state, request, previous, workflow.now())
            )
        except ApplicationError:
            self._token = previous
            raise

    @rotate_tracking_token.validator
    def _check_token_rotation(self, request: TokenRotationRequest) -> None:
        self._validate(lambda: machine.check_token_rotation(self._state, request, self._token))

    async def _handle(self, decide: Callable[[OrderState], Outcome]) -> OrderView:
        await workflow.wait_condition(lambda: self._ready)
        try:
            await self._set_status(decide)
        except TransitionRejected as err:  # the state moved between validation and handling
            raise ApplicationError(str(err), type=TRANSITION_REJECTED_ERROR, non_retryable=True) from None
        return self._view()

    def _validate(self, check: Callable[[], object]) -> None:
        """Reject before acceptance, so a refused request leaves no trace in history."""
        try:
            check()
        except TransitionRejected as err:
            raise ApplicationError(str(err), type=TRANSITION_REJECTED_ERROR, non_retryable=True) from None

    # -- helpers ---------------------------------------------------------------------------------

    @property
    def _time_zone(self) -> str:
        """Where the customer lives, for quiet hours and the times in messages and on the page."""
        return self._order.customer.time_zone or self._policy.default_time_zone

    def _view(self, *, timeline: bool = True) -> OrderView:
        return order_view(self._order, self._state, self._token, timeline=timeline)

    async def _write(self, name: str, arg: object) -> None:
        """A read-model write (idempotent). Since cost-per-order a local activity: one marker event
        instead of three and a workflow task of their own, and one billable action for all of them
        in a workflow task."""
        run = workflow.execute_local_activity if self._lean else workflow.execute_activity
        await run(name, arg, start_to_close_timeout=self._policy.activity_timeout, retry_policy=STORE_RETRY)
