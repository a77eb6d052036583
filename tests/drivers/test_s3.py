"""The s3 driver against a real Ceph radosgw (``scripts/servers/ceph-up.sh``).

Each test owns a fresh bucket, removed with everything in it afterwards. Parts are 5 MiB, the
smallest radosgw accepts, so multipart paths run with a few tens of MiB.

Failures are real server answers wherever radosgw can give them: a part rejected for a wrong
Content-MD5 (BadDigest), a completion naming a part that does not exist (InvalidPart), a
connection cut by ``scripts/servers/faultproxy.py`` in the middle of a body. The requests are
altered through botocore's own event hooks. Only a server that refuses ``If-None-Match``
cannot be had from radosgw (it honours it on PUT); that answer (501 NotImplemented) is
produced by a ``before-send`` hook, at the wire.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import importlib.util
import logging
import pathlib
import socket
import sys
import threading
import tracemalloc
import types
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import botocore.awsrequest
import pytest

from kglance.drivers import backends, base, errors, locations, pipeline, registry
from kglance.drivers.s3 import S3Driver
from tests.conformance.suite import Boom, failing_stream, payload, read_all, stream
from tests.conftest import require_env
from tests.drivers import s3_helpers

MiB = 1024 * 1024
FAULTPROXY = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "servers" / "faultproxy.py"


def options(bucket: str, **overrides: object) -> dict[str, object]:
    return {
        "s3_store_host": require_env("S3_ENDPOINT"),
        "s3_store_access_key": require_env("S3_ACCESS_KEY"),
        "s3_store_secret_key": require_env("S3_SECRET_KEY"),
        "s3_store_region_name": s3_helpers.region(),
        "s3_store_bucket": bucket,
        "s3_store_create_bucket_on_put": True,
        "s3_store_large_object_size": 5,
        "s3_store_large_object_chunk_size": 5,
        "s3_store_thread_pools": 2,
        **overrides,
    }


class Drivers:
    """Builds drivers (and backends) on one test bucket; closes them and removes the bucket."""

    def __init__(self) -> None:
        self.bucket = f"kglance-test-{uuid.uuid4().hex[:12]}"
        self.built: list[S3Driver] = []
        self.admin = self.driver()  # for looking at the bucket and removing it

    def driver(self, **overrides: object) -> S3Driver:
        built = registry.Registry().build(
            "s3", options(self.bucket, **overrides), backend_id="objects"
        )
        assert isinstance(built, S3Driver)
        self.built.append(built)
        return built

    def backend(self, **overrides: object) -> backends.Backend:
        return backends.Backend(self.driver(**overrides), backend_id="objects")

    async def contents(self) -> list[str]:
        return await s3_helpers.bucket_contents(self.admin.s3, self.bucket)

    async def uploads(self) -> list[str]:
        return await s3_helpers.uploads_in_progress(self.admin.s3, self.bucket)

    async def close(self) -> None:
        await s3_helpers.remove_bucket(self.admin.s3, self.bucket)
        for built in self.built:
            await built.aclose()


@pytest.fixture
async def s3() -> AsyncIterator[Drivers]:
    drivers = Drivers()
    try:
        yield drivers
    finally:
        await drivers.close()


async def generated(size: int, *, block: int = MiB, seed: int = 5) -> AsyncIterator[bytes]:
    """``size`` bytes made on the fly from one block, so the source holds no image."""
    piece = payload(block, seed=seed)
    sent = 0
    while sent < size:
        out = piece[: min(block, size - sent)]
        sent += len(out)
        yield out
        await asyncio.sleep(0)


def generated_bytes(size: int, *, block: int = MiB, seed: int = 5) -> bytes:
    piece = payload(block, seed=seed)
    return (piece * (size // block + 1))[:size]


async def etag(driver: S3Driver, key: str) -> str:
    head = await asyncio.to_thread(driver.s3.head_object, Bucket=driver.bucket, Key=key)
    return str(head["ETag"]).strip('"')


def count_calls(driver: base.Driver, operation: str) -> list[int]:
    """A list that grows by one each time ``operation`` succeeds on ``driver``'s client."""
    assert isinstance(driver, S3Driver)
    calls: list[int] = []
    driver.s3.meta.events.register(f"after-call.s3.{operation}", lambda **kwargs: calls.append(1))
    return calls


