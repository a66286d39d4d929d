"""Activity names: the only thing workflows import from activities."""

SAVE_ORDER = "save_order"
RECORD_CHANGE = "record_change"
SEND_NOTIFICATION = "send_notification"
POLL_CARRIER = "poll_carrier"
DELIVER_SHOP_EVENT = "deliver_shop_event"
SEND_SMS = "send_sms"
