"""glance_store's multi-backend API: stores by identifier (``[DEFAULT] enabled_backends``).

The consumer registers ``enabled_backends`` (a DictOpt of ``store_id: store_type``) in
``[DEFAULT]``, names its default in ``[glance_store] default_backend`` and configures each
store in the group named after its identifier; ``[backend_defaults]`` supplies values a
store's group leaves unset. Reserved stores (filesystem only) are the consumer's private
stores; they are handled like enabled ones.

Behaviour follows glance_store 5.7.0, with these deliberate differences (also in
``docs/glance-store-compat.md``): ``create_multi_stores`` returns the number of stores, as
its documentation says (glance_store counted scheme registrations); and ``get``/``delete``
without a backend try every store that handles the URI's scheme (glance_store matched the
store *type* as a string prefix of the URI) and also skip stores that refuse the location
as not theirs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

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
from kglance.drivers.glance_store.backend import (
    check_location_metadata,
    store_add_to_backend,
    store_add_to_backend_with_multihash,
)

__all__ = [
    "add",
    "add_with_multihash",
    "check_location_metadata",
    "create_multi_stores",
    "delete",
    "get",
    "get_known_schemes_for_multi_store",
    "get_size_from_uri_and_backend",
    "get_store_from_store_identifier",
    "get_store_weight",
    "register_store_opts",
    "set_acls_for_multi_store",
    "store_add_to_backend",
    "store_add_to_backend_with_multihash",
    "verify_store",
]

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
T = TypeVar("T")


def _enabled(conf: cfg.ConfigOpts) -> dict[str, str]:
    """Enabled and reserved stores, ``{store_id: store_type}``."""
    return {**dict(conf.enabled_backends or {}), **_state.STATE.reserved_stores}


def _publish_reserved(conf: cfg.ConfigOpts, reserved_stores: dict[str, str]) -> None:
    """Add the reserved stores to ``conf.enabled_backends`` in place, as glance_store does."""
    if conf.enabled_backends is not None:
        conf.enabled_backends.update(reserved_stores)


def register_store_opts(
    conf: cfg.ConfigOpts, reserved_stores: dict[str, str] | None = None
) -> None:
    """Register ``default_backend``, the reserved stores' options and each store's options.

    Like glance_store, the reserved stores are also added to ``conf.enabled_backends`` in
    place (Glance reads them back from there).
    """
    _options.register(conf, _options.MULTI_STORE_OPTS, group=_options.STORE_CFG_GROUP)
    configured = dict(conf.enabled_backends or {})
    if reserved_stores:
        _publish_reserved(conf, reserved_stores)
        for name in reserved_stores:
            _options.register(conf, _options.reserved_store_opts(name), group=name)
    for backend, store_type in configured.items():
        # glance_store registers store_description and weight only when the store is made;
        # registering them here too lets a consumer set them before create_multi_stores
        _options.register(conf, _options.MULTI_BACKEND_OPTIONS, group=backend)
        _options.register(conf, _catalog.options(store_type), group=backend)


def _register(store: driver.Store, *, backend: str, store_entry: str) -> None:
    location_class = store.get_store_location_class()
    location.register_scheme_backend_map(
        {
            scheme: {
                backend: {
                    "store": store,
                    "location_class": location_class,
                    "store_entry": store_entry,
                }
            }
            for scheme in store.get_schemes()
        }
    )


def _new_store(conf: cfg.ConfigOpts, *, backend: str, store_entry: str) -> driver.Store | None:
    factory = _catalog.factory(store_entry)
    if factory is None:
        LOG.warning("Failed to load driver %s: kglance has no such store.", store_entry)
        return None
    store: driver.Store = factory(conf, backend)
    return store


def create_multi_stores(
    conf: cfg.ConfigOpts = CONF, reserved_stores: dict[str, str] | None = None
) -> int:
    """Create, configure and register every enabled and reserved store.

    Returns the number of stores configured. A store whose ``configure_add`` fails is
    registered with adds disabled; one whose type kglance lacks is skipped with a warning.
    """
    _state.STATE.conf = conf
    if reserved_stores:
        _state.STATE.reserved_stores.update(reserved_stores)
        _publish_reserved(conf, reserved_stores)
    count = 0
    for backend, store_entry in _enabled(conf).items():
        try:
            store = _new_store(conf, backend=backend, store_entry=store_entry)
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
        _register(store, backend=backend, store_entry=store_entry)
        count += 1
    return count


def verify_store() -> None:
    """``RuntimeError`` unless ``[glance_store] default_backend`` names a configured store."""
    store_id = _state.STATE.configuration.glance_store.default_backend
    if not store_id:
        raise RuntimeError("'default_backend' config option is not set.")
    try:
        get_store_from_store_identifier(store_id)
    except exceptions.UnknownScheme:
        raise RuntimeError(f"Store for identifier {store_id} not found") from None


def _scheme_info(store_identifier: str) -> dict[str, Any]:
    enabled = _enabled(_state.STATE.configuration)
    store_type = enabled.get(store_identifier)
    if store_type is None:
        raise exceptions.UnknownScheme(f"Store for identifier {store_identifier} not found")
    for by_backend in _state.STATE.scheme_backend_map.values():
        info = by_backend.get(store_identifier)
        if info is not None:
            return info
    raise exceptions.UnknownScheme(scheme=store_type)


def get_store_weight(store_identifier: str) -> int:
    """The ``weight`` of the store ``store_identifier`` (no store is rebuilt for it)."""
    store: driver.Store | None = _scheme_info(store_identifier)["store"]
    return store.weight if store is not None else 0


def get_store_from_store_identifier(store_identifier: str) -> driver.Store:
    """The store ``store_identifier``; stores that are not reusable are made afresh."""
    info = _scheme_info(store_identifier)
    store: driver.Store = info["store"]
    if not store.is_capable(capabilities.BitMasks.DRIVER_REUSABLE):
        fresh = _new_store(store.conf, backend=store_identifier, store_entry=info["store_entry"])
        if fresh is not None:
            fresh.configure()
            _register(fresh, backend=store_identifier, store_entry=info["store_entry"])
            store = fresh
    return store


def add(
    conf: cfg.ConfigOpts,
    image_id: str,
    data: Any,
    size: int,
    backend: str | None,
    context: Any = None,
    verifier: Any = None,
) -> tuple[str, int, str, dict[str, Any]]:
    """Add to ``backend`` (default: ``default_backend``): ``(url, size, checksum, metadata)``."""
    store = get_store_from_store_identifier(backend or conf.glance_store.default_backend)
    return store_add_to_backend(image_id, data, size, store, context, verifier)


def add_with_multihash(
    conf: cfg.ConfigOpts,
    image_id: str,
    data: Any,
    size: int,
    backend: str | None,
    hashing_algo: str,
    scheme: str | None = None,
    context: Any = None,
    verifier: Any = None,
) -> tuple[str, int, str, str, dict[str, Any]]:
    """``add`` returning the multihash too; ``scheme`` is unused, as in glance_store."""
    store = get_store_from_store_identifier(backend or conf.glance_store.default_backend)
    return store_add_to_backend_with_multihash(
        image_id, data, size, hashing_algo, store, context, verifier
    )


def _on_store(
    uri: str, backend: str, operation: Callable[[driver.Store, location.Location], T]
) -> T:
    loc = location.get_location_from_uri_and_backend(uri, backend, conf=_state.STATE.configuration)
    return operation(get_store_from_store_identifier(backend), loc)


def _on_any_store(uri: str, operation: Callable[[driver.Store, location.Location], T]) -> T:
    LOG.warning("Backend is not set to image, searching all backends based on location URI.")
    scheme = uri.partition("://")[0]
    for backend in _state.STATE.scheme_backend_map.get(scheme, {}):
        try:
            return _on_store(uri, backend, operation)
        except (exceptions.NotFound, exceptions.UnknownScheme, exceptions.BadStoreUri):
            continue
    raise exceptions.NotFound("Image not found in any configured backend")


def delete(uri: str, backend: str | None, context: Any = None) -> None:
    """Remove the image at ``uri`` from ``backend`` (or from whichever store has it)."""

    def remove(store: driver.Store, loc: location.Location) -> None:
        store.delete(loc, context=context)

    if backend:
        _on_store(uri, backend, remove)
    else:
        _on_any_store(uri, remove)


def get(
    uri: str,
    backend: str | None,
    offset: int = 0,
    chunk_size: int | None = None,
    context: Any = None,
) -> tuple[Any, int]:
    """``(iterator of bytes, size)`` of the image at ``uri`` in ``backend`` (or any store)."""

    def read(store: driver.Store, loc: location.Location) -> tuple[Any, int]:
        result: tuple[Any, int] = store.get(
            loc, offset=offset, chunk_size=chunk_size, context=context
        )
        return result

    return _on_store(uri, backend, read) if backend else _on_any_store(uri, read)


def set_acls_for_multi_store(
    location_uri: str,
    backend: str,
    public: bool = False,
    read_tenants: list[str] = [],  # noqa: B006 - glance_store's documented default, never mutated
    write_tenants: list[str] | None = None,
    context: Any = None,
) -> None:
    """Set the image's ACLs where the store supports them (swift multi-tenant stores)."""

    def apply(store: driver.Store, loc: location.Location) -> None:
        store.set_acls(
            loc,
            public=public,
            read_tenants=read_tenants,
            write_tenants=write_tenants or [],
            context=context,
        )

    try:
        _on_store(location_uri, backend, apply)
    except NotImplementedError:
        LOG.debug("Skipping store.set_acls... not implemented")


def get_known_schemes_for_multi_store() -> Any:
    """The schemes of the configured stores (a view of the scheme table's keys)."""
    return _state.STATE.scheme_backend_map.keys()


def get_size_from_uri_and_backend(uri: str, backend: str, context: Any = None) -> int:
    """The size of the image at ``uri`` in ``backend``."""
    return _on_store(uri, backend, lambda store, loc: store.get_size(loc, context=context))
