"""The one object holding what glance_store kept in module globals.

glance_store's documented API is a set of module-level functions (``get_store_from_scheme``,
``get_store_weight``, ``get_location_from_uri``...) that answer from process-wide tables
filled by ``create_stores``/``create_multi_stores``. The compatibility package keeps that
API, but all the state lives in a single ``CompatState`` instance, ``STATE``, instead of
globals scattered over modules:

* ``scheme_map``: single-store mode, ``{scheme: {"store", "location_class", "store_entry"}}``
  (also visible as ``location.SCHEME_TO_CLS_MAP``);
* ``scheme_backend_map``: multi-store mode, ``{scheme: {backend_id: {...}}}``
  (``location.SCHEME_TO_CLS_BACKEND_MAP``);
* ``reserved_stores``: the consumer's reserved stores, ``{store_id: store_type}``;
* ``conf``: the ``ConfigOpts`` the stores were created from (glance_store's functions read
  the global ``cfg.CONF``; here the object passed to ``create_*`` is used, falling back to
  ``cfg.CONF`` when none was);
* ``registry``: the kglance driver registry the stores build their drivers with.

The dictionaries are cleared in place, never rebound, so the aliases in ``location`` stay
valid. ``reset()`` closes every store (stopping its event-loop thread) and forgets
everything; tests call it between cases.
"""

from __future__ import annotations

from typing import Any, Protocol

from oslo_config import cfg

from kglance.drivers import registry as driver_registry


class _Closable(Protocol):
    def close(self) -> None: ...


SchemeInfo = dict[str, Any]


class CompatState:
    def __init__(self) -> None:
        self.scheme_map: dict[str, SchemeInfo] = {}
        self.scheme_backend_map: dict[str, dict[str, SchemeInfo]] = {}
        self.reserved_stores: dict[str, str] = {}
        self.conf: cfg.ConfigOpts | None = None
        self._registry: driver_registry.Registry | None = None

    @property
    def configuration(self) -> cfg.ConfigOpts:
        return self.conf if self.conf is not None else cfg.CONF

    @property
    def registry(self) -> driver_registry.Registry:
        if self._registry is None:
            self._registry = driver_registry.Registry.discover()
        return self._registry

    def use_registry(self, drivers: driver_registry.Registry | None) -> None:
        """Build drivers from ``drivers`` (``None``: the built-ins plus entry points)."""
        self._registry = drivers

    def stores(self) -> list[Any]:
        """Every distinct store object the maps hold."""
        found: dict[int, Any] = {}
        for info in self.scheme_map.values():
            found[id(info["store"])] = info["store"]
        for by_backend in self.scheme_backend_map.values():
            for info in by_backend.values():
                found[id(info["store"])] = info["store"]
        return list(found.values())

    def reset(self) -> None:
        for store in self.stores():
            close = getattr(store, "close", None)
            if close is not None:
                close()
        self.scheme_map.clear()
        self.scheme_backend_map.clear()
        self.reserved_stores.clear()
        self.conf = None
        self._registry = None


STATE = CompatState()


def reset() -> None:
    """Close every store and forget all stores, schemes and configuration (for tests)."""
    STATE.reset()
