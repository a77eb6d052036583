"""Store capabilities: glance_store's bit masks, the capability holder and the ``check`` guard.

The bit values are part of the API (Glance compares them), so ``BitMasks`` keeps exactly
glance_store's numbers, composites included. A compatibility store does not declare its
capabilities by hand: ``from_features`` derives them from the kglance driver's ``Feature``
flags, so a driver that learns ranged reads gains ``READ_RANDOM`` here without an edit.

``check`` differs from glance_store on purpose in one way: it binds the call to the
operation's signature, so ``store.get(location, 5, 10)`` (offset and length given
positionally) is checked exactly like ``store.get(location, offset=5, chunk_size=10)``;
glance_store looked at keyword arguments only and let the positional form through.
"""

from __future__ import annotations

import enum
import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from kglance.drivers import base
from kglance.drivers.glance_store import exceptions

__all__ = ["BitMasks", "StoreCapability", "check", "from_features"]

LOG = logging.getLogger(__name__)


class BitMasks(enum.IntEnum):
    NONE = 0b00000000
    ALL = 0b11111111
    READ_ACCESS = 0b00000001
    READ_OFFSET = 0b00000011  # includes READ_ACCESS
    READ_CHUNK = 0b00000101  # includes READ_ACCESS
    READ_RANDOM = 0b00000111  # READ_OFFSET | READ_CHUNK
    WRITE_ACCESS = 0b00001000
    WRITE_OFFSET = 0b00011000  # includes WRITE_ACCESS
    WRITE_CHUNK = 0b00101000  # includes WRITE_ACCESS
    WRITE_RANDOM = 0b00111000  # WRITE_OFFSET | WRITE_CHUNK
    RW_ACCESS = 0b00001001
    RW_OFFSET = 0b00011011
    RW_CHUNK = 0b00101101
    RW_RANDOM = 0b00111111
    DRIVER_REUSABLE = 0b01000000  # the driver is stateless and one instance serves all calls


_FEATURE_BITS: tuple[tuple[base.Feature, BitMasks], ...] = (
    (base.Feature.READ, BitMasks.READ_ACCESS),
    (base.Feature.RANGED_READ, BitMasks.READ_RANDOM),
    (base.Feature.WRITE, BitMasks.WRITE_ACCESS),
    (base.Feature.REUSABLE, BitMasks.DRIVER_REUSABLE),
)


def from_features(features: base.Feature) -> int:
    """The capability bits a kglance driver with ``features`` offers."""
    bits = 0
    for feature, mask in _FEATURE_BITS:
        if feature in features:
            bits |= mask
    if not features & base.Feature.READ:
        bits &= ~BitMasks.READ_ACCESS  # ranged reads without reads are no reads
    return bits


class StoreCapability:
    """Holds a store's capability bits; ``_CAPABILITIES`` is the class's static set."""

    _CAPABILITIES: ClassVar[int] = BitMasks.NONE

    def __init__(self) -> None:
        self._capabilities = int(type(self)._CAPABILITIES)

    @property
    def capabilities(self) -> int:
        return self._capabilities

    @staticmethod
    def contains(x: int, y: int) -> bool:
        return x & y == y

    def update_capabilities(self) -> None:
        """Hook to refresh dynamic capabilities; the adapted stores derive theirs at configure."""

    def is_capable(self, *capabilities: int) -> bool:
        """Whether every bit of every requested capability is set."""
        wanted = 0
        for capability in capabilities:
            wanted |= int(capability)
        return self.contains(self.capabilities, wanted)

    def set_capabilities(self, *dynamic_capabilites: int) -> None:
        for capability in dynamic_capabilites:
            self._capabilities |= int(capability)

    def unset_capabilities(self, *dynamic_capabilites: int) -> None:
        """Clear the bits given; like glance_store, composites are not cascaded."""
        cleared = 0
        for capability in dynamic_capabilites:
            cleared |= int(capability)
        self._capabilities &= ~cleared


F = TypeVar("F", bound=Callable[..., Any])


def _get_requirements(arguments: dict[str, Any]) -> tuple[int, Exception]:
    offset = arguments.get("offset")
    chunk_size = arguments.get("chunk_size")
    needed = int(BitMasks.READ_ACCESS)
    if offset:
        needed |= BitMasks.READ_OFFSET
    if chunk_size:
        needed |= BitMasks.READ_CHUNK
    if offset or chunk_size:
        return needed, exceptions.StoreRandomGetNotSupported(
            offset=offset or 0, chunk_size=chunk_size
        )
    return needed, exceptions.StoreGetNotSupported()


def check(store_op_fun: F) -> F:
    """Refuse ``get``/``add``/``delete`` when the store lacks the capability they need."""
    operation = store_op_fun.__name__.lower()
    signature = inspect.signature(store_op_fun)
    if operation not in ("get", "add", "delete"):
        LOG.warning('The capability of operation "%s" could not be checked.', operation)
        return store_op_fun

    @functools.wraps(store_op_fun)
    def op_checker(store: StoreCapability, *args: Any, **kwargs: Any) -> Any:
        needed: int
        error: Exception
        if operation == "get":
            try:
                bound = signature.bind(store, *args, **kwargs)
            except TypeError:
                return store_op_fun(store, *args, **kwargs)  # let the call report it
            needed, error = _get_requirements(bound.arguments)
        elif operation == "add":
            needed, error = BitMasks.WRITE_ACCESS, exceptions.StoreAddDisabled()
        else:
            needed, error = BitMasks.WRITE_ACCESS, exceptions.StoreDeleteNotSupported()
        if not store.is_capable(needed):
            store.update_capabilities()
            if not store.is_capable(needed):
                raise error
        return store_op_fun(store, *args, **kwargs)

    return op_checker  # type: ignore[return-value]
