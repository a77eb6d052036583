"""glance_store's single-store API (``[glance_store] stores`` and ``default_store``).

Deprecated in glance_store since Rocky but still documented and still used by older
consumers: stores are found by URI scheme. The functions behave as glance_store's do; the
scheme table lives in the compatibility package's state object (``_state.STATE``), and the
configuration consulted is the ``ConfigOpts`` given to ``create_stores`` (glance_store read
the global ``cfg.CONF``; that is still the fallback).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from oslo_config import cfg

from kglance.drivers.glance_store import (
    _catalog,
    _options,
    _state,
    capabilities,
    driver,
    exceptions,
    location,
)
from kglance.drivers.glance_store._indexable import Indexable

__all__ = [
    "Indexable",
    "add_to_backend",
    "add_to_backend_with_multihash",
    "check_location_metadata",
    "create_stores",
    "delete_from_backend",
    "get_from_backend",
    "get_known_schemes",
    "get_size_from_backend",
    "get_store_from_location",
    "get_store_from_scheme",
    "get_store_from_uri",
    "register_opts",
    "set_acls",
    "store_add_to_backend",
    "store_add_to_backend_with_multihash",
    "verify_default_store",
]

LOG = logging.getLogger(__name__)
CONF = cfg.CONF


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register ``stores``, ``default_store`` and every store's options in ``[glance_store]``."""
    _options.register(conf, _options.LEGACY_STORE_OPTS, group=_options.STORE_CFG_GROUP)
    for name in sorted(_catalog.OPTIONS):
        _options.register(conf, _catalog.OPTIONS[name], group=_options.STORE_CFG_GROUP)


def _new_store(conf: cfg.ConfigOpts, store_entry: str) -> driver.Store | None:
    factory = _catalog.factory(store_entry)
    if factory is None:
        LOG.warning(
            "Failed to load driver %s: kglance has no such store. Skipping it.", store_entry
        )
        return None
    store: driver.Store = factory(conf)
    return store


def _register(store: driver.Store, store_entry: str) -> None:
    location_class = store.get_store_location_class()
    location.register_scheme_map(
        {
            scheme: {"store": store, "location_class": location_class, "store_entry": store_entry}
            for scheme in store.get_schemes()
        }
    )


def create_stores(conf: cfg.ConfigOpts = CONF) -> int:
    """Create and configure every store listed in ``[glance_store] stores``.

    Returns the number of stores registered. A store whose configuration fails is still
    registered with adds disabled, as in glance_store.
    """
    _state.STATE.conf = conf
    count = 0
    for store_entry in sorted(set(conf.glance_store.stores)):
        try:
            store = _new_store(conf, store_entry)
            if store is None:
                continue
            schemes = store.get_schemes()
            store.configure(re_raise_bsc=False)
        except exceptions.BadStoreConfiguration:
            continue
        if not schemes:
            raise exceptions.BackendException(
                f"Unable to register store {store_entry}. No schemes associated with it."
            )
        _register(store, store_entry)
        count += 1
    return count


def verify_default_store() -> None:
    """``RuntimeError`` unless a store serves ``[glance_store] default_store``."""
    scheme = _state.STATE.configuration.glance_store.default_store
    try:
        get_store_from_scheme(scheme)
    except exceptions.UnknownScheme:
        raise RuntimeError(f"Store for scheme {scheme} not found") from None


def get_known_schemes() -> Any:
    """The schemes of the configured stores (a view of the scheme table's keys)."""
    return _state.STATE.scheme_map.keys()


def get_store_from_scheme(scheme: str) -> driver.Store:
    """The store handling ``scheme``; stores that are not reusable are made afresh."""
    info = _state.STATE.scheme_map.get(scheme)
    if info is None:
        raise exceptions.UnknownScheme(scheme=scheme)
    store: driver.Store = info["store"]
    if not store.is_capable(capabilities.BitMasks.DRIVER_REUSABLE):
        fresh = _new_store(store.conf, info["store_entry"])
        if fresh is not None:
            fresh.configure()
            _register(fresh, info["store_entry"])
            store = fresh
    return store


def get_store_from_uri(uri: str) -> driver.Store:
    """The store that handles ``uri`` (by its scheme)."""
    return get_store_from_scheme(uri.partition("://")[0])


def get_from_backend(
    uri: str, offset: int = 0, chunk_size: int | None = None, context: Any = None
) -> tuple[Any, int]:
    """``(iterator of bytes, size)`` of the image at ``uri``."""
    loc = location.get_location_from_uri(uri, conf=_state.STATE.configuration)
    store = get_store_from_uri(uri)
    result: tuple[Any, int] = store.get(loc, offset=offset, chunk_size=chunk_size, context=context)
    return result


