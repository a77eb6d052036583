"""The ``file`` store: glance_store's filesystem store on kglance's filesystem driver.

Locations are ``file://<path>`` (``filesystem://`` is read too). The driver, not this
module, confines reads and deletes to the configured directories and validates image ids;
see ``docs/glance-store-compat.md`` for how that differs from glance_store.
"""

from __future__ import annotations

from typing import Any

from kglance.drivers import backends, locations
from kglance.drivers.filesystem import FilesystemDriver
from kglance.drivers.glance_store import _options, capabilities, location
from kglance.drivers.glance_store._adapter import AdaptedStore

__all__ = ["Store", "StoreLocation"]


class StoreLocation(location.StoreLocation):
    """``file:///var/lib/glance/images/<id>``: the attribute is ``path``."""

    scheme: str
    path: str

    def process_specs(self) -> None:
        self.scheme = self.specs.get("scheme", "file")
        self.path = self.specs["path"]

    def get_uri(self) -> str:
        return self.to_kglance().uri()

    def parse_uri(self, uri: str) -> None:
        parsed = self.parse_with(locations.FileLocation.parse, uri)
        self.scheme = uri.partition("://")[0]
        self.path = parsed.path

    def to_kglance(self) -> locations.FileLocation:
        return locations.FileLocation(path=self.path)


class Store(AdaptedStore):
    KGLANCE_TYPE = "file"
    SCHEMES = ("file", "filesystem")
    OPTIONS = _options.FILESYSTEM_OPTS
    STORE_LOCATION_CLASS = StoreLocation
    _CAPABILITIES = (
        capabilities.BitMasks.READ_RANDOM
        | capabilities.BitMasks.WRITE_ACCESS
        | capabilities.BitMasks.DRIVER_REUSABLE
    )

    def _driver_values(self, values: dict[str, _options.Value]) -> dict[str, _options.Value]:
        # glance_store refuses filesystem_store_datadirs unless the datadir option is emptied
        # by hand; kglance lets the datadir's default give way to an explicit list
        datadirs = values.get("filesystem_store_datadirs")
        datadir = values.get("filesystem_store_datadir")
        if datadirs is not None and datadirs.value and datadir is not None and not datadir.explicit:
            return {name: value for name, value in values.items() if value is not datadir}
        return values

    def _make_url_prefix(self, backend: backends.Backend) -> str | None:
        driver: Any = backend.driver
        if isinstance(driver, FilesystemDriver) and driver.datadirs:
            return f"file://{driver.datadirs[0].path}"  # the highest-priority directory
        return None
