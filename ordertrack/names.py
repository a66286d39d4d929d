"""The names every process shares for the order workflow: worker, Python client, HTTP API and CLI.

As reference-app-orders-go keeps one `api.go` per service: the workflow's type, id format and
default task queue, the names of its query, updates and signal, its search attributes, its
activities, and the error types that cross between the workflow, its activities and its clients.
The strings are part of the contract and of every recorded history: change one, and running orders
no longer replay or answer.

Pure (only `temporalio.common` and the standard library), so the workflow sandbox imports it as is.
"""

from typing import Any

from temporalio.common import SearchAttributeKey

# -- the workflow -----------------------------------------------------------------------------

WORKFLOW_TYPE = "OrderWorkflow"
TASK_QUEUE = "orders"  # the default; `ORDERTRACK_TASK_QUEUE` names another
WORKFLOW_ID_PREFIX = "order-"


def workflow_id_for(order_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{order_id}"


def order_id_from(workflow_id: str) -> str:
    return workflow_id.removeprefix(WORKFLOW_ID_PREFIX)


STATUS_QUERY = "status"
RECORD_FULFILLMENT_UPDATE = "record_fulfillment"
CORRECT_STATUS_UPDATE = "correct_status"
CANCEL_UPDATE = "cancel"
CHANGE_SHIPPING_ADDRESS_UPDATE = "change_shipping_address"
ROTATE_TRACKING_TOKEN_UPDATE = "rotate_tracking_token"
CARRIER_UPDATE_SIGNAL = "carrier_update"
# Operators' corrections, cancellations and address changes also come as signals under the update's
# name (the Temporal UI's "Send Signal", `temporal workflow signal`): same rules, refusals recorded.
CORRECT_STATUS_SIGNAL = CORRECT_STATUS_UPDATE
CANCEL_SIGNAL = CANCEL_UPDATE
CHANGE_SHIPPING_ADDRESS_SIGNAL = CHANGE_SHIPPING_ADDRESS_UPDATE
SIGNALS = (CARRIER_UPDATE_SIGNAL, CORRECT_STATUS_SIGNAL, CANCEL_SIGNAL, CHANGE_SHIPPING_ADDRESS_SIGNAL)


# -- search attributes: what ops filter on in the Temporal UI and `temporal workflow list` -----


class SearchAttributes:
    """The contract's search attributes (import as `sa`: `sa.ORDER_STATUS`, `sa.ALL`)."""

    ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
    ORDER_DELAYED = SearchAttributeKey.for_bool("OrderDelayed")
    CARRIER = SearchAttributeKey.for_keyword("Carrier")
    TRACKING_NUMBER = SearchAttributeKey.for_keyword("TrackingNumber")
    EXPECTED_DELIVERY_AT = SearchAttributeKey.for_datetime("ExpectedDeliveryAt")

    ALL: tuple[SearchAttributeKey[Any], ...] = (
        ORDER_STATUS,
        ORDER_DELAYED,
        CARRIER,
        TRACKING_NUMBER,
        EXPECTED_DELIVERY_AT,
    )


# Each search attribute and the field of the order's progress (`OrderProgress`) it mirrors (the
# workflow upserts them as the state changes; the client sets them at start). A subset under
# Temporal's own names and types, so mapped here by name; tests keep each a progress field.
SEARCH_ATTRIBUTE_FIELDS: tuple[tuple[SearchAttributeKey[Any], str], ...] = (
    (SearchAttributes.ORDER_STATUS, "status"),
    (SearchAttributes.ORDER_DELAYED, "delayed"),
    (SearchAttributes.CARRIER, "carrier"),
    (SearchAttributes.TRACKING_NUMBER, "tracking_number"),
    (SearchAttributes.EXPECTED_DELIVERY_AT, "estimated_delivery"),
)


# -- activities: the only thing the workflow needs to know of them ------------------------------

SAVE_ORDER = "save_order"
RECORD_CHANGE = "record_change"
SEND_NOTIFICATION = "send_notification"
POLL_CARRIER = "poll_carrier"
DELIVER_SHOP_EVENT = "deliver_shop_event"
SEND_SMS = "send_sms"
SEND_WHATSAPP = "send_whatsapp"

# -- error types (`ApplicationError.type`) that one side raises and the other matches on ------

# An update the workflow refused (clients report its message as a refused request).
TRANSITION_REJECTED_ERROR = "TransitionRejected"
# A customer message refused for good (bad address or number), and texts without an SMS provider:
# the workflow records either on the timeline instead of retrying.
MESSAGE_REJECTED_ERROR = "MessageRejected"
SMS_NOT_CONFIGURED_ERROR = "SmsNotConfigured"
# No WhatsApp sender, or no approved template for the message: not retried, recorded for ops.
WHATSAPP_NOT_CONFIGURED_ERROR = "WhatsAppNotConfigured"
# The shop's webhook refused an event (4xx): not retried.
SHOP_WEBHOOK_REJECTED_ERROR = "ShopWebhookRejected"
# Polling cannot help any more: the workflow stops polling this shipment and tells ops.
TRACKING_NOT_FOUND_ERROR = "TrackingNotFound"
CARRIER_AUTH_FAILED_ERROR = "CarrierAuthFailed"
UNKNOWN_CARRIER_ERROR = "UnknownCarrier"
