"""The cinder store package (``glance_store._drivers.cinder``); the store is in ``store``."""

from kglance.drivers.glance_store._drivers.cinder.store import Store, StoreLocation

__all__ = ["Store", "StoreLocation"]
