"""The conformance suite every driver runs against its real server.

A driver opts in with a test module that subclasses ``ReadConformance`` (every driver) and
``WriteConformance`` (drivers with ``Feature.WRITE``) and provides one fixture, ``target``,
returning a ``Target``:

* ``backend``: a ``backends.Backend`` around the driver under test;
* ``seed(image_id, data)``: put bytes where the backend can read them and return their
  location (writable drivers add through the backend; http writes into nginx's docroot);
* ``leftovers()``: the names of everything the storage holds, temp files included, so a
  test can prove a failed write left nothing behind.

The matrix: whole reads, sizes, missing objects; ranges at the edges (first byte, last
byte, past the end, open-ended, length beyond the end, ranges of an empty object); a large
object streamed with bounded memory. Writers also: add/get/size/delete round trips with
Glance's digests, unknown-size and empty images, duplicates (original untouched), declared
size violations in both directions, a failure and a cancellation injected halfway, an
expected-checksum mismatch, unsafe image ids, concurrent adds of one id, idempotent delete.
Every failing write is followed by a ``leftovers()`` check.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from kglance.drivers import backends, base, errors, locations, pipeline

KiB = 1024
MiB = 1024 * KiB


@dataclasses.dataclass
class Target:
    backend: backends.Backend
    seed: Callable[[str, bytes], Awaitable[locations.Location]]
    leftovers: Callable[[], Awaitable[list[str]]]
    writable: bool = True


async def stream(data: bytes, *, piece: int = 64 * KiB) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]
        await asyncio.sleep(0)


class Boom(Exception):
    """The failure a test injects into an upload."""


async def failing_stream(data: bytes, *, fail_after: int) -> AsyncIterator[bytes]:
    sent = 0
    async for piece in stream(data):
        if sent + len(piece) > fail_after:
            raise Boom("the client went away")
        sent += len(piece)
        yield piece


async def read_all(backend: backends.Backend, location: locations.Location, **kw: object) -> bytes:
    byte_range = kw.get("byte_range", base.FULL)
    assert isinstance(byte_range, base.ByteRange)
    async with backend.get(location, byte_range=byte_range) as blob:
        return await blob.read()


def payload(size: int, *, seed: int = 0) -> bytes:
    """Deterministic, incompressible, non-zero-prefixed bytes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha512(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


class ReadConformance:
    """Reads: every driver."""

    async def test_get_whole_object(self, target: Target) -> None:
        data = payload(300 * KiB + 7)
        location = await target.seed("read-whole", data)
        async with target.backend.get(location) as blob:
            assert blob.size == len(data)
            assert blob.served == base.ByteRange(0, len(data))
            assert await blob.read() == data

    async def test_size(self, target: Target) -> None:
        data = payload(12345)
        location = await target.seed("read-size", data)
        assert await target.backend.size(location) == len(data)

    async def test_missing_object(self, target: Target) -> None:
        location = await target.seed("read-missing", b"x")
        if target.writable:
            await target.backend.delete(location)
        else:
            location = _sibling(location, "definitely-not-there")
        with pytest.raises(errors.NotFound):
            await target.backend.size(location)
        with pytest.raises(errors.NotFound):
            async with target.backend.get(location):
                pass

    @pytest.mark.parametrize(
        ("offset", "length"),
        [
            (0, 1),
            (0, None),
            (1, None),
            (4095, 2),
            (65535, 65537),
            (99_999, 1),
            (99_999, None),
            (99_990, 100),
            (50_000, 10_000),
        ],
        ids=[
            "first-byte",
            "full-explicit",
            "skip-first",
            "page-edge",
            "chunk-edge",
            "last-byte",
            "last-byte-open",
            "length-past-end",
            "middle",
        ],
    )
    async def test_ranges(self, target: Target, offset: int, length: int | None) -> None:
        data = payload(100_000, seed=1)
        location = await target.seed("read-ranges", data)
        byte_range = base.ByteRange(offset, length)
        expected = data[offset:] if length is None else data[offset : offset + length]
        async with target.backend.get(location, byte_range=byte_range) as blob:
            assert blob.served == base.ByteRange(offset, len(expected))
            assert blob.size == len(data)
            assert await blob.read() == expected

    @pytest.mark.parametrize("offset", [100_000, 100_001, 10**12], ids=["at-end", "past", "far"])
    async def test_range_past_the_end(self, target: Target, offset: int) -> None:
        location = await target.seed("read-past", payload(100_000))
        with pytest.raises(errors.RangeNotSatisfiable):
            async with target.backend.get(location, byte_range=base.ByteRange(offset)):
                pass

    async def test_empty_object(self, target: Target) -> None:
        location = await target.seed("read-empty", b"")
        assert await target.backend.size(location) == 0
        async with target.backend.get(location) as blob:
            assert blob.size == 0
            assert await blob.read() == b""
        with pytest.raises(errors.RangeNotSatisfiable):
            async with target.backend.get(location, byte_range=base.ByteRange(0, 1)):
                pass

    async def test_large_object_streams_in_bounded_memory(self, target: Target) -> None:
        size = 48 * MiB
        location = await target.seed("read-large", _zero_tail(size))
        digest = hashlib.sha256()
        tracemalloc.start()
        try:
            async with target.backend.get(location) as blob:
                async for chunk in blob:
                    digest.update(chunk)
                    del chunk
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert digest.hexdigest() == hashlib.sha256(_zero_tail(size)).hexdigest()
        assert peak < 24 * MiB, f"reading {size} bytes peaked at {peak} bytes of Python memory"


class WriteConformance:
    """Writes: drivers with Feature.WRITE."""

    async def _assert_clean(self, target: Target, before: list[str]) -> None:
        after = await target.leftovers()
        assert sorted(after) == sorted(before), "a failed write left something behind"

    async def test_round_trip(self, target: Target) -> None:
        data = payload(2 * MiB + 3)
        result = await target.backend.add("round-trip", stream(data), size=len(data))
        assert result.size == len(data)
        assert result.checksum == hashlib.md5(data).hexdigest()
        assert result.os_hash_algo == "sha512"
        assert result.os_hash_value == hashlib.sha512(data).hexdigest()
        assert result.metadata["store"] == target.backend.id
        assert not result.location.has_credentials
        assert await read_all(target.backend, result.location) == data
        assert await target.backend.size(result.location) == len(data)
        assert await target.backend.locate("round-trip") == result.location
        await target.backend.delete(result.location)
        with pytest.raises(errors.NotFound):
            await target.backend.size(result.location)

    async def test_other_hash_algorithm(self, target: Target) -> None:
        data = payload(70_000)
        result = await target.backend.add("sha256", stream(data), size=None, hash_algo="sha256")
        assert result.os_hash_value == hashlib.sha256(data).hexdigest()
        before = await target.leftovers()
        with pytest.raises(errors.UnknownHashAlgorithm):
            await target.backend.add("nohash", stream(data), size=None, hash_algo="nosuchhash")
        await self._assert_clean(target, before)

    async def test_unknown_size(self, target: Target) -> None:
        if base.Feature.UNSIZED_WRITE not in target.backend.features:
            pytest.skip("driver does not accept uploads of unknown size")
        data = payload(3 * MiB + 11)
        result = await target.backend.add("unsized", stream(data), size=None)
        assert result.size == len(data)
        assert await read_all(target.backend, result.location) == data

    @pytest.mark.parametrize("declared", [0, None], ids=["declared-zero", "unknown"])
    async def test_empty_image(self, target: Target, declared: int | None) -> None:
        if declared is None and base.Feature.UNSIZED_WRITE not in target.backend.features:
            pytest.skip("driver does not accept uploads of unknown size")
        result = await target.backend.add("empty", stream(b""), size=declared)
        assert result.size == 0
        assert result.checksum == hashlib.md5(b"").hexdigest()
        assert await target.backend.size(result.location) == 0
        assert await read_all(target.backend, result.location) == b""

    async def test_duplicate_leaves_original(self, target: Target) -> None:
        original = payload(100_000, seed=2)
        result = await target.backend.add("dup", stream(original), size=len(original))
        before = await target.leftovers()
        with pytest.raises(errors.AlreadyExists):
            await target.backend.add("dup", stream(payload(5000, seed=3)), size=5000)
        await self._assert_clean(target, before)
        assert await read_all(target.backend, result.location) == original

    @pytest.mark.parametrize(
        ("actual", "declared"),
        [(1000, 999), (1000, 1001), (3 * MiB, 1), (1, 3 * MiB), (0, 10), (10, 0)],
        ids=["one-over", "one-short", "far-over", "far-short", "empty-declared-10", "declared-0"],
    )
    async def test_size_mismatch_leaves_nothing(
        self, target: Target, actual: int, declared: int
    ) -> None:
        before = await target.leftovers()
        with pytest.raises(errors.SizeMismatch):
            await target.backend.add("mismatch", stream(payload(actual)), size=declared)
        await self._assert_clean(target, before)
        with pytest.raises(errors.NotFound):
            await _locate_and_size(target.backend, "mismatch")

    @pytest.mark.parametrize("declared", [True, False], ids=["sized", "unsized"])
    async def test_failure_halfway_leaves_nothing(self, target: Target, declared: bool) -> None:
        if not declared and base.Feature.UNSIZED_WRITE not in target.backend.features:
            pytest.skip("driver does not accept uploads of unknown size")
        data = payload(4 * MiB)
        before = await target.leftovers()
        with pytest.raises(Boom):
            await target.backend.add(
                "halfway",
                failing_stream(data, fail_after=2 * MiB + 5),
                size=len(data) if declared else None,
            )
        await self._assert_clean(target, before)
        with pytest.raises(errors.NotFound):
            await _locate_and_size(target.backend, "halfway")

    async def test_cancellation_halfway_leaves_nothing(self, target: Target) -> None:
        gate = asyncio.Event()

        async def slow() -> AsyncIterator[bytes]:
            yield payload(2 * MiB)
            gate.set()
            await asyncio.sleep(3600)
            yield b"never"

        before = await target.leftovers()
        task = asyncio.create_task(target.backend.add("cancelled", slow(), size=4 * MiB))
        await gate.wait()
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await self._assert_clean(target, before)

    async def test_checksum_mismatch_leaves_nothing(self, target: Target) -> None:
        data = payload(200_000)
        good = pipeline.ExpectedDigest("sha256", hashlib.sha256(data).hexdigest())
        result = await target.backend.add("checked", stream(data), size=len(data), expected=good)
        assert result.size == len(data)
        before = await target.leftovers()
        bad = pipeline.ExpectedDigest("md5", hashlib.md5(b"other").hexdigest())
        with pytest.raises(errors.ChecksumMismatch):
            await target.backend.add("checked-bad", stream(data), size=len(data), expected=bad)
        await self._assert_clean(target, before)

    @pytest.mark.parametrize(
        "image_id",
        ["../escaped", "a/b", "", ".", "..", ".hidden", "x" * 256, "nul\x00", "sp ace", "é"],
        ids=[
            "dotdot",
            "slash",
            "empty",
            "dot",
            "dotdot-only",
            "hidden",
            "long",
            "nul",
            "space",
            "unicode",
        ],
    )
    async def test_unsafe_image_ids_are_refused(self, target: Target, image_id: str) -> None:
        before = await target.leftovers()
        with pytest.raises(errors.InvalidImageId):
            await target.backend.add(image_id, stream(b"data"), size=4)
        await self._assert_clean(target, before)

    async def test_concurrent_adds_of_one_id(self, target: Target) -> None:
        datas = [payload(1 * MiB + n, seed=n) for n in range(4)]
        outcomes = await asyncio.gather(
            *(target.backend.add("race", stream(d), size=len(d)) for d in datas),
            return_exceptions=True,
        )
        winners = [o for o in outcomes if isinstance(o, backends.AddResult)]
        assert len(winners) == 1, outcomes
        assert all(isinstance(o, errors.AlreadyExists) for o in outcomes if o not in winners)
        stored = await read_all(target.backend, winners[0].location)
        assert stored == datas[outcomes.index(winners[0])]

    async def test_delete_is_idempotent(self, target: Target) -> None:
        result = await target.backend.add("del", stream(b"abc"), size=3)
        await target.backend.delete(result.location)
        await target.backend.delete(result.location)
        with pytest.raises(errors.NotFound):
            await _locate_and_size(target.backend, "del")

    async def test_large_add_in_bounded_memory(self, target: Target) -> None:
        size = 48 * MiB

        async def generated() -> AsyncIterator[bytes]:
            block = _zero_tail(MiB)
            for _ in range(size // MiB):
                yield block
                await asyncio.sleep(0)

        tracemalloc.start()
        try:
            result = await target.backend.add("large", generated(), size=size)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert result.size == size
        assert peak < 24 * MiB, f"adding {size} bytes peaked at {peak} bytes of Python memory"


def _zero_tail(size: int) -> bytes:
    """Data with a zero-filled half, so thin-provisioning drivers exercise their hole path."""
    half = size // 2
    return payload(size - half, seed=9) + bytes(half)


def _sibling(location: locations.Location, name: str) -> locations.Location:
    uri = location.uri(credentials=True)
    return locations.parse(uri.rsplit("/", 1)[0] + "/" + name)


async def _locate_and_size(backend: backends.Backend, image_id: str) -> int:
    location = await backend.locate(image_id)
    return await backend.size(location)
