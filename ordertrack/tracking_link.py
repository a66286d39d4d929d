"""The customer's tracking link: an unguessable token, and the page URL that carries it (`/t/<token>`)."""

import secrets


def new_tracking_token() -> str:
    """An unguessable capability for the customer's tracking page (192 bits)."""
    return secrets.token_urlsafe(24)


def tracking_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/t/{token}"