# ----------------------------------------------------------------- multipart paths


async def test_known_size_multipart_uses_parts_of_the_chunk_size(s3: Drivers) -> None:
    backend = s3.backend()
    data = payload(12 * MiB + 3)
    result = await backend.add("parts", stream(data), size=len(data))
    assert result.size == len(data)
    assert result.checksum == hashlib.md5(data).hexdigest()
    assert await etag(s3.admin, "parts") == etag_of_parts(data, 5 * MiB)
    assert await read_all(backend, result.location) == data
    across = base.ByteRange(5 * MiB - 10, 20)  # a range over the first part boundary
    assert await read_all(backend, result.location, byte_range=across) == data[across.offset :][:20]


def etag_of_parts(data: bytes, part: int) -> str:
    """S3's multipart ETag: md5 of the parts' md5s, then "-<number of parts>"."""
    digests = [hashlib.md5(data[i : i + part]).digest() for i in range(0, len(data), part)]
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


async def test_unknown_size_upload_is_multipart(s3: Drivers) -> None:
    backend = s3.backend()
    data = payload(11 * MiB + 1, seed=1)
    result = await backend.add("unsized", stream(data), size=None)
    assert result.size == len(data)
    assert await etag(s3.admin, "unsized") == etag_of_parts(data, 5 * MiB)
    assert await read_all(backend, result.location) == data


@pytest.mark.parametrize(
    ("size", "declared", "limit"),
    [
        (3 * MiB, None, 5),
        (5 * MiB, None, 5),
        (5 * MiB, 5 * MiB, 5),
        (7 * MiB, 7 * MiB, 10),
        (5, 5, 0),
    ],
    ids=["unknown-below-a-part", "unknown-one-part", "known-one-part", "below-limit", "tiny"],
)
async def test_what_fits_one_part_is_one_put(
    s3: Drivers, size: int, declared: int | None, limit: int
) -> None:
    """Parts are 5 MiB; ``limit`` is s3_store_large_object_size (MiB)."""
    backend = s3.backend(s3_store_large_object_size=limit)
    data = payload(size, seed=2)
    multipart = count_calls(backend.driver, "CreateMultipartUpload")
    result = await backend.add("single", stream(data), size=declared)
    assert not multipart
    assert await etag(s3.admin, "single") == hashlib.md5(data).hexdigest()
    assert await read_all(backend, result.location) == data


async def test_zero_large_object_size_still_streams_parts(s3: Drivers) -> None:
    backend = s3.backend(s3_store_large_object_size=0)
    data = payload(6 * MiB, seed=3)
    result = await backend.add("zero-limit", stream(data), size=len(data))
    assert await etag(s3.admin, "zero-limit") == etag_of_parts(data, 5 * MiB)
    empty = await backend.add("zero-limit-empty", stream(b""), size=0)
    assert await read_all(backend, empty.location) == b""
    assert await read_all(backend, result.location) == data


async def test_parts_upload_concurrently_up_to_thread_pools(s3: Drivers) -> None:
    driver = s3.driver(s3_store_thread_pools=2)
    lock = threading.Lock()
    state = {"in_flight": 0, "peak": 0}
    overlapped = threading.Event()

    def before(**kwargs: Any) -> None:
        with lock:
            state["in_flight"] += 1
            state["peak"] = max(state["peak"], state["in_flight"])
            if state["in_flight"] >= 2:
                overlapped.set()
        overlapped.wait(timeout=20)  # part 1 holds its thread until part 2 is in flight too

    def after(**kwargs: Any) -> None:
        with lock:
            state["in_flight"] -= 1

    driver.s3.meta.events.register("before-call.s3.UploadPart", before)
    driver.s3.meta.events.register("after-call.s3.UploadPart", after)
    backend = backends.Backend(driver, backend_id="objects")
    size = 21 * MiB
    result = await backend.add("concurrent", generated(size), size=size)
    assert overlapped.is_set(), "the parts were uploaded one at a time"
    assert state["peak"] == 2
    assert result.size == size


