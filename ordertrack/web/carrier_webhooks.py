"""Carrier webhook intake: `POST /webhooks/carriers/{carrier}`.

The carrier (or aggregator) pushes tracking updates; the adapter named in the URL verifies the
signature over the raw body (constant-time) and reads the snapshots. No API key: the signature is
the authentication, so a forged or stale push is refused (401) before anything is looked up.

Each snapshot's tracking number is resolved to its order through the read model and delivered with
the order workflow's `carrier_update` signal, under the order's own carrier name (an aggregator
reports `ups` shipments too). The workflow ignores scans it has already seen, so a carrier
re-delivering the same push changes nothing. A signed body we cannot read, a number we do not know,
an order that is no longer running, or an order whose carrier is tracked by another adapter is
acknowledged (200) and logged, so the carrier does not retry it forever or disable the endpoint;
only a Temporal outage answers 503, to be retried.
"""

import logging

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel

from ordertrack import orders
from ordertrack.carriers.base import CarrierAdapter, CarrierPayloadError, WebhookAuthError
from ordertrack.carriers.registry import CarrierRegistry, UnknownCarrierError
from ordertrack.domain.tracking import TrackingSnapshot
from ordertrack.store.repository import StoredOrder
from ordertrack.web import errors
from ordertrack.web.deps import resources
from ordertrack.web.errors import ApiError
from ordertrack.web.temporal import get_temporal, outage_as_503

log = logging.getLogger("ordertrack.web.carrier_webhooks")

router = APIRouter(prefix="/webhooks/carriers", tags=["carrier webhooks"])


class WebhookAccepted(BaseModel):
    accepted: int  # snapshots delivered to an order's workflow
    ignored: str | None = None  # why a signed push could not be used at all


def _serves(registry: CarrierRegistry, adapter: CarrierAdapter, order: StoredOrder) -> bool:
    """Whether `adapter` is the one tracking the order (its own carrier, or the default aggregator)."""
    if not order.carrier:
        return False
    try:
        return registry.resolve(order.carrier) is adapter
    except UnknownCarrierError:
        return False


async def _deliver(request: Request, order: StoredOrder, snapshot: TrackingSnapshot) -> bool:
    """Signal the order's workflow; False when it is no longer running (nothing left to update)."""
    client = await get_temporal(request)
    with outage_as_503(f"signalling {order.workflow_id} (carrier webhook)"):
        return await orders.send_carrier_update(client, order.workflow_id, snapshot)


@router.post(
    "/{carrier}",
    responses=errors.responses(401, 404, 413, 503),
    response_model_exclude_none=True,
    summary="A carrier's tracking push (signature checked)",
)
async def carrier_webhook(request: Request, carrier: str) -> WebhookAccepted:
    """Verify the push with the carrier's adapter and deliver each snapshot to its order.

    401: the signature is missing, forged or stale, and nothing happened. 200 `{"accepted": n}`: `n`
    snapshots were delivered; a signed push we cannot use (a body that does not parse, numbers we do
    not track) is acknowledged and logged, with `ignored` saying why when nothing in it was usable,
    so the carrier neither retries it forever nor disables the endpoint.
    """
    res = resources(request)
    try:
        adapter = res.carriers.get(carrier)
    except UnknownCarrierError:
        raise ApiError(404, "unknown_carrier", f"no carrier adapter named {carrier[:40]!r}") from None
    body = await request.body()
    try:
        snapshots = adapter.parse_webhook(request.headers, body)
    except WebhookAuthError as err:
        log.warning("carrier webhook for %s refused: %s", adapter.name, err)
        raise ApiError(
            401, "invalid_signature", "the webhook signature is missing, invalid or expired"
        ) from None
    except CarrierPayloadError as err:
        # Signed by the carrier, so answering 4xx would only make it retry or disable the endpoint.
        log.warning("carrier webhook for %s is signed but unusable, acknowledged: %s", adapter.name, err)
        return WebhookAccepted(accepted=0, ignored=f"the webhook body could not be read: {err}")

    accepted = 0
    for snapshot in snapshots:
        order = await res.store.find_order_by_tracking_number(snapshot.tracking_number)
        if order is None:
            log.info(
                "carrier webhook for %s: no order has tracking number %r; acknowledged and ignored",
                adapter.name,
                snapshot.tracking_number,
            )
            continue
        if not _serves(res.carriers, adapter, order):
            log.warning(
                "carrier webhook for %s: order %s (carrier %r) is not tracked by this adapter; ignored",
                adapter.name,
                order.order_id,
                order.carrier,
            )
            continue
        assert order.carrier is not None  # _serves checked it
        own = snapshot.model_copy(update={"carrier": order.carrier})
        if await _deliver(request, order, own):
            accepted += 1
        else:
            log.info(
                "carrier webhook for %s: order %s is no longer running; ignored", adapter.name, order.order_id
            )
    return WebhookAccepted(accepted=accepted)


def install(app: FastAPI) -> None:
    """Add the carrier webhook route to `app`."""
    app.include_router(router)
