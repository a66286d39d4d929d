"""`GET /api/reports/carriers`: carrier performance from the read model, for operators."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from ordertrack.domain.carrier_report import CarrierReport
from ordertrack.reports import carrier_report_since
from ordertrack.web import errors
from ordertrack.web.auth import OperatorCaller
from ordertrack.web.deps import resources
from ordertrack.web.errors import FieldError

DEFAULT_SINCE = "30d"
SinceQuery = Annotated[
    str,
    Query(
        description="Orders shipped since: a duration back from now (`30d`, `12h`) or an ISO date.",
    ),
]

router = APIRouter(prefix="/api/reports", tags=["reports"])


async def report_for(request: Request, since: str) -> CarrierReport:
    """The report, or a 422 naming `since` and what is wrong with it."""
    try:
        return await carrier_report_since(resources(request).store, since, datetime.now(UTC))
    except ValueError as err:
        raise errors.invalid_request(
            [FieldError(field="since", message=str(err), type="value_error")]
        ) from None


@router.get(
    "/carriers",
    responses=errors.responses(401, 403, 422),
    summary="Carrier performance over the orders shipped in a window (from the read model)",
)
async def carriers_report(
    request: Request, caller: OperatorCaller, since: SinceQuery = DEFAULT_SINCE
) -> CarrierReport:
    """Per carrier: orders shipped in the window, delivered on time or late against their first
    estimate (a date-only estimate lasts its whole day), median and p90 days from shipped to
    delivered, failed delivery attempts, exceptions, orders lost now, and the on-time rate per ISO
    week of delivery (UTC). Carriers by name; see docs/reports.md for each definition."""
    errors.refuse_unknown_filters(request, ("since",))
    return await report_for(request, since)
