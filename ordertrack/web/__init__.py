"""The HTTP front door: the shop API, the customer's tracking page, health and metrics."""
