"""``Store``, the base class of every glance_store store, as glance_store defines it.

This base stays abstract on purpose (``get``/``add``/``delete``/``get_size`` raise
``NotImplementedError``), so code that subclasses ``glance_store.driver.Store`` for its own
stores or test fakes keeps working. The stores under ``_drivers`` derive from
``_adapter.AdaptedStore``, which implements the operations on a kglance backend.

Construction registers the store's options like glance_store does: into ``[glance_store]``
for a single-store configuration, or into the backend's own group plus
``[backend_defaults]`` (with ``store_description`` and ``weight``) for a multi-backend one.
``configure()`` calls ``configure_add()``; when that raises ``BadStoreConfiguration`` the
store loses ``WRITE_ACCESS`` (adds are refused with ``StoreAddDisabled``) and the error is
re-raised only when ``re_raise_bsc`` is true.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from typing import Any, ClassVar

from oslo_config import cfg

from kglance.drivers.glance_store import _options, capabilities, exceptions
from kglance.drivers.glance_store import location as location_module

__all__ = ["SHARED_CONF_GROUP", "Store"]

LOG = logging.getLogger(__name__)
SHARED_CONF_GROUP = _options.SHARED_CONF_GROUP
MiB = 1024 * 1024


class Store(capabilities.StoreCapability):
    OPTIONS: ClassVar[Sequence[cfg.Opt] | None] = None
    MULTI_BACKEND_OPTIONS: ClassVar[Sequence[cfg.Opt] | None] = _options.MULTI_BACKEND_OPTIONS
    READ_CHUNKSIZE: ClassVar[int] = 4 * MiB
    WRITE_CHUNKSIZE: ClassVar[int] = 4 * MiB
    STORE_LOCATION_CLASS: ClassVar[type[location_module.StoreLocation] | None] = None

    def __init__(self, conf: Any, backend: str | None = None) -> None:
        super().__init__()
        self.conf = conf
        self.backend_group = backend
        self.store_location_class: type[location_module.StoreLocation] | None = None
        self._url_prefix: str | None = None
        if self.OPTIONS is not None:
            group = backend or _options.STORE_CFG_GROUP
            if backend and self.MULTI_BACKEND_OPTIONS is not None:
                _options.register(conf, self.MULTI_BACKEND_OPTIONS, group=group)
            _options.register(conf, self.OPTIONS, group=group)
            _options.register(conf, self.OPTIONS, group=SHARED_CONF_GROUP)

    @property
    def url_prefix(self) -> str | None:
        """The prefix of the locations this store writes (multi-backend mode only)."""
        return self._url_prefix

    @property
    def weight(self) -> int:
        if self.backend_group is None:
            return 0
        return int(getattr(self.conf, self.backend_group).weight)

    def configure(self, re_raise_bsc: bool = False) -> None:
        """Configure from the options; a failing ``configure_add`` disables adds."""
        try:
            self.configure_add()
        except exceptions.BadStoreConfiguration as exc:
            self.unset_capabilities(capabilities.BitMasks.WRITE_ACCESS)
            LOG.warning("Failed to configure store correctly: %s Disabling add method.", exc)
            if re_raise_bsc:
                raise
        finally:
            self.update_capabilities()

    def get_schemes(self) -> tuple[str, ...]:
        """The URI schemes this store handles."""
        raise NotImplementedError

    def get_store_location_class(self) -> type[location_module.StoreLocation]:
        """The ``StoreLocation`` subclass this store parses its locations with."""
        if self.store_location_class is None:
            found = self.STORE_LOCATION_CLASS
            if found is None:  # glance_store's rule: the StoreLocation of the store's module
                found = importlib.import_module(type(self).__module__).StoreLocation
            self.store_location_class = found
        return self.store_location_class

    def configure_add(self) -> None:
        """Prepare the store to accept images; ``BadStoreConfiguration`` if it cannot."""

    @capabilities.check
    def get(
        self,
        location: location_module.Location,
        offset: int = 0,
        chunk_size: int | None = None,
        context: Any = None,
    ) -> tuple[Any, int]:
        """``(iterator of bytes, size)`` of the image at ``location``."""
        raise NotImplementedError

    def get_size(self, location: location_module.Location, context: Any = None) -> int:
        """The size in bytes of the image at ``location``; ``NotFound`` if there is none."""
        raise NotImplementedError

    @capabilities.check
    def add(
        self,
        image_id: str,
        image_file: Any,
        image_size: int,
        hashing_algo: str | None = None,
        context: Any = None,
        verifier: Any = None,
    ) -> tuple[Any, ...]:
        """Store an image; ``(url, size, checksum, multihash, metadata)``."""
        raise NotImplementedError

    @capabilities.check
    def delete(self, location: location_module.Location, context: Any = None) -> None:
        """Remove the image at ``location``; ``NotFound`` if there is none."""
        raise NotImplementedError

    def set_acls(
        self,
        location: location_module.Location,
        public: bool = False,
        read_tenants: list[str] | None = None,
        write_tenants: list[str] | None = None,
        context: Any = None,
    ) -> None:
        """Set the read and write access lists of an image (no kglance store has ACLs)."""
        raise NotImplementedError
