"""Backend policy (ids, features, pipeline, range fallback, results) and Backends lookup.

The driver under the backend is ``MemoryDriver``: a complete, honest driver that keeps objects
in a dict and names them with ``s3://memory/<bucket>/<image id>`` locations. It is not a mock:
it implements the whole ``Driver`` contract (commit only after a clean end of stream, create
mode, idempotent delete, ranges resolved on entry), so what these tests prove about
``Backend`` holds for real drivers too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kglance.drivers import backends, base, errors, locations, pipeline
from kglance.drivers.base import ByteRange, Feature

T = TypeVar("T")


# --------------------------------------------------------------------------- the driver


class MemoryOptions(base.DriverOptions):
    bucket: str = "images"
    read_piece: int = 7  # small, odd pieces make the range fallback cross chunk edges
    access_key: str | None = None  # set: locations carry credentials, as old glance S3 did


class MemoryBlob(base.Blob):
    def __init__(self, data: bytes, *, size: int | None, served: ByteRange, piece: int) -> None:
        super().__init__(size=size, served=served)
        self._data = data
        self._piece = piece

    async def __aiter__(self) -> AsyncIterator[bytes]:
        end = self.served.end if self.served.end is not None else len(self._data)
        for start in range(self.served.offset, end, self._piece):
            yield self._data[start : min(start + self._piece, end)]
            await asyncio.sleep(0)


class MemoryDriver(base.Driver):
    Options = MemoryOptions
    type_name = "memory"
    schemes = ("s3",)
    features = Feature.READ | Feature.WRITE | Feature.UNSIZED_WRITE | Feature.REUSABLE
    write_chunk_size = 1000

    def __init__(self, options: base.DriverOptions, *, backend_id: str) -> None:
        super().__init__(options, backend_id=backend_id)
        assert isinstance(options, MemoryOptions)
        self.opts = options
        self.objects: dict[str, bytes] = {}
        self.closed = False

    def _location(self, image_id: str) -> locations.S3Location:
        secret = None if self.opts.access_key is None else "memory-secret"
        return locations.S3Location(
            scheme_name="s3",
            s3serviceurl="memory",
            bucket=self.opts.bucket,
            key=image_id,
            accesskey=self.opts.access_key,
            secretkey=secret,
        )

    def _key(self, location: locations.Location) -> str:
        if not self.owns(location):
            raise errors.InvalidLocation(f"{location} is not in bucket {self.opts.bucket}")
        assert isinstance(location, locations.S3Location)
        return location.key

    async def add(
        self,
        image_id: str,
        data: AsyncIterator[bytes],
        *,
        size: int | None,
        mode: base.WriteMode = "create",
    ) -> base.Stored:
        if mode == "create" and image_id in self.objects:
            raise errors.AlreadyExists(f"{image_id} exists")
        pending = bytearray()
        async for chunk in data:
            pending += chunk
        if mode == "create" and image_id in self.objects:  # a concurrent add won the race
            raise errors.AlreadyExists(f"{image_id} exists")
        self.objects[image_id] = bytes(pending)  # visible only after a clean end of stream
        return base.Stored(location=self._location(image_id), size=len(pending))

    def _size_reported(self, data: bytes) -> int | None:
        return len(data)

    @contextlib.asynccontextmanager
    async def get(
        self, location: locations.Location, *, byte_range: ByteRange = base.FULL
    ) -> AsyncIterator[base.Blob]:
        data = self.objects.get(self._key(location))
        if data is None:
            raise errors.NotFound(f"{location} does not exist")
        served = byte_range.resolve(len(data))
        size = self._size_reported(data)
        yield MemoryBlob(data, size=size, served=served, piece=self.opts.read_piece)

    async def size(self, location: locations.Location) -> int:
        try:
            return len(self.objects[self._key(location)])
        except KeyError:
            raise errors.NotFound(f"{location} does not exist") from None

    async def delete(self, location: locations.Location) -> None:
        self.objects.pop(self._key(location), None)

    def owns(self, location: locations.Location) -> bool:
        return (
            isinstance(location, locations.S3Location)
            and location.s3serviceurl == "memory"
            and location.bucket == self.opts.bucket
        )

    async def locate(self, image_id: str) -> locations.Location:
        if image_id not in self.objects:
            raise errors.NotFound(f"{image_id} does not exist")
        return self._location(image_id).without_credentials()

    async def aclose(self) -> None:
        self.closed = True


class RangedMemoryDriver(MemoryDriver):
    features = MemoryDriver.features | Feature.RANGED_READ


class ReadOnlyMemoryDriver(MemoryDriver):
    features = Feature.READ


class SizedOnlyMemoryDriver(MemoryDriver):
    features = Feature.READ | Feature.WRITE


class UnknownSizeMemoryDriver(MemoryDriver):
    """Like an http server without Content-Length."""

    def _size_reported(self, data: bytes) -> int | None:
        return None


class ShortReadMemoryDriver(MemoryDriver):
    """Claims ten bytes more than it serves, like a truncated object on a lying server."""

    def _size_reported(self, data: bytes) -> int | None:
        return len(data) + 10


def memory_backend(
    backend_id: str = "mem",
    *,
    driver: type[MemoryDriver] = MemoryDriver,
    **options: object,
) -> backends.Backend:
    opts = MemoryOptions.model_validate(options)
    return backends.Backend(driver(opts, backend_id=backend_id), backend_id=backend_id)


def memory(backend: backends.Backend) -> MemoryDriver:
    assert isinstance(backend.driver, MemoryDriver)
    return backend.driver


async def pieces(data: bytes, piece: int = 333) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]
        await asyncio.sleep(0)


def run(awaitable: Awaitable[T]) -> T:
    async def main() -> T:
        return await awaitable

    return asyncio.run(main())


DATA = random.Random(5).randbytes(10_000)


# --------------------------------------------------------------------------- image ids

UUID = "0c0d1a9f-2b8e-4c1e-9a5e-000000000001"


@pytest.mark.parametrize(
    "image_id",
    [
        pytest.param(UUID, id="uuid"),
        pytest.param(UUID.upper(), id="upper-case-uuid"),
        pytest.param("a", id="one-letter"),
        pytest.param("image-1.raw", id="dots-and-dashes"),
        pytest.param("_staging_1", id="underscores"),
        pytest.param("a..b", id="inner-dots"),
        pytest.param("x" * 255, id="255-chars"),
        pytest.param("-", id="dash"),
    ],
)
def test_valid_image_ids(image_id: str) -> None:
    assert backends.validate_image_id(image_id) == image_id


@pytest.mark.parametrize(
    "image_id",
    [
        pytest.param("../escaped", id="dotdot-escape"),
        pytest.param("a/b", id="slash"),
        pytest.param("a\\b", id="backslash"),
        pytest.param("", id="empty"),
        pytest.param(".", id="dot"),
        pytest.param("..", id="dotdot"),
        pytest.param(".hidden", id="leading-dot"),
        pytest.param("x" * 256, id="256-chars"),
        pytest.param("a\x00b", id="nul"),
        pytest.param("abc\n", id="trailing-newline"),
        pytest.param(f"{UUID}\n", id="uuid-trailing-newline"),
        pytest.param("imagé", id="unicode-letter"),
        pytest.param("\u0663", id="unicode-digit"),
        pytest.param("a b", id="space"),
        pytest.param("a:b", id="colon"),
    ],
)
def test_invalid_image_ids(image_id: str) -> None:
    with pytest.raises(errors.InvalidImageId):
        backends.validate_image_id(image_id)


@given(st.text(max_size=300))
def test_image_ids_are_safe_file_names(image_id: str) -> None:
    try:
        backends.validate_image_id(image_id)
    except errors.InvalidImageId as exc:
        assert len(exc.message) < 300  # the message shows a bounded part of the id
        return
    assert 1 <= len(image_id) <= 255
    assert not image_id.startswith(".")
    assert set(image_id) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


# --------------------------------------------------------------------------- add


async def test_add_returns_glance_digests_and_stores_the_bytes() -> None:
    backend = memory_backend()
    result = await backend.add(UUID, pieces(DATA), size=len(DATA), hash_algo="sha256")
    assert result.image_id == UUID
    assert result.backend == "mem"
    assert result.size == len(DATA)
    assert result.checksum == hashlib.md5(DATA).hexdigest()
    assert result.os_hash_algo == "sha256"
    assert result.os_hash_value == hashlib.sha256(DATA).hexdigest()
    assert result.metadata == {"store": "mem"}
    assert result.location == locations.parse(f"s3://memory/images/{UUID}")
    assert memory(backend).objects[UUID] == DATA
    assert await backend.locate(UUID) == result.location


async def test_add_hands_the_driver_chunks_of_its_write_size() -> None:
    seen: list[int] = []

    class Recording(MemoryDriver):
        async def add(
            self,
            image_id: str,
            data: AsyncIterator[bytes],
            *,
            size: int | None,
            mode: base.WriteMode = "create",
        ) -> base.Stored:
            async def tap() -> AsyncIterator[bytes]:
                async for chunk in data:
                    seen.append(len(chunk))
                    yield chunk

            return await super().add(image_id, tap(), size=size, mode=mode)

    backend = memory_backend(driver=Recording)
    await backend.add("img", pieces(DATA, 333), size=len(DATA))
    assert seen == [1000] * 10


async def test_as_json_has_glance_field_names_and_no_credentials() -> None:
    backend = memory_backend(access_key="AKIAOLDSTYLE")
    result = await backend.add("img", pieces(DATA), size=len(DATA))
    assert not result.location.has_credentials
    document = result.as_json()
    assert document == {
        "image_id": "img",
        "backend": "mem",
        "location": "s3://memory/images/img",
        "size": len(DATA),
        "checksum": hashlib.md5(DATA).hexdigest(),
        "os_hash_algo": "sha512",
        "os_hash_value": hashlib.sha512(DATA).hexdigest(),
        "metadata": {"store": "mem"},
    }
    assert "memory-secret" not in repr(document)
    assert "AKIAOLDSTYLE" not in repr(document)


async def test_add_of_unknown_size() -> None:
    backend = memory_backend()
    result = await backend.add("img", pieces(DATA), size=None)
    assert result.size == len(DATA)


async def test_negative_size_is_an_invalid_request() -> None:
    backend = memory_backend()
    with pytest.raises(errors.InvalidRequest):
        await backend.add("img", pieces(DATA), size=-1)
    assert memory(backend).objects == {}


async def test_add_validates_the_id_before_touching_the_driver() -> None:
    backend = memory_backend()
    with pytest.raises(errors.InvalidImageId):
        await backend.add("../escaped", pieces(DATA), size=len(DATA))
    assert memory(backend).objects == {}


async def test_add_to_read_only_backend_is_unsupported() -> None:
    backend = memory_backend(driver=ReadOnlyMemoryDriver)
    with pytest.raises(errors.Unsupported, match="writing"):
        await backend.add("img", pieces(DATA), size=len(DATA))
    assert memory(backend).objects == {}


async def test_unsized_add_without_the_feature_is_unsupported() -> None:
    backend = memory_backend(driver=SizedOnlyMemoryDriver)
    with pytest.raises(errors.Unsupported, match="unknown size"):
        await backend.add("img", pieces(DATA), size=None)
    assert (await backend.add("img", pieces(DATA), size=len(DATA))).size == len(DATA)


@pytest.mark.parametrize("declared", [len(DATA) - 1, len(DATA) + 1, 0])
async def test_size_mismatch_stores_nothing(declared: int) -> None:
    backend = memory_backend()
    with pytest.raises(errors.SizeMismatch):
        await backend.add("img", pieces(DATA), size=declared)
    assert memory(backend).objects == {}


async def test_checksum_mismatch_stores_nothing() -> None:
    backend = memory_backend()
    wrong = pipeline.ExpectedDigest("sha256", hashlib.sha256(b"other").hexdigest())
    with pytest.raises(errors.ChecksumMismatch):
        await backend.add("img", pieces(DATA), size=len(DATA), expected=wrong)
    assert memory(backend).objects == {}
    right = pipeline.ExpectedDigest("sha256", hashlib.sha256(DATA).hexdigest())
    await backend.add("img", pieces(DATA), size=len(DATA), expected=right)
    assert memory(backend).objects["img"] == DATA


async def test_unknown_hash_algorithm_is_refused_before_the_driver() -> None:
    backend = memory_backend()
    with pytest.raises(errors.UnknownHashAlgorithm):
        await backend.add("img", pieces(DATA), size=len(DATA), hash_algo="nosuchhash")
    assert memory(backend).objects == {}


async def test_verifier_sees_the_image() -> None:
    class Verifier:
        def __init__(self) -> None:
            self.seen = bytearray()

        def update(self, data: bytes) -> None:
            self.seen += data

    verifier = Verifier()
    await memory_backend().add("img", pieces(DATA), size=len(DATA), verifier=verifier)
    assert bytes(verifier.seen) == DATA


async def test_create_mode_keeps_the_original() -> None:
    backend = memory_backend()
    await backend.add("img", pieces(DATA), size=len(DATA))
    with pytest.raises(errors.AlreadyExists):
        await backend.add("img", pieces(b"new"), size=3)
    assert memory(backend).objects["img"] == DATA
    await backend.add("img", pieces(b"new"), size=3, mode="overwrite")
    assert memory(backend).objects["img"] == b"new"


async def test_driver_reporting_a_wrong_size_is_a_backend_error() -> None:
    class Miscounting(MemoryDriver):
        async def add(
            self,
            image_id: str,
            data: AsyncIterator[bytes],
            *,
            size: int | None,
            mode: base.WriteMode = "create",
        ) -> base.Stored:
            stored = await super().add(image_id, data, size=size, mode=mode)
            return base.Stored(location=stored.location, size=stored.size - 1)

    with pytest.raises(errors.BackendError):
        await memory_backend(driver=Miscounting).add("img", pieces(DATA), size=len(DATA))


async def test_driver_not_draining_the_stream_is_a_backend_error() -> None:
    class Lazy(MemoryDriver):
        async def add(
            self,
            image_id: str,
            data: AsyncIterator[bytes],
            *,
            size: int | None,
            mode: base.WriteMode = "create",
        ) -> base.Stored:
            first = await anext(data)
            return base.Stored(location=self._location(image_id), size=len(first))

    with pytest.raises(errors.BackendError):
        await memory_backend(driver=Lazy).add("img", pieces(DATA), size=len(DATA))


# --------------------------------------------------------------------------- get, size, delete


async def read(backend: backends.Backend, location: locations.Location, rng: ByteRange) -> bytes:
    async with backend.get(location, byte_range=rng) as blob:
        assert blob.served == rng.resolve(len(DATA))
        assert blob.size == len(DATA)
        return await blob.read()


@pytest.mark.parametrize("driver", [MemoryDriver, RangedMemoryDriver], ids=["fallback", "native"])
@pytest.mark.parametrize(
    ("offset", "length"),
    [(0, None), (0, 1), (1, None), (6, 2), (7, 7), (9999, None), (9990, 100), (3, 9997)],
)
async def test_ranges(driver: type[MemoryDriver], offset: int, length: int | None) -> None:
    backend = memory_backend(driver=driver)
    location = (await backend.add("img", pieces(DATA), size=len(DATA))).location
    rng = ByteRange(offset, length)
    end = None if length is None else offset + length
    assert await read(backend, location, rng) == DATA[offset:end]


@given(
    offset=st.integers(min_value=0, max_value=120),
    length=st.none() | st.integers(min_value=1, max_value=120),
    size=st.integers(min_value=0, max_value=100),
    read_piece=st.integers(min_value=1, max_value=40),
)
def test_range_fallback_matches_slicing(
    offset: int, length: int | None, size: int, read_piece: int
) -> None:
    data = bytes(range(size))

    async def scenario() -> None:
        backend = memory_backend(read_piece=read_piece)
        location = (await backend.add("img", pieces(data, 9), size=size)).location
        rng = ByteRange(offset, length)
        try:
            async with backend.get(location, byte_range=rng) as blob:
                got = await blob.read()
        except errors.RangeNotSatisfiable as exc:
            assert exc.size == size
            assert offset >= size and not rng.is_full
            return
        assert got == data[offset : None if length is None else offset + length]

    run(scenario())


async def test_range_fallback_detects_a_short_object() -> None:
    backend = memory_backend(driver=ShortReadMemoryDriver)
    location = (await backend.add("img", pieces(DATA), size=len(DATA))).location
    with pytest.raises(errors.BackendError, match="ended"):
        async with backend.get(location, byte_range=ByteRange(10)) as blob:
            await blob.read()


async def test_range_of_unknown_size_without_ranged_read_is_unsupported() -> None:
    backend = memory_backend(driver=UnknownSizeMemoryDriver)
    location = (await backend.add("img", pieces(DATA), size=len(DATA))).location
    async with backend.get(location) as blob:  # the full object is fine
        assert await blob.read() == DATA
    with pytest.raises(errors.Unsupported, match="unknown size"):
        async with backend.get(location, byte_range=ByteRange(10)):
            pass


async def test_range_past_the_end_fails_on_entry() -> None:
    backend = memory_backend()
    location = (await backend.add("img", pieces(DATA), size=len(DATA))).location
    with pytest.raises(errors.RangeNotSatisfiable) as caught:
        async with backend.get(location, byte_range=ByteRange(len(DATA))):
            pytest.fail("entered an unsatisfiable range")
    assert caught.value.size == len(DATA)


async def test_foreign_location_is_refused() -> None:
    backend = memory_backend()
    foreign = locations.parse("s3://memory/other-bucket/img")
    with pytest.raises(errors.InvalidLocation):
        await backend.size(foreign)
    with pytest.raises(errors.InvalidLocation):
        await backend.delete(foreign)
    with pytest.raises(errors.InvalidLocation):
        async with backend.get(foreign):
            pass


async def test_size_delete_and_not_found() -> None:
    backend = memory_backend()
    location = (await backend.add("img", pieces(DATA), size=len(DATA))).location
    assert await backend.size(location) == len(DATA)
    await backend.delete(location)
    await backend.delete(location)  # idempotent
    with pytest.raises(errors.NotFound):
        await backend.size(location)
    with pytest.raises(errors.NotFound):
        async with backend.get(location):
            pass
    with pytest.raises(errors.NotFound):
        await backend.locate("img")
    with pytest.raises(errors.InvalidImageId):
        await backend.locate("../img")


async def test_delete_on_read_only_backend_is_unsupported() -> None:
    backend = memory_backend(driver=ReadOnlyMemoryDriver)
    memory(backend).objects["img"] = DATA
    location = locations.parse("s3://memory/images/img")
    assert await backend.size(location) == len(DATA)
    with pytest.raises(errors.Unsupported, match="deleting"):
        await backend.delete(location)
    assert memory(backend).objects["img"] == DATA


def test_describe() -> None:
    backend = backends.Backend(
        RangedMemoryDriver(MemoryOptions(), backend_id="fast"),
        backend_id="fast",
        description="fast memory",
        weight=100,
    )
    assert backend.describe(default=True) == {
        "id": "fast",
        "type": "memory",
        "description": "fast memory",
        "weight": 100,
        "default": True,
        "capabilities": ["read", "write", "ranged_read", "unsized_write", "reusable"],
    }


# --------------------------------------------------------------------------- Backends


def two_buckets() -> backends.Backends:
    return backends.Backends(
        [memory_backend("fast", bucket="fast"), memory_backend("slow", bucket="slow")],
        default="fast",
    )


def test_get_by_id_and_default() -> None:
    all_backends = two_buckets()
    assert all_backends.get("slow").id == "slow"
    assert all_backends.get(None).id == "fast"
    assert [b.id for b in all_backends] == ["fast", "slow"]
    assert len(all_backends) == 2


def test_unknown_backend() -> None:
    with pytest.raises(errors.UnknownBackend, match="nosuch"):
        two_buckets().get("nosuch")


def test_no_default() -> None:
    all_backends = backends.Backends([memory_backend("a")], default=None)
    with pytest.raises(errors.UnknownBackend, match="default"):
        all_backends.get(None)


def test_default_must_be_configured() -> None:
    with pytest.raises(errors.ConfigurationError, match="nosuch"):
        backends.Backends([memory_backend("a")], default="nosuch")


def test_for_location_finds_the_owner() -> None:
    all_backends = two_buckets()
    assert all_backends.for_location(locations.parse("s3://memory/slow/img")).id == "slow"
    assert all_backends.for_location(locations.parse("s3://memory/fast/img")).id == "fast"


def test_for_location_without_a_backend_for_the_scheme() -> None:
    with pytest.raises(errors.UnknownBackend):
        two_buckets().for_location(locations.parse("file:///var/lib/glance/images/img"))


def test_for_location_with_the_scheme_but_no_owner() -> None:
    with pytest.raises(errors.InvalidLocation):
        two_buckets().for_location(locations.parse("s3://memory/elsewhere/img"))


def test_for_location_with_a_named_backend() -> None:
    all_backends = two_buckets()
    location = locations.parse("s3://memory/slow/img")
    assert all_backends.for_location(location, backend_id="slow").id == "slow"
    with pytest.raises(errors.InvalidLocation):
        all_backends.for_location(location, backend_id="fast")
    with pytest.raises(errors.UnknownBackend):
        all_backends.for_location(location, backend_id="nosuch")


def test_for_location_messages_hide_credentials() -> None:
    location = locations.parse("s3://AKIA:TopSecret@memory/elsewhere/img")
    with pytest.raises(errors.InvalidLocation) as caught:
        two_buckets().for_location(location)
    assert "TopSecret" not in caught.value.message


async def test_aclose_closes_every_driver() -> None:
    all_backends = two_buckets()
    await all_backends.aclose()
    assert all(memory(b).closed for b in all_backends)
