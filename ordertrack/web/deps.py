"""What request handlers need, opened once per process by the app's lifespan."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from ordertrack.carriers.registry import CarrierRegistry
from ordertrack.settings import Settings
from ordertrack.store.repository import Store

if TYPE_CHECKING:
    from ordertrack.web.temporal import TemporalLink


@dataclass
class Resources:
    settings: Settings
    store: Store
    carriers: CarrierRegistry  # for the links to each carrier's own tracking page
    temporal: "TemporalLink"  # connected in the background: pages and reads never need it


def resources(request: Request) -> Resources:
    found: Resources = request.app.state.resources
    return found


def get_settings(request: Request) -> Settings:
    return resources(request).settings


def get_store(request: Request) -> Store:
    return resources(request).store


def get_carriers(request: Request) -> CarrierRegistry:
    return resources(request).carriers
