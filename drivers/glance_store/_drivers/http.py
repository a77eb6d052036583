"""The read-only ``http`` store on kglance's http driver.

Locations are ``http(s)://[user:password@]host[:port]/path[?query]``; old locations with
credentials are still read (the driver sends them as Basic authorization and never to
another host), and ``get_uri`` gives back the credentials the URI carried.
"""

from __future__ import annotations

from kglance.drivers import backends, locations
from kglance.drivers.glance_store import _options, capabilities, location
from kglance.drivers.glance_store._adapter import AdaptedStore

__all__ = ["MAX_REDIRECTS", "Store", "StoreLocation"]

MAX_REDIRECTS = 5


class StoreLocation(location.StoreLocation):
    """Attributes: ``scheme``, ``netloc``, ``user``, ``password``, ``path``, ``query``."""

    scheme: str
    netloc: str
    user: str | None
    password: str | None
    path: str
    query: str

    def process_specs(self) -> None:
        self.scheme = self.specs.get("scheme", "http")
        self.netloc = self.specs["netloc"]
        self.user = self.specs.get("user")
        self.password = self.specs.get("password")
        self.path = self.specs.get("path") or ""
        self.query = self.specs.get("query") or ""

    def get_uri(self) -> str:
        return self.to_kglance().uri(credentials=True)

    def parse_uri(self, uri: str) -> None:
        parsed = self.parse_with(locations.HttpLocation.parse, uri)
        self.scheme = parsed.scheme_name
        self.netloc = parsed.netloc
        self.user = parsed.user
        self.password = parsed.password
        self.path = parsed.path
        self.query = parsed.query

    def to_kglance(self) -> locations.HttpLocation:
        return locations.HttpLocation(
            scheme_name=self.scheme,
            netloc=self.netloc,
            path=self.path,
            query=self.query or "",
            user=self.user,
            password=self.password if self.user is not None else None,
        )


class Store(AdaptedStore):
    KGLANCE_TYPE = "http"
    SCHEMES = ("http", "https")
    OPTIONS = _options.HTTP_OPTS
    STORE_LOCATION_CLASS = StoreLocation
    _CAPABILITIES = capabilities.BitMasks.READ_ACCESS | capabilities.BitMasks.DRIVER_REUSABLE

    def _make_url_prefix(self, backend: backends.Backend) -> str | None:
        return "http"
