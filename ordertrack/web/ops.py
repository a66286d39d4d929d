"""Operations: `GET /healthz` (readiness: the database and Temporal answer), `GET /livez` (the
process answers) and `GET /metrics` (Prometheus)."""

import logging

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.routing import Route

from ordertrack.web import errors
from ordertrack.web.auth import require_bearer
from ordertrack.web.deps import resources
from ordertrack.web.errors import ApiError
from ordertrack.web.schemas import Health

log = logging.getLogger("ordertrack.web.ops")

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    responses=errors.responses(503),
    summary="Readiness: the database and Temporal answer",
    description="503 `database_unavailable` or `temporal_unavailable` (still connecting after a start "
    "without Temporal, the server gone, or settings it refuses), with the reason in the message.",
)
async def healthz(request: Request) -> Health:
    res = resources(request)
    try:
        await res.store.ping()
    except Exception:
        log.exception("health check: the database did not answer")
        raise ApiError(503, "database_unavailable", "the database is not reachable") from None
    await res.temporal.check()
    return Health(status="ok")


@router.get("/livez", summary="Liveness: the process answers (whatever the database and Temporal do)")
async def livez() -> Health:
    return Health(status="ok")


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """On the public port only behind METRICS_TOKEN; HTTP_METRICS_BIND serves it apart instead."""
    settings = resources(request).settings
    if settings.http_metrics_bind:
        raise ApiError(404, "not_found", "metrics are served on ORDERTRACK_HTTP_METRICS_BIND")
    if settings.metrics_token is None:
        raise ApiError(
            404,
            "metrics_off",
            "set ORDERTRACK_HTTP_METRICS_BIND or ORDERTRACK_METRICS_TOKEN to serve metrics",
        )
    require_bearer(request, settings.metrics_token, "metrics", "METRICS_TOKEN")
    return _exposition(request.app.state.metrics_registry)


def metrics_app(registry: CollectorRegistry) -> Starlette:
    """`GET /metrics` alone, for its own listener (HTTP_METRICS_BIND): no token, as Prometheus scrapes."""

    async def scrape(request: Request) -> Response:
        return _exposition(registry)

    return Starlette(routes=[Route("/metrics", scrape)])


def _exposition(registry: CollectorRegistry) -> Response:
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
