"""Customer messages: their kinds, channels, and when each may go out.

The state machine decides *which* message a change deserves and gives it a dedupe key; this module
says which channels carry a kind and when a channel may deliver it (quiet hours), as pure rules the
workflow applies with durable timers.

Details each kind carries (all strings, in `Notice.details` and `NotificationRequest.details`):

| kind | details |
| --- | --- |
| delayed | `delay_kind` (a `DelayKind` value); `new_date` (ISO 8601) when known; `reason` (English, ops) |
| out_for_delivery | `attempt` (1 for the first delivery attempt, 2 for the second, ...) |
| delivery_failed | `attempt`; `follow_up` = `"1"` on the one reminder a day later; `location` when scanned |
| available_for_pickup | `location` when the carrier said where |
| cancelled | `cause`: `payment_timeout` or `shop` (an operator's or the shop's decision) |
| awaiting_payment, payment_reminder | `pay_by` (ISO 8601): when the order is cancelled unless paid |

Every other kind carries nothing: the order and its view (carrier, tracking number, estimate,
shipping address, the payment instructions) say the rest.
"""

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class MessageKind(StrEnum):
    """Every moment the customer hears about."""

    CONFIRMATION = "confirmation"
    SHIPPED = "shipped"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELAYED = "delayed"
    DELIVERY_FAILED = "delivery_failed"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    DELIVERED = "delivered"
    REVIEW_REQUEST = "review_request"
    CANCELLED = "cancelled"
    ADDRESS_CHANGED = "address_changed"
    RETURNED = "returned"
    LOST = "lost"
    AWAITING_PAYMENT = "awaiting_payment"
    PAYMENT_REMINDER = "payment_reminder"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


# Marketing mail: carries a one-click unsubscribe, is not sent to an address that unsubscribed,
# and waits for quiet hours to end.
MARKETING = frozenset({MessageKind.REVIEW_REQUEST})

# Messages about a payment still pending: untrue once the order is paid or cancelled, so any still
# waiting to go out then is withdrawn.
PAYMENT_PENDING = frozenset({MessageKind.AWAITING_PAYMENT, MessageKind.PAYMENT_REMINDER})

# Nudges rather than news, so they wait for the customer's daytime on every channel: a reminder at
# 3 a.m. only wakes someone who can pay in the morning anyway (it comes hours before the deadline).
NUDGES = MARKETING | {MessageKind.PAYMENT_REMINDER}

# What is worth a text message: the parcel's movements and its problems, not the paperwork.
SMS_KINDS = frozenset(
    {
        MessageKind.SHIPPED,
        MessageKind.OUT_FOR_DELIVERY,
        MessageKind.DELAYED,
        MessageKind.DELIVERY_FAILED,
        MessageKind.AVAILABLE_FOR_PICKUP,
        MessageKind.DELIVERED,
        MessageKind.CANCELLED,
        MessageKind.RETURNED,
        MessageKind.LOST,
        *PAYMENT_PENDING,  # the code or link to pay with, where a Pix customer copies it from
    }
)

# Quiet hours end and start, in the customer's local time.
DAY_STARTS = time(8, 0)
DAY_ENDS = time(20, 0)


@dataclass(frozen=True)
class Notice:
    """A message to send; `dedupe_key` makes it once-only per real change, whoever retries."""

    kind: MessageKind
    dedupe_key: str
    details: dict[str, str] = field(default_factory=dict)


def waits_for_daytime(kind: MessageKind, channel: Channel) -> bool:
    """Texts and nudges respect quiet hours; transactional email goes at once."""
    return channel == Channel.SMS or kind in NUDGES


def next_daytime(now: datetime, zone_name: str, starts: time = DAY_STARTS, ends: time = DAY_ENDS) -> datetime:
    """`now` when it is between `starts` and `ends` in the IANA zone, else the next `starts` there.

    `starts == ends` means no quiet hours at all. The zone is loaded here, by name, so a workflow
    gets a real `ZoneInfo` rather than its sandbox's stand-in.
    """
    zone = ZoneInfo(zone_name)
    local = now.astimezone(zone)
    if starts == ends or starts <= local.time() < ends:
        return now
    day = local.date() if local.time() < starts else local.date() + timedelta(days=1)
    return datetime.combine(day, starts, tzinfo=zone)
