"""BitMasks values, StoreCapability arithmetic and the ``check`` guard."""

from __future__ import annotations

import types
from typing import Any

import pytest

from kglance.drivers import base
from kglance.drivers.glance_store import capabilities, driver

DOCUMENTED = {
    "ALL": 255,
    "DRIVER_REUSABLE": 64,
    "NONE": 0,
    "READ_ACCESS": 1,
    "READ_CHUNK": 5,
    "READ_OFFSET": 3,
    "READ_RANDOM": 7,
    "RW_ACCESS": 9,
    "RW_CHUNK": 45,
    "RW_OFFSET": 27,
    "RW_RANDOM": 63,
    "WRITE_ACCESS": 8,
    "WRITE_CHUNK": 40,
    "WRITE_OFFSET": 24,
    "WRITE_RANDOM": 56,
}


def test_bitmasks_have_exactly_the_documented_values(gs: types.ModuleType) -> None:
    masks = gs.capabilities.BitMasks
    assert {m.name: int(m) for m in masks} == DOCUMENTED


def test_capability_arithmetic(gs: types.ModuleType) -> None:
    masks = gs.capabilities.BitMasks
    holder = gs.capabilities.StoreCapability()
    assert holder.capabilities == 0
    holder.set_capabilities(masks.READ_RANDOM, masks.WRITE_ACCESS)
    assert holder.is_capable(masks.READ_OFFSET, masks.READ_CHUNK)
    assert holder.is_capable(masks.RW_ACCESS)
    assert not holder.is_capable(masks.WRITE_OFFSET)
    holder.unset_capabilities(masks.READ_ACCESS)  # not cascaded, but composites include it
    assert not holder.is_capable(masks.READ_RANDOM)
    assert holder.is_capable(masks.WRITE_ACCESS)
    assert gs.capabilities.StoreCapability.contains(0b111, 0b101)
    assert not gs.capabilities.StoreCapability.contains(0b101, 0b111)


@pytest.mark.parametrize(
    ("features", "expected"),
    [
        (base.Feature.READ, 0b0000001),
        (base.Feature.READ | base.Feature.RANGED_READ, 0b0000111),
        (base.Feature.READ | base.Feature.WRITE | base.Feature.REUSABLE, 0b1001001),
        (
            base.Feature.READ
            | base.Feature.WRITE
            | base.Feature.RANGED_READ
            | base.Feature.REUSABLE
            | base.Feature.THIN_PROVISIONING,
            0b1001111,
        ),
        (base.Feature.WRITE, 0b0001000),
    ],
)
def test_capabilities_come_from_driver_features(
    gs: types.ModuleType, features: base.Feature, expected: int
) -> None:
    assert gs.capabilities.from_features(features) == expected


def _probe_store(gs: types.ModuleType, bits: int) -> Any:
    assert gs.driver is driver  # the typed import below is the module Glance sees

    class Probe(driver.Store):
        _CAPABILITIES = bits

        @capabilities.check
        def get(
            self, location: Any, offset: int = 0, chunk_size: Any = None, context: Any = None
        ) -> Any:
            return ("got", offset, chunk_size)

        @capabilities.check
        def add(
            self,
            image_id: str,
            image_file: Any,
            image_size: int,
            hashing_algo: Any = None,
            context: Any = None,
            verifier: Any = None,
        ) -> Any:
            return "added"

        @capabilities.check
        def delete(self, location: Any, context: Any = None) -> Any:
            return "deleted"

    return Probe(conf=None)


def test_check_refuses_each_operation_without_its_capability(gs: types.ModuleType) -> None:
    masks = gs.capabilities.BitMasks
    store = _probe_store(gs, masks.NONE)
    with pytest.raises(gs.StoreGetNotSupported) as plain:
        store.get("loc")
    assert type(plain.value) is gs.StoreGetNotSupported
    with pytest.raises(gs.StoreAddDisabled):
        store.add("id", b"", 0)
    with pytest.raises(gs.StoreDeleteNotSupported):
        store.delete("loc")


def test_ranged_get_needs_offset_and_chunk_capabilities(gs: types.ModuleType) -> None:
    masks = gs.capabilities.BitMasks
    store = _probe_store(gs, masks.READ_ACCESS | masks.WRITE_ACCESS)
    assert store.get("loc") == ("got", 0, None)
    with pytest.raises(gs.StoreRandomGetNotSupported) as by_keyword:
        store.get("loc", offset=5)
    assert str(by_keyword.value).endswith("Offset: 5, length: None")
    with pytest.raises(gs.StoreRandomGetNotSupported):
        store.get("loc", chunk_size=10)
    # intentional difference: a positional offset is checked like the keyword one
    with pytest.raises(gs.StoreRandomGetNotSupported) as positional:
        store.get("loc", 5, 10)
    assert str(positional.value).endswith("Offset: 5, length: 10")
    store.set_capabilities(masks.READ_OFFSET)
    assert store.get("loc", 5) == ("got", 5, None)
    with pytest.raises(gs.StoreRandomGetNotSupported):
        store.get("loc", 5, 10)
    store.set_capabilities(masks.READ_CHUNK)
    assert store.get("loc", 5, 10) == ("got", 5, 10)
    assert store.add("id", b"", 0) == "added"
    assert store.delete("loc") == "deleted"
