"""Render a `NotificationRequest` into subject, plain text and HTML from the jinja2 templates.

The templates live in the top-level `templates/email/` folder. Each kind's `.txt` template defines
the subject once (its `subject` block), and the HTML part receives that subject for its `<title>`.
Missing variables fail loudly (`StrictUndefined`) rather than sending a half-empty email.
"""

import importlib.util
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

import ordertrack
from ordertrack.domain.records import NotificationRequest
from ordertrack.domain.view import first_name


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class _Line:
    name: str
    quantity: int
    amount: str


def template_dirs() -> list[str]:
    """The repo's `templates/` beside the package (editable install), else the `templates` namespace package.

    The namespace path is read from its spec: `importlib.resources.files("templates")` raises
    NotADirectoryError on Python 3.11 once an editable install adds its path hook to that path.
    """
    beside_package = Path(ordertrack.__file__).resolve().parent.parent / "templates"
    if beside_package.is_dir():
        return [str(beside_package)]
    spec = importlib.util.find_spec("templates")
    locations = (spec.submodule_search_locations or []) if spec else []
    return [location for location in dict.fromkeys(locations) if Path(location).is_dir()]


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dirs()),
        auto_reload=False,  # templates ship with the release: no stat() per render
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def format_money(amount: Decimal, currency: str) -> str:
    return f"{currency} {amount:,.2f}"


def format_date(value: datetime) -> str:
    """A readable date, e.g. `Tue 24 Nov 2026`, in the offset the carrier gave (its local date)."""
    return f"{value:%a} {value.day} {value:%b %Y}"


def _context(request: NotificationRequest, public_url: str, carrier_url: str | None) -> dict[str, Any]:
    """Every template gets the same keys (None when unknown), so a typo is the only undefined name."""
    order, view, details = request.order, request.view, request.details
    base = public_url.rstrip("/")
    new_date = details.get("new_date")
    return {
        "name": first_name(order.customer.name),
        "order_id": order.order_id,
        "tracking_url": f"{base}/t/{quote(view.tracking_token, safe='')}",
        "review_url": f"{base}/review/{quote(order.order_id, safe='')}",
        "items": [
            _Line(item.name, item.quantity, format_money(item.subtotal, order.currency))
            for item in order.items
        ],
        "total": format_money(order.total, order.currency),
        "carrier": view.carrier,
        "tracking_number": view.tracking_number,
        "carrier_url": carrier_url,
        "estimated_delivery": format_date(view.estimated_delivery) if view.estimated_delivery else None,
        "reason": details.get("reason"),
        "new_date": format_date(datetime.fromisoformat(new_date)) if new_date else None,
    }


def render_message(
    request: NotificationRequest, *, public_url: str, carrier_url: str | None
) -> RenderedMessage:
    """Render one message; `carrier_url` is the carrier's own tracking page, when there is one."""
    env = _environment()
    context = _context(request, public_url, carrier_url)
    # Locales can later slot in as `email/<locale>/<kind>.<ext>`, falling back to these.
    text_template = env.get_template(f"email/{request.kind.value}.txt")
    subject = "".join(text_template.blocks["subject"](text_template.new_context(context))).strip()
    return RenderedMessage(
        subject=subject,
        text=text_template.render(context),
        html=env.get_template(f"email/{request.kind.value}.html").render(context, subject=subject),
    )