async def test_large_unknown_size_upload_in_bounded_memory(s3: Drivers) -> None:
    """64 MiB of unknown size, 5 MiB parts, 2 threads: 3 parts in memory, never the image."""
    backend = s3.backend()
    await backend.add("warm-up", stream(b"x"), size=1)  # the bucket and botocore's caches
    size = 64 * MiB
    tracemalloc.start()
    try:
        result = await backend.add("bounded", generated(size), size=None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.size == size
    bound = (2 + 1) * 5 * MiB + 4 * MiB  # parts uploading and filling, plus chunks in transit
    assert peak < bound, f"a {size}-byte upload peaked at {peak} bytes of Python memory"
    assert result.os_hash_value == hashlib.sha512(generated_bytes(size)).hexdigest()


# ---------------------------------------------------------- every failure aborts


FailingAdd = Callable[[backends.Backend], Any]


def _source_fails(declared: bool) -> FailingAdd:
    data = payload(16 * MiB, seed=4)
    return lambda backend: backend.add(
        "failing",
        failing_stream(data, fail_after=11 * MiB),
        size=len(data) if declared else None,
    )


def _too_long(backend: backends.Backend) -> Any:
    return backend.add("failing", generated(16 * MiB), size=12 * MiB)


def _too_short(backend: backends.Backend) -> Any:
    return backend.add("failing", generated(12 * MiB), size=16 * MiB)


def _bad_checksum(backend: backends.Backend) -> Any:
    wrong = pipeline.ExpectedDigest("sha256", hashlib.sha256(b"something else").hexdigest())
    return backend.add("failing", generated(12 * MiB), size=12 * MiB, expected=wrong)


@pytest.mark.parametrize(
    ("add", "expected"),
    [
        (_source_fails(True), Boom),
        (_source_fails(False), Boom),
        (_too_long, errors.SizeMismatch),
        (_too_short, errors.SizeMismatch),
        (_bad_checksum, errors.ChecksumMismatch),
    ],
    ids=["source-fails-sized", "source-fails-unsized", "too-long", "too-short", "checksum"],
)
async def test_bad_stream_aborts_the_multipart_upload(
    s3: Drivers, add: FailingAdd, expected: type[Exception]
) -> None:
    backend = s3.backend()
    started = count_calls(backend.driver, "CreateMultipartUpload")
    parts = count_calls(backend.driver, "UploadPart")
    with pytest.raises(expected):
        await add(backend)
    assert started and parts, "the failure came before the multipart upload started"
    assert await s3.contents() == []


async def test_cancellation_aborts_the_multipart_upload(s3: Drivers) -> None:
    backend = s3.backend()
    started = count_calls(backend.driver, "CreateMultipartUpload")
    assert isinstance(backend.driver, S3Driver)
    part_stored = threading.Event()
    backend.driver.s3.meta.events.register(
        "after-call.s3.UploadPart", lambda **kwargs: part_stored.set()
    )
    gate = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        async for piece in generated(12 * MiB):
            yield piece
        gate.set()
        await asyncio.sleep(3600)
        yield b"never"

    task = asyncio.create_task(backend.add("cancelled", stalls(), size=None))
    await gate.wait()
    # at least one part is on the server before the cancellation
    assert await asyncio.to_thread(part_stored.wait, 20)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert started
    assert await s3.contents() == []


async def test_rejected_part_aborts_the_upload(s3: Drivers) -> None:
    driver = s3.driver()

    def corrupt_part_two(params: dict[str, Any], **kwargs: Any) -> None:
        if params.get("PartNumber") == 2:  # as if the bytes were damaged on the way
            params["ContentMD5"] = base64.b64encode(hashlib.md5(b"other").digest()).decode()

    driver.s3.meta.events.register("before-parameter-build.s3.UploadPart", corrupt_part_two)
    backend = backends.Backend(driver, backend_id="objects")
    with pytest.raises(errors.BackendError) as info:
        await backend.add("bad-part", generated(16 * MiB), size=None)
    assert "part 2" in str(info.value)
    assert await s3.contents() == []


async def test_rejected_completion_aborts_the_upload(s3: Drivers) -> None:
    driver = s3.driver()

    def name_a_missing_part(params: dict[str, Any], **kwargs: Any) -> None:
        params["MultipartUpload"]["Parts"][0]["ETag"] = '"0123456789abcdef0123456789abcdef"'

    driver.s3.meta.events.register(
        "before-parameter-build.s3.CompleteMultipartUpload", name_a_missing_part
    )
    backend = backends.Backend(driver, backend_id="objects")
    with pytest.raises(errors.BackendError):
        await backend.add("bad-complete", generated(11 * MiB), size=11 * MiB)
    assert await s3.contents() == []


# ------------------------------------------------------------------ duplicates


async def test_concurrent_creates_from_separate_processes_one_wins(s3: Drivers) -> None:
    """Four drivers (as four pods would have) race one id; radosgw's If-None-Match decides."""
    racers = [s3.backend() for _ in range(4)]
    datas = [payload(MiB + n, seed=n) for n in range(len(racers))]
    # every racer passes the early existence check before any of them writes, so the
    # server's conditional PUT is what decides
    checked = threading.Barrier(len(racers), timeout=20)
    puts: set[int] = set()  # which racers sent their PUT

    def all_checked(**kwargs: Any) -> None:  # a before-call hook returning a value answers
        checked.wait()

    for number, racer in enumerate(racers):
        assert isinstance(racer.driver, S3Driver)
        racer.driver.s3.meta.events.register("before-call.s3.HeadObject", all_checked)
        racer.driver.s3.meta.events.register(
            "before-call.s3.PutObject",
            functools.partial(lambda number, **kwargs: puts.add(number), number),
        )
    outcomes = await asyncio.gather(
        *(b.add("race", stream(d), size=len(d)) for b, d in zip(racers, datas, strict=True)),
        return_exceptions=True,
    )
    winners = [i for i, o in enumerate(outcomes) if isinstance(o, backends.AddResult)]
    assert len(winners) == 1, outcomes
    losers = [o for i, o in enumerate(outcomes) if i not in winners]
    assert all(isinstance(o, errors.AlreadyExists) for o in losers), outcomes
    assert puts == set(range(len(racers)))
    stored = await read_all(racers[0], await racers[0].locate("race"))
    assert stored == datas[winners[0]]


async def test_concurrent_multipart_creates_in_one_backend_one_wins(s3: Drivers) -> None:
    backend = s3.backend()
    outcomes = await asyncio.gather(
        *(backend.add("race", generated(11 * MiB, seed=n), size=None) for n in range(3)),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if isinstance(o, backends.AddResult)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, errors.AlreadyExists) for o in outcomes if o not in winners)
    assert await s3.uploads() == []


