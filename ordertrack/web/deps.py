"""What request handlers need, opened once per process by the app's lifespan."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from ordertrack.carriers.registry import CarrierRegistry
from ordertrack.settings import Settings
from ordertrack.store.repository import Store
from ordertrack.web.readcache import ReadCache

if TYPE_CHECKING:
    from ordertrack.web.temporal import TemporalLink


@dataclass
class Resources:
    settings: Settings
    store: Store
    carriers: CarrierRegistry  # for the links to each carrier's own tracking page
    temporal: "TemporalLink"  # connected in the background: pages and reads never need it
    cache: ReadCache  # rendered pages and API answers, by the order's stamp


def resources(request: Request) -> Resources:
    found: Resources = request.app.state.resources
    return found


def get_settings(request: Request) -> Settings:
    return resources(request).settings


async def get_store(request: Request) -> Store:
    """A dependency; `async` because FastAPI runs a plain function's dependency in a worker thread."""
    return resources(request).store
