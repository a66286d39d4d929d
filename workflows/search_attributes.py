"""The contract's search attributes: what ops filter on in the Temporal UI and `temporal workflow list`."""

from temporalio.common import SearchAttributeKey

ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
ORDER_DELAYED = SearchAttributeKey.for_bool("OrderDelayed")
CARRIER = SearchAttributeKey.for_keyword("Carrier")
TRACKING_NUMBER = SearchAttributeKey.for_keyword("TrackingNumber")
EXPECTED_DELIVERY_AT = SearchAttributeKey.for_datetime("ExpectedDeliveryAt")

ALL = (ORDER_STATUS, ORDER_DELAYED, CARRIER, TRACKING_NUMBER, EXPECTED_DELIVERY_AT)
