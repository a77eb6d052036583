"""The ``rbd`` store; its I/O goes to kglance's rbd driver as soon as that driver exists.

Locations are ``rbd://fsid/pool/image/snapshot`` (each part percent-encoded) or the old
``rbd://image``. Parsing needs no Ceph bindings.
"""

from __future__ import annotations

from kglance.drivers import locations
from kglance.drivers.glance_store import _options, capabilities, location
from kglance.drivers.glance_store._adapter import AdaptedStore

__all__ = ["DEFAULT_POOL", "DEFAULT_SNAPNAME", "Store", "StoreLocation"]

DEFAULT_POOL = "images"
DEFAULT_SNAPNAME = "snap"


class StoreLocation(location.StoreLocation):
    """Attributes: ``fsid``, ``pool``, ``image``, ``snapshot`` (all but ``image`` may be None)."""

    fsid: str | None = None
    pool: str | None = None
    image: str
    snapshot: str | None = None

    def process_specs(self) -> None:
        self.fsid = self._text("fsid")
        self.pool = self._text("pool")
        self.image = str(self.specs["image"])
        self.snapshot = self._text("snapshot")

    def _text(self, name: str) -> str | None:
        value = self.specs.get(name)
        return None if value is None else str(value)

    def get_uri(self) -> str:
        return self.to_kglance().uri()

    def parse_uri(self, uri: str) -> None:
        parsed = self.parse_with(locations.RbdLocation.parse, uri)
        self.fsid, self.pool = parsed.fsid, parsed.pool
        self.image, self.snapshot = parsed.image, parsed.snapshot

    def to_kglance(self) -> locations.RbdLocation:
        if self.fsid and self.pool and self.snapshot:
            return locations.RbdLocation(
                image=self.image, fsid=self.fsid, pool=self.pool, snapshot=self.snapshot
            )
        return locations.RbdLocation(image=self.image)


class Store(AdaptedStore):
    KGLANCE_TYPE = "rbd"
    SCHEMES = ("rbd",)
    OPTIONS = _options.RBD_OPTS
    STORE_LOCATION_CLASS = StoreLocation
    EXAMPLE_URL = "rbd://<FSID>/<POOL>/<IMAGE>/<SNAP>"
    _CAPABILITIES = capabilities.BitMasks.RW_ACCESS
