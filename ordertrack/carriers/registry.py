"""Which adapter serves which carrier name: built once per process from the settings."""

from collections.abc import Iterable

from ordertrack.carriers.base import CarrierAdapter
from ordertrack.carriers.simulated import SimulatedCarrier
from ordertrack.settings import Settings


class UnknownCarrierError(KeyError):
    """No adapter is registered under the name; the message lists the ones that are."""

    def __str__(self) -> str:  # KeyError would print the repr of its argument
        return str(self.args[0])


class CarrierRegistry:
    """Carrier name -> adapter; names are matched case-insensitively, like `CarrierName`."""

    def __init__(self, adapters: Iterable[CarrierAdapter] = ()) -> None:
        self._adapters: dict[str, CarrierAdapter] = {}
        for adapter in adapters:
            self.register(adapter)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._adapters))

    def register(self, adapter: CarrierAdapter) -> None:
        name = adapter.name.lower()
        if name in self._adapters:
            raise ValueError(f"a carrier adapter named {name!r} is already registered")
        self._adapters[name] = adapter

    def get(self, name: str) -> CarrierAdapter:
        try:
            return self._adapters[name.strip().lower()]
        except KeyError:
            known = ", ".join(self.names) or "none"
            raise UnknownCarrierError(f"no adapter for carrier {name!r}; known carriers: {known}") from None

    def carrier_url(self, carrier: str, tracking_number: str) -> str | None:
        """The carrier's public tracking page, or None (unknown carrier, or it has no page) for emails."""
        try:
            return self.get(carrier).tracking_url(tracking_number)
        except UnknownCarrierError:
            return None

    async def aclose(self) -> None:
        for adapter in self._adapters.values():
            await adapter.aclose()


def build_registry(settings: Settings) -> CarrierRegistry:
    """The adapters this deployment can use; real carriers register here as they are added."""
    return CarrierRegistry([SimulatedCarrier(settings.simulated_carrier_url)])
