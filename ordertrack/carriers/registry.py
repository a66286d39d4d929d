"""Which adapter serves which carrier name: built once per process from the settings.

Adapters are plugins. Each is a factory `build(settings) -> CarrierAdapter | None` published under
the package entry point group `ordertrack.carriers` (see `pyproject.toml`); the factory returns None
when its carrier is not configured (no API key), so a deployment gets the adapters it has
credentials for. A separate package adds a carrier by publishing its own entry point:

    [project.entry-points."ordertrack.carriers"]
    mycarrier = "mypackage.carrier:build"

Routing: an order's carrier is either an adapter's own name (`simulated`, `easypost`, `aftership`)
or a real carrier's code (`ups`, `correios`, ...) tracked through an aggregator. A name no adapter
has is routed to the default adapter (`settings.carrier`); the poll activity then reports the
snapshot under the order's carrier name, so the order accepts it as its own shipment.
"""

import asyncio
import logging
from collections.abc import Callable, Iterable
from importlib import import_module
from importlib.metadata import entry_points

from ordertrack.carriers.base import CarrierAdapter
from ordertrack.carriers.known import known_display_name
from ordertrack.carriers.links import carrier_link
from ordertrack.settings import Settings

log = logging.getLogger("ordertrack.carriers")

ENTRY_POINT_GROUP = "ordertrack.carriers"

CarrierFactory = Callable[[Settings], CarrierAdapter | None]

# The factories this package ships, as its entry points name them: used as well as the entry points,
# so a checkout whose installed metadata predates an entry point still has its own carriers.
BUILTIN_FACTORIES: dict[str, str] = {
    "simulated": "ordertrack.carriers.registry:build_simulated",
    "easypost": "ordertrack.carriers.registry:build_easypost",
    "aftership": "ordertrack.carriers.registry:build_aftership",
}


class UnknownCarrierError(KeyError):
    """No adapter is registered under the name; the message lists the ones that are."""

    def __str__(self) -> str:  # KeyError would print the repr of its argument
        return str(self.args[0])


class CarrierRegistry:
    """Carrier name -> adapter; names are matched case-insensitively, like `CarrierName`.

    `default`: the adapter (by name) that tracks carriers no adapter is named after, e.g. an
    aggregator tracking `ups`; None to refuse them. `max_concurrent_calls`: how many calls this
    process makes to one adapter at once (`call_slot`); None for no limit.
    """

    def __init__(
        self,
        adapters: Iterable[CarrierAdapter] = (),
        *,
        default: str | None = None,
        max_concurrent_calls: int | None = None,
    ) -> None:
        self._adapters: dict[str, CarrierAdapter] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._max_concurrent_calls = max_concurrent_calls
        for adapter in adapters:
            self.register(adapter)
        self._default = default.strip().lower() if default else None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._adapters))

    @property
    def default(self) -> str | None:
        """The default adapter's name, when it is registered."""
        return self._default if self._default in self._adapters else None

    def register(self, adapter: CarrierAdapter) -> None:
        name = adapter.name.lower()
        if name in self._adapters:
            raise ValueError(f"a carrier adapter named {name!r} is already registered")
        self._adapters[name] = adapter
        if self._max_concurrent_calls is not None:
            self._slots[name] = asyncio.Semaphore(self._max_concurrent_calls)

    def get(self, name: str) -> CarrierAdapter:
        """The adapter named `name` exactly (webhook intake: the URL names the adapter)."""
        try:
            return self._adapters[name.strip().lower()]
        except KeyError:
            known = ", ".join(self.names) or "none"
            raise UnknownCarrierError(f"no adapter for carrier {name!r}; known carriers: {known}") from None

    def resolve(self, carrier: str) -> CarrierAdapter:
        """The adapter that tracks an order's `carrier`: its own, else the default (an aggregator)."""
        key = carrier.strip().lower()
        if key in self._adapters:
            return self._adapters[key]
        if self.default is not None:
            return self._adapters[self.default]
        return self.get(carrier)  # raises, listing the known names

    def call_slot(self, adapter: CarrierAdapter) -> asyncio.Semaphore | None:
        """The semaphore bounding concurrent calls to `adapter` in this process (None: unbounded)."""
        return self._slots.get(adapter.name.lower())

    def carrier_url(self, carrier: str, tracking_number: str) -> str | None:
        """The carrier's public tracking page for customers, or None.

        The adapter named `carrier` gives its page when it has one; otherwise the carrier's public
        tracking URL pattern (`ordertrack.carriers.links`) for well-known carriers.
        """
        adapter = self._adapters.get(carrier.strip().lower())
        url = adapter.tracking_url(tracking_number) if adapter is not None else None
        return url or carrier_link(carrier, tracking_number)

    def display_name(self, carrier: str) -> str:
        """What customers call the order's `carrier`: the adapter's own name for it, else the name
        of a carrier known by code (`ordertrack.carriers.known`), else the code as the shop gave it."""
        adapter = self._adapters.get(carrier.strip().lower())
        if adapter is not None:
            return adapter.display_name
        return known_display_name(carrier) or carrier

    async def aclose(self) -> None:
        for adapter in self._adapters.values():
            await adapter.aclose()