async def test_duplicate_created_during_a_multipart_upload(s3: Drivers) -> None:
    ours, theirs = s3.backend(), s3.backend()
    competitor = payload(1000, seed=9)

    async def meanwhile() -> AsyncIterator[bytes]:
        sent = 0
        async for piece in generated(12 * MiB):
            yield piece
            sent += len(piece)
            if sent == 6 * MiB:  # our first part is uploading: another pod stores the id
                await theirs.add("contested", stream(competitor), size=len(competitor))

    with pytest.raises(errors.AlreadyExists):
        await ours.add("contested", meanwhile(), size=None)
    assert await s3.uploads() == []
    assert await read_all(ours, await ours.locate("contested")) == competitor


def _refuse_conditions(calls: list[str]) -> Callable[..., Any]:
    """A before-send hook answering 501 to any request with If-None-Match, as some S3 do."""

    class Raw:
        def __init__(self, body: bytes) -> None:
            self._body = body

        def stream(self, **kwargs: Any) -> Iterator[bytes]:
            yield self._body

    def refuse(request: botocore.awsrequest.AWSPreparedRequest, **kwargs: Any) -> Any:
        if "If-None-Match" not in request.headers:
            return None
        calls.append(request.method)
        body = (
            b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>NotImplemented</Code>"
            b"<Message>A header you provided implies functionality that is not implemented"
            b"</Message></Error>"
        )
        return botocore.awsrequest.AWSResponse(
            request.url, 501, {"Content-Type": "application/xml"}, Raw(body)
        )

    return refuse


