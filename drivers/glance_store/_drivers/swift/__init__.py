"""The swift store package (``glance_store._drivers.swift``); the store is in ``store``."""

from kglance.drivers.glance_store._drivers.swift.store import (
    BaseStore,
    ChunkReader,
    MultiTenantStore,
    SingleTenantStore,
    Store,
    StoreLocation,
    swift_retry_iter,
)

__all__ = [
    "BaseStore",
    "ChunkReader",
    "MultiTenantStore",
    "SingleTenantStore",
    "Store",
    "StoreLocation",
    "swift_retry_iter",
]
