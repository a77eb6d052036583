"""Store type names (the values of ``enabled_backends`` and ``stores``) to store factories.

glance_store found its stores through the ``glance_store.drivers`` entry points; these are
the same names, legacy ``glance.store.*.Store`` aliases included, mapped to the
compatibility store modules. Unknown types (``vmware``, which kglance does not have, or a
typo) give ``None``; the ``create_*`` functions then skip the store with a warning, as
glance_store did when a driver failed to load.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from oslo_config import cfg

from kglance.drivers.glance_store import _options

_PACKAGE = "kglance.drivers.glance_store._drivers"

STORE_MODULES: Mapping[str, str] = {
    "cinder": f"{_PACKAGE}.cinder.store",
    "file": f"{_PACKAGE}.filesystem",
    "http": f"{_PACKAGE}.http",
    "rbd": f"{_PACKAGE}.rbd",
    "s3": f"{_PACKAGE}.s3",
    "swift": f"{_PACKAGE}.swift.store",
}

ALIASES: Mapping[str, str] = {
    "glance.store.cinder.Store": "cinder",
    "glance.store.filesystem.Store": "file",
    "glance.store.http.Store": "http",
    "glance.store.rbd.Store": "rbd",
    "glance.store.s3.Store": "s3",
    "glance.store.swift.Store": "swift",
}

OPTIONS: Mapping[str, Sequence[cfg.Opt]] = {
    "cinder": _options.CINDER_OPTS,
    "file": _options.FILESYSTEM_OPTS,
    "http": _options.HTTP_OPTS,
    "rbd": _options.RBD_OPTS,
    "s3": _options.S3_OPTS,
    "swift": _options.SWIFT_OPTS,
}

StoreFactory = Callable[..., Any]


def canonical(store_entry: str) -> str | None:
    """The store type of an entry point name or alias, ``None`` when kglance has none."""
    name = ALIASES.get(store_entry, store_entry)
    return name if name in STORE_MODULES else None


def factory(store_entry: str) -> StoreFactory | None:
    """``Store`` of the module implementing ``store_entry`` (a class, or swift's function)."""
    name = canonical(store_entry)
    if name is None:
        return None
    module = importlib.import_module(STORE_MODULES[name])
    store: StoreFactory = module.Store
    return store


def options(store_entry: str) -> Sequence[cfg.Opt]:
    name = canonical(store_entry)
    return OPTIONS[name] if name is not None else ()