async def test_server_refusing_conditional_writes_falls_back_to_a_check(
    s3: Drivers, caplog: pytest.LogCaptureFixture
) -> None:
    driver = s3.driver()
    refused: list[str] = []
    driver.s3.meta.events.register("before-send.s3", _refuse_conditions(refused))
    backend = backends.Backend(driver, backend_id="objects")
    data = payload(10_000)
    with caplog.at_level(logging.WARNING, logger="kglance"):
        first = await backend.add("fallback", stream(data), size=len(data))
        large = await backend.add("fallback-large", generated(11 * MiB), size=None)
    assert refused == ["PUT", "POST"]  # once each, then remembered
    assert not driver.writer.conditional.put and not driver.writer.conditional.complete
    assert "If-None-Match" in caplog.text
    with pytest.raises(errors.AlreadyExists):
        await backend.add("fallback", stream(b"other"), size=5)
    assert await read_all(backend, first.location) == data
    assert large.size == 11 * MiB
    assert refused == ["PUT", "POST"]


# ---------------------------------------------------------------------- bucket


async def test_bucket_is_created_on_put_when_configured(s3: Drivers) -> None:
    driver = s3.driver(s3_store_create_bucket_on_put=True)
    await driver.check()  # a missing bucket is fine: the first upload creates it
    backend = backends.Backend(driver, backend_id="objects")
    await backend.add("first", stream(b"abc"), size=3)
    await asyncio.to_thread(driver.s3.head_bucket, Bucket=s3.bucket)
    await driver.check()


@pytest.mark.parametrize("size", [3, 6 * MiB], ids=["put", "multipart"])
async def test_missing_bucket_is_a_clear_error(s3: Drivers, size: int) -> None:
    driver = s3.driver(s3_store_create_bucket_on_put=False)
    backend = backends.Backend(driver, backend_id="objects")
    with pytest.raises(errors.ConfigurationError) as info:
        await backend.add("nowhere", generated(size), size=size)
    assert s3.bucket in str(info.value)
    assert "s3_store_create_bucket_on_put" in str(info.value)
    with pytest.raises(errors.ConfigurationError, match="s3_store_create_bucket_on_put"):
        await driver.check()
    assert await s3.contents() == []
    with pytest.raises(errors.NotFound):
        await backend.size(await backend.locate("nowhere"))
    with pytest.raises(errors.NotFound):
        async with backend.get(await backend.locate("nowhere")):
            pass
    await backend.delete(await backend.locate("nowhere"))  # nothing to delete is success


# ------------------------------------------------------------------- locations


async def test_locations_are_glance_s3_uris_without_credentials(s3: Drivers) -> None:
    backend = s3.backend()
    result = await backend.add("where", stream(b"abc"), size=3)
    host = require_env("S3_ENDPOINT").partition("://")[2].rstrip("/")
    assert result.location.uri(credentials=True) == f"s3://{host}/{s3.bucket}/where"
    assert await backend.locate("where") == result.location


@pytest.mark.parametrize(
    "template",
    [
        "s3://OLDACCESS:old%2Fsecret@old-host.example:9000/{bucket}/{key}",
        "s3+https://OLDACCESS:pass@s3serviceurl.example/v1/{bucket}/{key}",
        "s3+http://{bucket}-host/{bucket}/{key}",
    ],
    ids=["credentialed", "credentialed-with-path", "other-host"],
)
async def test_old_locations_are_read_with_the_configured_keys(s3: Drivers, template: str) -> None:
    backend = s3.backend()
    data = payload(50_000)
    await backend.add("old", stream(data), size=len(data))
    old = locations.parse(template.format(bucket=s3.bucket, key="old"))
    assert backend.driver.owns(old)
    assert await read_all(backend, old) == data
    assert await backend.size(old) == len(data)
    await backend.delete(old)
    with pytest.raises(errors.NotFound):
        await backend.size(old)