def get_size_from_backend(uri: str, context: Any = None) -> int:
    """The size of the image at ``uri``."""
    loc = location.get_location_from_uri(uri, conf=_state.STATE.configuration)
    return get_store_from_uri(uri).get_size(loc, context=context)


def delete_from_backend(uri: str, context: Any = None) -> None:
    """Remove the image at ``uri``."""
    loc = location.get_location_from_uri(uri, conf=_state.STATE.configuration)
    get_store_from_uri(uri).delete(loc, context=context)


def get_store_from_location(uri: str) -> str:
    """The store name (the scheme) of the location ``uri``."""
    return location.get_location_from_uri(uri, conf=_state.STATE.configuration).store_name


def check_location_metadata(val: Any, key: str = "") -> None:
    """``BackendException`` unless ``val`` is made of dicts, lists and strings only."""
    if isinstance(val, dict):
        for name, value in val.items():
            check_location_metadata(value, key=name)
    elif isinstance(val, list):
        for index, value in enumerate(val):
            check_location_metadata(value, key=f"{key}[{index}]")
    elif not isinstance(val, str):
        raise exceptions.BackendException(
            f"The image metadata key {key} has an invalid type of {type(val)}. "
            "Only dict, list, and unicode are supported."
        )


def _check_metadata(store: Any, metadata: Any) -> None:
    if not isinstance(metadata, dict):
        raise exceptions.BackendException(
            f"The storage driver {store} returned invalid  metadata {metadata}. "
            "This must be a dictionary type"
        )
    try:
        check_location_metadata(metadata)
    except exceptions.BackendException as exc:
        raise exceptions.BackendException(
            f"A bad metadata structure was returned from the {store} storage driver: "
            f"{metadata}.  {exc}."
        ) from exc


def store_add_to_backend(
    image_id: str,
    data: Any,
    size: int,
    store: driver.Store,
    context: Any = None,
    verifier: Any = None,
) -> tuple[str, int, str, dict[str, Any]]:
    """``store.add`` without a hashing algorithm: ``(url, size, checksum, metadata)``."""
    url, written, checksum, metadata = store.add(
        image_id, data, size, context=context, verifier=verifier
    )
    if metadata is not None:
        _check_metadata(store, metadata)
    return url, written, checksum, metadata


def store_add_to_backend_with_multihash(
    image_id: str,
    data: Any,
    size: int,
    hashing_algo: str,
    store: driver.Store,
    context: Any = None,
    verifier: Any = None,
) -> tuple[str, int, str, str, dict[str, Any]]:
    """``store.add`` with ``hashing_algo``: ``(url, size, checksum, multihash, metadata)``."""
    if hashing_algo not in hashlib.algorithms_available:
        raise exceptions.UnknownHashingAlgo(algo=hashing_algo)
    url, written, checksum, multihash, metadata = store.add(
        image_id, data, size, hashing_algo, context=context, verifier=verifier
    )
    if metadata is not None:
        _check_metadata(store, metadata)
    return url, written, checksum, multihash, metadata


def add_to_backend(
    conf: cfg.ConfigOpts,
    image_id: str,
    data: Any,
    size: int,
    scheme: str | None = None,
    context: Any = None,
    verifier: Any = None,
) -> tuple[str, int, str, dict[str, Any]]:
    """Add to the store of ``scheme`` (default: ``[glance_store] default_store``)."""
    store = get_store_from_scheme(scheme or conf["glance_store"]["default_store"])
    return store_add_to_backend(image_id, data, size, store, context, verifier)


def add_to_backend_with_multihash(
    conf: cfg.ConfigOpts,
    image_id: str,
    data: Any,
    size: int,
    hashing_algo: str,
    scheme: str | None = None,
    context: Any = None,
    verifier: Any = None,
) -> tuple[str, int, str, str, dict[str, Any]]:
    """``add_to_backend`` returning the multihash too."""
    store = get_store_from_scheme(scheme or conf["glance_store"]["default_store"])
    return store_add_to_backend_with_multihash(
        image_id, data, size, hashing_algo, store, context, verifier
    )


def set_acls(
    location_uri: str,
    public: bool = False,
    read_tenants: list[str] = [],  # noqa: B006 - glance_store's documented default, never mutated
    write_tenants: list[str] | None = None,
    context: Any = None,
) -> None:
    """Set the image's ACLs where the store supports them (swift multi-tenant stores)."""
    loc = location.get_location_from_uri(location_uri, conf=_state.STATE.configuration)
    store = get_store_from_scheme(get_store_from_location(location_uri))
    try:
        store.set_acls(
            loc,
            public=public,
            read_tenants=read_tenants,
            write_tenants=write_tenants or [],
            context=context,
        )
    except NotImplementedError:
        LOG.debug("Skipping store.set_acls... not implemented.")
