"""The ``cinder`` store; its I/O goes to kglance's cinder driver as soon as that driver exists.

Locations are ``cinder://[store/]<volume-uuid>``. Parsing needs no Cinder client.
"""

from __future__ import annotations

from kglance.drivers import backends, locations
from kglance.drivers.glance_store import _options, capabilities, location
from kglance.drivers.glance_store._adapter import AdaptedStore

__all__ = ["Store", "StoreLocation"]


class StoreLocation(location.StoreLocation):
    """The attribute is ``volume_id``; ``get_uri`` names the backend in multi-store mode."""

    scheme: str = "cinder"
    volume_id: str

    def process_specs(self) -> None:
        self.scheme = self.specs.get("scheme", "cinder")
        self.volume_id = self.specs["volume_id"]

    def get_uri(self) -> str:
        return self.to_kglance().uri()

    def parse_uri(self, uri: str) -> None:
        parsed = self.parse_with(locations.CinderLocation.parse, uri)
        self.scheme = "cinder"
        self.volume_id = parsed.volume_id

    def to_kglance(self) -> locations.CinderLocation:
        return locations.CinderLocation(volume_id=self.volume_id, store=self.backend_group)


class Store(AdaptedStore):
    KGLANCE_TYPE = "cinder"
    SCHEMES = ("cinder",)
    OPTIONS = _options.CINDER_OPTS
    STORE_LOCATION_CLASS = StoreLocation
    EXAMPLE_URL = "cinder://<VOLUME_ID>"
    _CAPABILITIES = (
        capabilities.BitMasks.READ_RANDOM
        | capabilities.BitMasks.WRITE_ACCESS
        | capabilities.BitMasks.DRIVER_REUSABLE
    )

    def _make_url_prefix(self, backend: backends.Backend) -> str | None:
        return f"cinder://{self.backend_group}"
