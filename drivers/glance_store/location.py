"""Image locations as glance_store models them: ``Location`` wrapping a per-scheme
``StoreLocation``, and the functions that find the class for a URI.

Each scheme's ``StoreLocation`` (in the store modules under ``_drivers``) parses with
kglance's pure parser, ``kglance.drivers.locations``, and exposes the attribute names
glance_store's classes have (``path``; ``netloc``/``user``/``password``/``query``;
``container``/``obj``; ``fsid``/``pool``/``image``/``snapshot``; ``volume_id``;
``s3serviceurl``/``bucket``/``key``), because Glance reads them. Parsing never needs a
storage SDK. ``to_kglance()`` gives the kglance location a store hands to its backend.

The scheme tables live in the compatibility package's single state object (``_state``);
``SCHEME_TO_CLS_MAP`` and ``SCHEME_TO_CLS_BACKEND_MAP`` are aliases of its dictionaries.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

from oslo_config import cfg

from kglance.drivers import errors, locations
from kglance.drivers.glance_store import _state, exceptions

__all__ = [
    "SCHEME_TO_CLS_BACKEND_MAP",
    "SCHEME_TO_CLS_MAP",
    "Location",
    "StoreLocation",
    "get_location_from_uri",
    "get_location_from_uri_and_backend",
    "register_scheme_backend_map",
    "register_scheme_map",
]

LOG = logging.getLogger(__name__)
L = TypeVar("L", bound=locations.Location)
CONF = cfg.CONF

SCHEME_TO_CLS_MAP = _state.STATE.scheme_map
SCHEME_TO_CLS_BACKEND_MAP = _state.STATE.scheme_backend_map


class StoreLocation:
    """Base of the per-scheme location classes."""

    def __init__(
        self, store_specs: dict[str, Any] | None, conf: Any, backend_group: str | None = None
    ) -> None:
        self.conf = conf
        self.specs = store_specs or {}
        self.backend_group = backend_group
        if self.specs:
            self.process_specs()

    def process_specs(self) -> None:
        """Set the attributes from ``self.specs`` (a dict of the attribute values)."""

    def get_uri(self) -> str:
        """The storage URI; only credentials the parsed URI carried are ever included."""
        raise NotImplementedError("StoreLocation subclass must implement get_uri()")

    def parse_uri(self, uri: str) -> None:
        """Set the attributes from ``uri``; ``BadStoreUri`` when it is malformed."""
        raise NotImplementedError("StoreLocation subclass must implement parse_uri()")

    def to_kglance(self) -> locations.Location:
        """The kglance location these attributes describe (credentials kept for reading)."""
        raise NotImplementedError("StoreLocation subclass must implement to_kglance()")

    @staticmethod
    def validate_schemas(uri: str, valid_schemas: tuple[str, ...]) -> None:
        if any(uri.startswith(schema) for schema in valid_schemas):
            return
        reason = "Location URI must start with one of the following schemas: " + ", ".join(
            valid_schemas
        )
        raise exceptions.BadStoreUri(message=reason)

    @staticmethod
    def parse_with(parse: Callable[[str], L], uri: str) -> L:
        """``parse(uri)`` with kglance's ``InvalidLocation`` turned into ``BadStoreUri``."""
        try:
            return parse(uri)
        except errors.InvalidLocation as exc:
            raise exceptions.BadStoreUri(message=exc.message) from exc


class Location:
    """A location of an image that Glance knows about: the scheme and the parsed URI."""

    def __init__(
        self,
        store_name: str,
        store_location_class: type[StoreLocation],
        conf: Any,
        uri: str | None = None,
        image_id: str | None = None,
        store_specs: dict[str, Any] | None = None,
        backend: str | None = None,
    ) -> None:
        self.store_name = store_name
        self.image_id = image_id
        self.store_specs = store_specs or {}
        self.conf = conf
        self.backend_group = backend
        self.store_location = store_location_class(self.store_specs, conf, backend_group=backend)
        if uri:
            self.store_location.parse_uri(uri)

    def get_store_uri(self) -> str:
        """The storage URI of the image (``StoreLocation.get_uri()``)."""
        return self.store_location.get_uri()

    def get_uri(self) -> None:
        """Vestigial in glance_store; always ``None``."""
        return None


def _scheme(uri: str) -> str:
    return urllib.parse.urlparse(uri).scheme


def get_location_from_uri(uri: str, conf: Any = CONF) -> Location:
    """The ``Location`` for ``uri``, parsed by the store registered for its scheme."""
    scheme = _scheme(uri)
    info = _state.STATE.scheme_map.get(scheme)
    if info is None:
        raise exceptions.UnknownScheme(scheme=scheme)
    return Location(scheme, info["location_class"], conf, uri=uri)


def get_location_from_uri_and_backend(uri: str, backend: str, conf: Any = CONF) -> Location:
    """The ``Location`` for ``uri`` as the store ``backend`` parses it."""
    scheme = _scheme(uri)
    by_backend = _state.STATE.scheme_backend_map.get(scheme)
    if by_backend is None:
        raise exceptions.UnknownScheme(scheme=scheme)
    info = by_backend.get(backend)
    if info is None:
        raise exceptions.UnknownScheme(scheme=backend)  # glance_store's (misleading) choice
    return Location(scheme, info["location_class"], conf, uri=uri, backend=backend)


def register_scheme_backend_map(scheme_map: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Merge ``{scheme: {backend: info}}`` into the known schemes, per backend."""
    for scheme, by_backend in scheme_map.items():
        _state.STATE.scheme_backend_map.setdefault(scheme, {}).update(by_backend)


def register_scheme_map(scheme_map: dict[str, dict[str, Any]]) -> None:
    """Add ``{scheme: info}`` to the known schemes, replacing existing entries."""
    for scheme, info in scheme_map.items():
        LOG.debug("Registering scheme %s with %s", scheme, info)
        _state.STATE.scheme_map[scheme] = info
