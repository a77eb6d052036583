"""The multi-backend API on filesystem stores, configured as Glance configures it.

Two file stores with weights and descriptions, a reserved staging store, a read-only http
store (no server needed for what is tested here) and ``[backend_defaults]``; every call goes
through ``glance_store`` exactly as Glance makes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import io
import os
import pathlib
import resource
import signal
import stat
import time
import types
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kglance.drivers import glance_store as compat
from kglance.drivers import registry
from tests.glance_store.conftest import ConfFactory, payload

RESERVED = {"os_glance_staging_store": "file"}
DATA = payload(300_000)
MD5 = hashlib.md5(DATA).hexdigest()


@pytest.fixture
def root(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "stores"


@pytest.fixture
def conf(gs: types.ModuleType, make_conf: ConfFactory, root: pathlib.Path) -> Any:
    conf: Any = make_conf(
        f"""
        [DEFAULT]
        enabled_backends = fast:file, slow:file, web:http

        [glance_store]
        default_backend = fast

        [backend_defaults]
        filesystem_store_file_perm = 640

        [fast]
        store_description = Fast disks
        weight = 100
        filesystem_store_datadir = {root}/fast

        [slow]
        store_description = Slow disks
        weight = 5
        filesystem_store_datadir = {root}/slow
        filesystem_store_file_perm = 600

        [web]
        store_description = A read-only store

        [os_glance_staging_store]
        filesystem_store_datadir = {root}/staging
        """
    )
    gs.register_store_opts(conf, reserved_stores=RESERVED)
    assert gs.create_multi_stores(conf, reserved_stores=RESERVED) == 4
    return conf


def new_id() -> str:
    return str(uuid.uuid4())


def files(directory: pathlib.Path) -> list[str]:
    return sorted(os.listdir(directory)) if directory.exists() else []


def test_configuration(gs: types.ModuleType, conf: Any, root: pathlib.Path) -> None:
    gs.verify_store()
    weights = {name: gs.get_store_weight(name) for name in ("fast", "slow", "web", *RESERVED)}
    assert weights == {"fast": 100, "slow": 5, "web": 0, "os_glance_staging_store": 0}
    fast = gs.get_store_from_store_identifier("fast")
    assert fast is gs.get_store_from_store_identifier("fast")  # reusable: one instance
    assert fast.kglance_backend.description == "Fast disks"
    assert conf.slow.store_description == "Slow disks"
    assert fast.url_prefix == f"file://{root}/fast"
    web = gs.get_store_from_store_identifier("web")
    assert web.url_prefix == "http"
    assert web.capabilities == 0b1000111  # kglance's http driver serves ranges
    assert fast.capabilities == 0b1001111  # READ_RANDOM | WRITE_ACCESS | DRIVER_REUSABLE
    assert set(gs.get_known_schemes_for_multi_store()) == {"file", "filesystem", "http", "https"}
    assert (root / "staging").is_dir()  # the reserved store got its own datadir
    with pytest.raises(gs.UnknownScheme, match="Store for identifier nosuch not found"):
        gs.get_store_weight("nosuch")
    with pytest.raises(gs.UnknownScheme):
        gs.get_store_from_store_identifier("nosuch")


def test_verify_store_needs_a_known_default(gs: types.ModuleType, conf: Any) -> None:
    conf.set_override("default_backend", "nosuch", group="glance_store")
    with pytest.raises(RuntimeError, match="Store for identifier nosuch not found"):
        gs.verify_store()
    conf.set_override("default_backend", None, group="glance_store")
    with pytest.raises(RuntimeError, match="'default_backend' config option is not set"):
        gs.verify_store()


def test_add_returns_both_tuple_shapes(gs: types.ModuleType, conf: Any, root: pathlib.Path) -> None:
    legacy_id, multihash_id = new_id(), new_id()
    legacy = gs.multi_backend.add(conf, legacy_id, io.BytesIO(DATA), len(DATA), "slow")
    assert legacy == (f"file://{root}/slow/{legacy_id}", len(DATA), MD5, {"store": "slow"})
    five = gs.add_with_multihash(
        conf, multihash_id, io.BytesIO(DATA), len(DATA), None, "sha512", context=object()
    )
    assert five == (
        f"file://{root}/fast/{multihash_id}",  # the default backend
        len(DATA),
        MD5,
        hashlib.sha512(DATA).hexdigest(),
        {"store": "fast"},
    )
    # the store-level call shapes Glance uses, with an iterator of unknown size (0)
    store = gs.get_store_from_store_identifier("fast")
    pieces = iter([DATA[:1000], b"", DATA[1000:]])
    _, size, checksum, multihash, metadata = gs.store_add_to_backend_with_multihash(
        new_id(), pieces, 0, "sha256", store
    )
    assert (size, checksum, multihash) == (len(DATA), MD5, hashlib.sha256(DATA).hexdigest())
    assert metadata == {"store": "fast"}
    four = gs.store_add_to_backend(new_id(), io.BytesIO(b"tiny"), 4, store)
    assert four[1:] == (4, hashlib.md5(b"tiny").hexdigest(), {"store": "fast"})
    with pytest.raises(TypeError, match="by keyword"):
        store.add(new_id(), io.BytesIO(b"x"), 1, object())  # a positional context is refused
    # [backend_defaults] applies where the store's group is silent
    assert stat.S_IMODE(os.stat(root / "fast" / multihash_id).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(root / "slow" / legacy_id).st_mode) == 0o600


def test_unknown_hashing_algorithm(gs: types.ModuleType, conf: Any, root: pathlib.Path) -> None:
    with pytest.raises(gs.UnknownHashingAlgo) as raised:
        gs.add_with_multihash(conf, new_id(), io.BytesIO(b"x"), 1, "fast", "nosuchhash")
    assert str(raised.value) == "Unknown hashing algorithm identifier: nosuchhash"
    store = gs.get_store_from_store_identifier("fast")
    with pytest.raises(gs.UnknownHashingAlgo):  # also when add is called directly
        store.add(new_id(), io.BytesIO(b"x"), 1, "shake_128")
    assert files(root / "fast") == []


def test_duplicate_leaves_the_original(gs: types.ModuleType, conf: Any) -> None:
    image_id = new_id()
    url = gs.multi_backend.add(conf, image_id, io.BytesIO(DATA), len(DATA), "fast")[0]
    with pytest.raises(gs.Duplicate, match=f"Image {image_id} already exists"):
        gs.multi_backend.add(conf, image_id, io.BytesIO(b"other"), 5, "fast")
    data, _ = gs.get(url, "fast")
    assert b"".join(data) == DATA


@pytest.mark.parametrize("declared", [len(DATA) + 1, len(DATA) - 1])
def test_size_mismatch_is_invalid_and_leaves_nothing(
    gs: types.ModuleType, conf: Any, root: pathlib.Path, declared: int
) -> None:
    image_id = new_id()
    with pytest.raises(gs.Invalid, match="size"):
        gs.add_with_multihash(conf, image_id, io.BytesIO(DATA), declared, "fast", "sha256")
    assert files(root / "fast") == []
    with pytest.raises(gs.NotFound):
        gs.get_size_from_uri_and_backend(f"file://{root}/fast/{image_id}", "fast")


def test_get_whole_ranged_size_and_delete(gs: types.ModuleType, conf: Any) -> None:
    image_id = new_id()
    url = gs.multi_backend.add(conf, image_id, io.BytesIO(DATA), len(DATA), "fast")[0]
    data, size = gs.get(url, "fast")
    assert (size, len(data), b"".join(data)) == (len(DATA), len(DATA), DATA)
    data, size = gs.get(url, "fast", offset=1000, chunk_size=5000)
    assert (size, b"".join(data)) == (5000, DATA[1000:6000])
    data, size = gs.get(url, "fast", offset=len(DATA) - 10)
    assert (size, b"".join(data)) == (10, DATA[-10:])  # the size of what is served
    data, size = gs.get(url, "fast", offset=len(DATA) - 10, chunk_size=100)
    assert (size, b"".join(data)) == (10, DATA[-10:])
    store = gs.get_store_from_store_identifier("fast")
    location = gs.location.get_location_from_uri_and_backend(url, "fast")
    data, size = store.get(location, 7, 3)  # positional offset and length
    assert b"".join(data) == DATA[7:10]
    with pytest.raises(gs.Invalid):
        gs.get(url, "fast", offset=len(DATA))
    assert gs.get_size_from_uri_and_backend(url, "fast") == len(DATA)
    gs.delete(url, "fast")
    with pytest.raises(gs.NotFound):
        gs.get(url, "fast")
    with pytest.raises(gs.NotFound):
        gs.delete(url, "fast")


def test_get_and_delete_without_a_backend_search_the_stores(
    gs: types.ModuleType, conf: Any
) -> None:
    url = gs.multi_backend.add(conf, new_id(), io.BytesIO(DATA), len(DATA), "slow")[0]
    data, size = gs.get(url, None)
    assert (size, b"".join(data)) == (len(DATA), DATA)
    gs.delete(url, None)
    with pytest.raises(gs.NotFound, match="Image not found in any configured backend"):
        gs.delete(url, None)
    with pytest.raises(gs.BadStoreUri):  # a location outside the store's directories
        gs.get(url.replace("/slow/", "/elsewhere/"), "slow")


def test_reading_streams_and_a_dropped_iterator_releases_the_file(
    gs: types.ModuleType, conf: Any
) -> None:
    big = payload(2_000_000, seed=3)
    url = gs.multi_backend.add(conf, new_id(), io.BytesIO(big), len(big), "fast")[0]
    before = len(os.listdir("/proc/self/fd"))
    data, _ = gs.get(url, "fast")
    first = next(iter(data))
    assert big.startswith(first) and len(first) < len(big)
    del data
    gc.collect()
    for _ in range(500):  # the store's loop closes the file shortly after; poll, not time
        if len(os.listdir("/proc/self/fd")) <= before:
            break
        time.sleep(0.01)
    assert len(os.listdir("/proc/self/fd")) <= before
    closed, _ = gs.get(url, "fast")
    closed.close()
    assert list(closed) == []


def test_capability_errors(gs: types.ModuleType, conf: Any) -> None:
    masks = gs.capabilities.BitMasks
    with pytest.raises(gs.StoreAddDisabled):
        gs.multi_backend.add(conf, new_id(), io.BytesIO(b"x"), 1, "web")
    with pytest.raises(gs.StoreDeleteNotSupported):
        gs.delete("http://127.0.0.1:9/x", "web")
    url = gs.multi_backend.add(conf, new_id(), io.BytesIO(DATA), len(DATA), "fast")[0]
    store = gs.get_store_from_store_identifier("fast")
    store.unset_capabilities(masks.READ_OFFSET & ~masks.READ_ACCESS)
    with pytest.raises(gs.StoreRandomGetNotSupported, match="Offset: 10, length: None"):
        gs.get(url, "fast", offset=10)
    assert b"".join(gs.get(url, "fast")[0]) == DATA
    store.unset_capabilities(masks.READ_ACCESS)
    with pytest.raises(gs.StoreGetNotSupported):
        gs.get(url, "fast")


def test_a_store_that_cannot_be_configured_has_adds_disabled(
    gs: types.ModuleType, make_conf: ConfFactory, tmp_path: pathlib.Path
) -> None:
    not_a_directory = tmp_path / "plain-file"
    not_a_directory.write_text("")
    compat._state.STATE.use_registry(
        registry.Registry(
            {**registry.BUILTIN, "rbd": registry.DriverSpec("kglance.drivers.nowhere:Driver")}
        )
    )
    conf: Any = make_conf(
        f"""
        [DEFAULT]
        enabled_backends = broken:file, ceph:rbd, old:vmware

        [broken]
        filesystem_store_datadir = {not_a_directory}/images
        """
    )
    gs.register_store_opts(conf)
    assert gs.create_multi_stores(conf) == 2  # vmware: no such kglance store, skipped
    with pytest.raises(gs.UnknownScheme):
        gs.get_store_from_store_identifier("old")
    for name in ("broken", "ceph"):
        store = gs.get_store_from_store_identifier(name)
        assert not store.is_capable(gs.capabilities.BitMasks.WRITE_ACCESS)
        with pytest.raises(gs.StoreAddDisabled):
            gs.multi_backend.add(conf, new_id(), io.BytesIO(b"x"), 1, name)
        with pytest.raises(gs.BadStoreConfiguration):
            store.configure(re_raise_bsc=True)
    # locations of a store without a driver still parse
    location = gs.location.get_location_from_uri_and_backend("rbd://f/p/i/s", "ceph")
    assert (location.store_location.pool, location.store_location.image) == ("p", "i")
    with pytest.raises(gs.BadStoreConfiguration, match="nowhere"):
        gs.get("rbd://f/p/i/s", "ceph")


class FailingReader:
    def __init__(self, data: bytes, *, fail_after: int) -> None:
        self._data = io.BytesIO(data)
        self._fail_after = fail_after
        self.error = ConnectionResetError("the client went away")

    def read(self, size: int) -> bytes:
        if self._data.tell() >= self._fail_after:
            raise self.error
        return self._data.read(min(size, 50_000))


def test_an_error_of_the_callers_data_comes_back_unchanged(
    gs: types.ModuleType, conf: Any, root: pathlib.Path
) -> None:
    reader = FailingReader(DATA, fail_after=150_000)
    with pytest.raises(ConnectionResetError) as raised:
        gs.add_with_multihash(conf, new_id(), reader, len(DATA), "fast", "sha256")
    assert raised.value is reader.error
    assert files(root / "fast") == []


def test_the_verifier_sees_every_byte_in_order(gs: types.ModuleType, conf: Any) -> None:
    class Verifier:
        def __init__(self) -> None:
            self.seen = bytearray()

        def update(self, data: bytes) -> None:
            self.seen += data

    verifier = Verifier()
    gs.add_with_multihash(
        conf, new_id(), io.BytesIO(DATA), len(DATA), "fast", "sha256", verifier=verifier
    )
    assert bytes(verifier.seen) == DATA


def test_metadata_rules(gs: types.ModuleType) -> None:
    gs.check_location_metadata({"a": "b", "c": ["d", {"e": "f"}]})
    with pytest.raises(gs.BackendException, match=r"key n has an invalid type of <class 'int'>"):
        gs.check_location_metadata({"n": 1})
    with pytest.raises(gs.BackendException, match=r"key l\[1\] has an invalid type"):
        gs.check_location_metadata({"l": ["ok", 2.5]})

    class BadStore:
        def add(self, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
            return ("file:///x", 1, "md5", {"n": 1})

    with pytest.raises(gs.BackendException, match="A bad metadata structure"):
        gs.store_add_to_backend("id", b"", 1, BadStore())


async def test_callable_from_a_thread_that_runs_an_event_loop(
    gs: types.ModuleType, conf: Any
) -> None:
    url = gs.multi_backend.add(conf, new_id(), io.BytesIO(DATA), len(DATA), "fast")[0]
    data, _ = gs.get(url, "fast")  # called on this test's loop thread, blocking it briefly
    assert b"".join(data) == DATA

    def download() -> bytes:
        data, _ = gs.get(url, "fast")
        return b"".join(data)

    results = await asyncio.gather(*(asyncio.to_thread(download) for _ in range(4)))
    assert results == [DATA] * 4


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes past ``limit`` bytes fail with EFBIG (SIGXFSZ ignored) while inside."""
    old_limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old_limits[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limits)
        signal.signal(signal.SIGXFSZ, old_handler)


def test_storage_full(gs: types.ModuleType, conf: Any, root: pathlib.Path) -> None:
    big = payload(3 * 1024 * 1024)
    with file_size_limit(1024 * 1024), pytest.raises(gs.StorageFull):
        gs.add_with_multihash(conf, new_id(), io.BytesIO(big), len(big), "fast", "sha256")
    assert files(root / "fast") == []
