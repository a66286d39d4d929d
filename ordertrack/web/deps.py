"""What request handlers need, opened once per process by the app's lifespan."""

from dataclasses import dataclass

from fastapi import Request
from temporalio.client import Client

from ordertrack.carriers.registry import CarrierRegistry
from ordertrack.settings import Settings
from ordertrack.store.repository import Store


@dataclass
class Resources:
    settings: Settings
    store: Store
    carriers: CarrierRegistry  # for the links to each carrier's own tracking page
    temporal: Client | None  # connected lazily: pages and reads never need it


def resources(request: Request) -> Resources:
    found: Resources = request.app.state.resources
    return found


def get_settings(request: Request) -> Settings:
    return resources(request).settings


def get_store(request: Request) -> Store:
    return resources(request).store


def get_carriers(request: Request) -> CarrierRegistry:
    return resources(request).carriers