async def test_locations_in_another_bucket_are_refused(s3: Drivers) -> None:
    backend = s3.backend()
    elsewhere = locations.parse(f"s3://host/{s3.bucket}-other/key")
    assert not backend.driver.owns(elsewhere)
    with pytest.raises(errors.InvalidLocation):
        await backend.size(elsewhere)


# ------------------------------------------------------------------ credentials


async def test_credentials_appear_in_no_error_log_or_location(
    s3: Drivers, caplog: pytest.LogCaptureFixture
) -> None:
    access, secret = require_env("S3_ACCESS_KEY"), require_env("S3_SECRET_KEY")
    wrong_secret = "wrong-" + secret[::-1]
    caplog.set_level(logging.DEBUG, logger="kglance")
    shown: list[str] = []
    backend = s3.backend()
    result = await backend.add("secret-test", stream(b"abc"), size=3)
    shown += [result.location.uri(credentials=True), repr(result), repr(backend.driver)]
    shown.append(repr(backend.driver.options))
    for failing in (
        backend.add("secret-test", stream(b"abc"), size=3),
        backend.add("secret-big", failing_stream(payload(8 * MiB), fail_after=6 * MiB), size=None),
    ):
        with pytest.raises((errors.StoreError, Boom)) as info:
            await failing
        shown.append(str(info.value))
    impostor = s3.backend(s3_store_secret_key=wrong_secret)
    shown.append(repr(impostor.driver.options))
    for attempt in (
        impostor.add("impostor", stream(b"abc"), size=3),
        impostor.size(result.location),
        impostor.driver.check(),
    ):
        with pytest.raises(errors.StoreError) as denied:
            await attempt
        shown.append(str(denied.value))
        assert not denied.value.retryable
    text = "\n".join([*shown, caplog.text])
    for value in (access, secret, wrong_secret):
        assert value not in text


# ---------------------------------------------------------------------- errors


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_unreachable_endpoint_is_remote_unavailable(s3: Drivers) -> None:
    driver = s3.driver(s3_store_host=f"127.0.0.1:{_free_port()}")
    with pytest.raises(errors.RemoteUnavailable):
        await driver.check()
    with pytest.raises(errors.RemoteUnavailable):
        await driver.size(await driver.locate("anything"))


@pytest.fixture(scope="module")
def faultproxy() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("kglance_tests_s3_faultproxy", FAULTPROXY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.mark.parametrize("how", ["close", "reset"])
async def test_body_cut_mid_stream_raises(
    s3: Drivers, faultproxy: types.ModuleType, how: str
) -> None:
    data = payload(3 * MiB, seed=6)
    seeded = await s3.backend().add("cut", stream(data), size=len(data))
    target_port = int(require_env("S3_ENDPOINT").rpartition(":")[2].strip("/"))
    proxy = faultproxy.FaultProxy(
        target=("127.0.0.1", target_port), faults=faultproxy.Faults(cut_after=MiB, how=how)
    )
    await proxy.start()
    try:
        behind = s3.backend(s3_store_host=f"http://127.0.0.1:{proxy.port}")
        received = bytearray()
        with pytest.raises(errors.RemoteUnavailable):
            async with behind.get(seeded.location) as blob:
                async for chunk in blob:
                    received += chunk
    finally:
        await proxy.close()
    assert len(received) < len(data)
    assert data.startswith(bytes(received))


async def test_reading_never_holds_the_whole_object(s3: Drivers) -> None:
    backend = s3.backend()
    size = 24 * MiB
    result = await backend.add("big-read", generated(size), size=size)
    tracemalloc.start()
    try:
        async with backend.get(result.location, byte_range=base.ByteRange(MiB)) as blob:
            assert blob.served == base.ByteRange(MiB, size - MiB)
            received = 0
            async for chunk in blob:
                received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == size - MiB
    assert peak < 6 * MiB