# -- factories (the entry points) ---------------------------------------------------------------


def build_simulated(settings: Settings) -> CarrierAdapter | None:
    """The simulator's adapter: always configured (its URL has a development default)."""
    from ordertrack.carriers.simulated import SimulatedCarrier

    return SimulatedCarrier(settings.simulated_carrier_url)


def build_easypost(settings: Settings) -> CarrierAdapter | None:
    """EasyPost, when `EASYPOST_API_KEY` is set."""
    if settings.easypost_api_key is None:
        return None
    from ordertrack.carriers.easypost import EasyPostCarrier

    secret = settings.easypost_webhook_secret
    return EasyPostCarrier(
        settings.easypost_base_url,
        settings.easypost_api_key.get_secret_value(),
        secret.get_secret_value() if secret is not None else None,
    )


def build_aftership(settings: Settings) -> CarrierAdapter | None:
    """AfterShip, when `AFTERSHIP_API_KEY` is set."""
    if settings.aftership_api_key is None:
        return None
    from ordertrack.carriers.aftership import AfterShipCarrier

    secret = settings.aftership_webhook_secret
    return AfterShipCarrier(
        settings.aftership_base_url,
        settings.aftership_api_key.get_secret_value(),
        secret.get_secret_value() if secret is not None else None,
    )


def _load(reference: str) -> CarrierFactory:
    module, _, attribute = reference.partition(":")
    factory: CarrierFactory = getattr(import_module(module), attribute)
    return factory


def carrier_factories() -> dict[str, CarrierFactory]:
    """Every published factory by entry point name: this package's own, then any installed plugin's."""
    found: dict[str, CarrierFactory] = {name: _load(ref) for name, ref in BUILTIN_FACTORIES.items()}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.value != BUILTIN_FACTORIES.get(point.name):
            found[point.name] = point.load()
    return found


def build_registry(settings: Settings) -> CarrierRegistry:
    """The adapters this deployment is configured for, from the `ordertrack.carriers` entry points."""
    registry = CarrierRegistry(
        default=settings.carrier, max_concurrent_calls=settings.carrier_max_concurrent_calls
    )
    for name, factory in carrier_factories().items():
        adapter = factory(settings)
        if adapter is not None:
            registry.register(adapter)
            log.debug("carrier adapter %r registered (entry point %r)", adapter.name, name)
    if registry.default is None:
        log.warning(
            "the default carrier %r has no configured adapter (configured: %s); orders whose carrier "
            "has no adapter of its own cannot be tracked",
            settings.carrier,
            ", ".join(registry.names) or "none",
        )
    return registry
