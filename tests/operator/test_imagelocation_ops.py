"""The operator's byte operations on ImageLocations, against real backends and without kopf.

Copies: filesystem to filesystem (bytes, digests, progress), filesystem to the radosgw's S3 and
back; a source record that does not match its bytes (md5, multihash, size, a truncated file)
fails with nothing at the target; a repeated copy adopts what the first stored, never a
second object, and refuses bytes it did not write. Verification: present, truncated, missing,
outside the backend, backend down. Deletion verdicts for each error class. ACLs on the real
Swift (multi-tenant and not) and on a backend without ACLs.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from kglance.drivers import backends, errors, locations, registry
from kglance.drivers.s3 import S3Driver
from kglance.operator import copying, imagebytes
from tests.conformance.suite import stream
from tests.conformance.test_s3 import s3_options
from tests.drivers import s3_helpers, swift_support
from tests.drivers.swift_support import SwiftServer

KiB = 1024
PAYLOAD = os.urandom(300 * KiB + 17)


def filesystem(datadir: pathlib.Path, *, backend_id: str) -> backends.Backend:
    driver = registry.Registry().build(
        "file",
        {"filesystem_store_datadir": str(datadir), "filesystem_store_chunk_size": 64 * KiB},
        backend_id=backend_id,
    )
    return backends.Backend(driver, backend_id=backend_id)


@pytest.fixture
async def slow(tmp_path: pathlib.Path) -> AsyncIterator[backends.Backend]:
    backend = filesystem(tmp_path / "slow", backend_id="slow")
    yield backend
    await backend.driver.aclose()


@pytest.fixture
async def fast(tmp_path: pathlib.Path) -> AsyncIterator[backends.Backend]:
    backend = filesystem(tmp_path / "fast", backend_id="fast")
    yield backend
    await backend.driver.aclose()


def image_id() -> str:
    return str(uuid.uuid4())


async def seeded(backend: backends.Backend, image: str, data: bytes = PAYLOAD) -> Any:
    return await backend.add(image, stream(data), size=len(data))


def source_of(result: backends.AddResult, backend: backends.Backend) -> copying.SourceImage:
    return copying.SourceImage(
        backend=backend,
        location=result.location,
        size=result.size,
        checksum=result.checksum,
        os_hash_algo=result.os_hash_algo,
        os_hash_value=result.os_hash_value,
    )


class Reports:
    """A progress sink that keeps what it was given."""

    def __init__(self) -> None:
        self.seen: list[copying.Progress] = []

    async def __call__(self, progress: copying.Progress) -> None:
        self.seen.append(progress)


def ticking() -> Callable[[], float]:
    """A clock that advances one second per reading: every chunk is worth a report."""
    now = iter(range(1_000_000))
    return lambda: float(next(now))


def files(directory: pathlib.Path) -> list[str]:
    return sorted(os.listdir(directory)) if directory.exists() else []


# ---------------------------------------------------------------------- copying


async def test_copy_between_filesystems_keeps_bytes_and_digests(
    slow: backends.Backend, fast: backends.Backend, tmp_path: pathlib.Path
) -> None:
    image = image_id()
    original = await seeded(slow, image)
    reports = Reports()
    copied = await copying.copy_image(
        source_of(original, slow), target=fast, image_id=image, report=reports, clock=ticking()
    )
    assert copied.backend == "fast"
    assert (copied.size, copied.checksum) == (len(PAYLOAD), hashlib.md5(PAYLOAD).hexdigest())
    assert (copied.os_hash_algo, copied.os_hash_value) == (
        "sha512",
        hashlib.sha512(PAYLOAD).hexdigest(),
    )
    assert (tmp_path / "fast" / image).read_bytes() == PAYLOAD
    assert copied.location == locations.FileLocation(path=str(tmp_path / "fast" / image))
    # a report per chunk with the ticking clock: counts grow to the total, the last is 100 %
    done = [p.bytes_done for p in reports.seen]
    assert done[0] == 0 and done == sorted(done) and len(done) > 3
    assert reports.seen[-1] == copying.Progress(len(PAYLOAD), len(PAYLOAD))
    assert reports.seen[-1].as_status() == {
        "bytesDone": len(PAYLOAD),
        "bytesTotal": len(PAYLOAD),
        "percent": 100,
    }
    assert all(p.bytes_total == len(PAYLOAD) for p in reports.seen)


async def test_progress_is_throttled_by_the_clock(
    slow: backends.Backend, fast: backends.Backend
) -> None:
    image = image_id()
    original = await seeded(slow, image)
    reports = Reports()
    await copying.copy_image(
        source_of(original, slow), target=fast, image_id=image, report=reports, clock=lambda: 5.0
    )
    # a clock that never moves allows the first report and the final one, nothing between
    assert [p.bytes_done for p in reports.seen] == [0, len(PAYLOAD)]


async def test_copy_uses_the_sources_hash_algorithm(
    slow: backends.Backend, fast: backends.Backend
) -> None:
    image = image_id()
    original = await slow.add(image, stream(PAYLOAD), size=len(PAYLOAD), hash_algo="sha256")
    copied = await copying.copy_image(
        source_of(original, slow), target=fast, image_id=image, report=Reports()
    )
    assert (copied.os_hash_algo, copied.os_hash_value) == (
        "sha256",
        hashlib.sha256(PAYLOAD).hexdigest(),
    )


@pytest.mark.parametrize(
    "damage",
    [
        {"checksum": hashlib.md5(b"other").hexdigest(), "os_hash_value": None},
        {"os_hash_value": hashlib.sha512(b"other").hexdigest()},
        {"checksum": hashlib.md5(b"other").hexdigest()},  # multihash right, md5 wrong
    ],
    ids=["md5", "multihash", "md5-with-right-multihash"],
)
async def test_checksum_mismatch_leaves_nothing_at_the_target(
    slow: backends.Backend,
    fast: backends.Backend,
    tmp_path: pathlib.Path,
    damage: dict[str, Any],
) -> None:
    image = image_id()
    record = source_of(await seeded(slow, image), slow)
    fields = {
        "size": record.size,
        "checksum": record.checksum,
        "os_hash_algo": record.os_hash_algo,
        "os_hash_value": record.os_hash_value,
        **damage,
    }
    wrong = copying.SourceImage(backend=slow, location=record.location, **fields)
    with pytest.raises(errors.ChecksumMismatch):
        await copying.copy_image(wrong, target=fast, image_id=image, report=Reports())
    assert files(tmp_path / "fast") == []


async def test_recorded_size_not_matching_the_source_fails_before_streaming(
    slow: backends.Backend, fast: backends.Backend, tmp_path: pathlib.Path
) -> None:
    image = image_id()
    record = source_of(await seeded(slow, image), slow)
    wrong = copying.SourceImage(backend=slow, location=record.location, size=len(PAYLOAD) + 1)
    reports = Reports()
    with pytest.raises(errors.SizeMismatch):
        await copying.copy_image(wrong, target=fast, image_id=image, report=reports)
    assert reports.seen == [] and files(tmp_path / "fast") == []


async def test_truncated_source_file_fails_the_copy(
    slow: backends.Backend, fast: backends.Backend, tmp_path: pathlib.Path
) -> None:
    image = image_id()
    record = source_of(await seeded(slow, image), slow)
    os.truncate(tmp_path / "slow" / image, 1000)
    with pytest.raises(errors.SizeMismatch):
        await copying.copy_image(record, target=fast, image_id=image, report=Reports())
    assert files(tmp_path / "fast") == []


async def test_copy_to_the_same_backend_is_refused(slow: backends.Backend) -> None:
    image = image_id()
    record = source_of(await seeded(slow, image), slow)
    with pytest.raises(errors.InvalidRequest, match="another backend"):
        await copying.copy_image(record, target=slow, image_id=image, report=Reports())


@pytest.mark.parametrize("recorded", [True, False], ids=["digests-recorded", "no-digests"])
async def test_repeated_copy_adopts_the_first_one(
    slow: backends.Backend, fast: backends.Backend, tmp_path: pathlib.Path, recorded: bool
) -> None:
    """An operator restarted after the target committed: the second copy finds the image."""
    image = image_id()
    original = await seeded(slow, image)
    record = source_of(original, slow)
    if not recorded:
        record = copying.SourceImage(backend=slow, location=record.location)
    first = await copying.copy_image(record, target=fast, image_id=image, report=Reports())
    reports = Reports()
    again = await copying.copy_image(record, target=fast, image_id=image, report=reports)
    assert again.location == first.location
    assert (again.size, again.checksum, again.os_hash_value) == (
        original.size,
        original.checksum,
        original.os_hash_value,
    )
    assert files(tmp_path / "fast") == [image]
    assert reports.seen[-1].percent == 100


async def test_other_bytes_under_the_image_id_are_left_alone(
    slow: backends.Backend, fast: backends.Backend, tmp_path: pathlib.Path
) -> None:
    image = image_id()
    record = source_of(await seeded(slow, image), slow)
    await seeded(fast, image, b"somebody else's image")
    with pytest.raises(errors.AlreadyExists, match="other bytes"):
        await copying.copy_image(record, target=fast, image_id=image, report=Reports())
    assert (tmp_path / "fast" / image).read_bytes() == b"somebody else's image"


@pytest.fixture
async def objects() -> AsyncIterator[backends.Backend]:
    bucket = f"kglance-operator-{uuid.uuid4().hex[:12]}"
    driver = registry.Registry().build("s3", s3_options(bucket), backend_id="objects")
    assert isinstance(driver, S3Driver)
    backend = backends.Backend(driver, backend_id="objects")
    try:
        yield backend
    finally:
        await s3_helpers.remove_bucket(driver.s3, bucket)
        await driver.aclose()


async def test_copy_from_a_filesystem_to_s3_and_back(
    slow: backends.Backend, fast: backends.Backend, objects: backends.Backend
) -> None:
    image = image_id()
    original = await seeded(slow, image)
    in_s3 = await copying.copy_image(
        source_of(original, slow), target=objects, image_id=image, report=Reports()
    )
    assert in_s3.location.scheme.startswith("s3")
    assert (in_s3.checksum, in_s3.os_hash_value) == (original.checksum, original.os_hash_value)
    back = await copying.copy_image(
        source_of(in_s3, objects), target=fast, image_id=image, report=Reports()
    )
    async with fast.get(back.location) as blob:
        assert await blob.read() == PAYLOAD
    verified = await imagebytes.verify(objects, in_s3.location, expected_size=len(PAYLOAD))
    assert verified.status == "True"


# ---------------------------------------------------------------------- verification


async def test_verify_reports_present_truncated_and_missing_bytes(
    slow: backends.Backend, tmp_path: pathlib.Path
) -> None:
    image = image_id()
    location = (await seeded(slow, image)).location
    present = await imagebytes.verify(slow, location, expected_size=len(PAYLOAD))
    assert (present.status, present.reason, present.size) == ("True", "Verified", len(PAYLOAD))

    os.truncate(tmp_path / "slow" / image, 10)
    truncated = await imagebytes.verify(slow, location, expected_size=len(PAYLOAD))
    assert (truncated.status, truncated.reason, truncated.size) == ("False", "SizeMismatch", 10)
    assert f"holds 10 bytes, {len(PAYLOAD)} are recorded" in truncated.message

    unsized = await imagebytes.verify(slow, location, expected_size=None)
    assert (unsized.status, unsized.size) == ("True", 10)

    await slow.delete(location)
    missing = await imagebytes.verify(slow, location, expected_size=len(PAYLOAD))
    assert (missing.status, missing.reason) == ("False", "NotFound")


async def test_verify_of_a_location_outside_the_backend(
    slow: backends.Backend, tmp_path: pathlib.Path
) -> None:
    outside = locations.FileLocation(path=str(tmp_path / "elsewhere" / "x"))
    outcome = await imagebytes.verify(slow, outside, expected_size=1)
    assert (outcome.status, outcome.reason) == ("False", "InvalidLocation")


async def test_verify_is_unknown_when_the_backend_is_down() -> None:
    options = dict(s3_options("kglance-nowhere"))
    options["s3_store_host"] = "http://127.0.0.1:9"  # discard port: nothing listens
    driver = registry.Registry().build("s3", options, backend_id="down")
    backend = backends.Backend(driver, backend_id="down")
    try:
        location = await backend.locate("some-image")
        outcome = await imagebytes.verify(backend, location, expected_size=1)
    finally:
        await driver.aclose()
    assert (outcome.status, outcome.reason) == ("Unknown", "RemoteUnavailable")


# ---------------------------------------------------------------------- deletion


async def test_delete_is_idempotent(slow: backends.Backend, tmp_path: pathlib.Path) -> None:
    image = image_id()
    location = (await seeded(slow, image)).location
    await slow.delete(location)
    await slow.delete(location)
    assert files(tmp_path / "slow") == []


@pytest.mark.parametrize(
    ("error", "waited", "verdict"),
    [
        (errors.InUse("clones"), 10**6, imagebytes.Verdict.RETRY),
        (errors.HasSnapshot("snaps"), 10**6, imagebytes.Verdict.RETRY),
        (errors.RemoteUnavailable("down"), 10**6, imagebytes.Verdict.RETRY),
        (errors.BackendError("odd"), 10**6, imagebytes.Verdict.RETRY),
        (errors.UnknownBackend("gone"), 0, imagebytes.Verdict.RETRY),
        (errors.UnknownBackend("gone"), 600, imagebytes.Verdict.RELEASE),
        (errors.ConfigurationError("bad"), 599, imagebytes.Verdict.RETRY),
        (errors.ConfigurationError("bad"), 601, imagebytes.Verdict.RELEASE),
        (errors.Unsupported("read-only"), 0, imagebytes.Verdict.RELEASE),
        (errors.InvalidLocation("outside"), 0, imagebytes.Verdict.RELEASE),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_reclaim_verdicts(
    error: errors.StoreError, waited: float, verdict: imagebytes.Verdict
) -> None:
    assert imagebytes.reclaim_verdict(error, waited=waited, release_after=600) is verdict


# ---------------------------------------------------------------------- ACLs


async def test_acls_on_a_backend_without_them(slow: backends.Backend) -> None:
    location = (await seeded(slow, image_id())).location
    outcome = await imagebytes.apply_acls(slow, location, imagebytes.Acls(public=True))
    assert (outcome.status, outcome.reason) == ("False", "Unsupported")
    assert "multiTenant" in outcome.message


@pytest.fixture
def swift() -> SwiftServer:
    return SwiftServer.from_env()


@pytest.fixture
def swift_conn(swift: SwiftServer) -> Iterator[Any]:
    conn = swift.connection()
    yield conn
    conn.close()


async def test_acls_on_a_multi_tenant_swift(swift: SwiftServer, swift_conn: Any) -> None:
    prefix = swift_support.unique("kgop")
    image = image_id()
    with swift_support.scratch_containers(swift_conn, f"{prefix}_{image}"):
        backend = swift_support.backend(
            swift_support.build(
                swift.options(
                    swift_store_container=prefix,
                    swift_store_multi_tenant=True,
                    swift_store_admin_tenants="ops",
                )
            )
        )
        try:
            location = (await seeded(backend, image, b"shared image")).location
            shared = imagebytes.Acls(read_tenants=("t1", "t2"), write_tenants=("w1",))
            outcome = await imagebytes.apply_acls(backend, location, shared)
            assert (outcome.status, outcome.reason) == ("True", "Applied")
            head = swift_conn.head_container(f"{prefix}_{image}")
            assert head["x-container-read"] == "t1:*,t2:*"
            assert head["x-container-write"] == "w1:*,ops:*"

            outcome = await imagebytes.apply_acls(backend, location, imagebytes.Acls(public=True))
            assert outcome.status == "True"
            assert swift_conn.head_container(f"{prefix}_{image}")["x-container-read"] == "*:*"
            await backend.delete(location)
        finally:
            await backend.driver.aclose()


async def test_acls_on_a_single_tenant_swift(swift: SwiftServer, swift_conn: Any) -> None:
    container = swift_support.unique("kgop")
    with swift_support.scratch_containers(swift_conn, container):
        backend = swift_support.backend(
            swift_support.build(swift.options(swift_store_container=container))
        )
        try:
            location = (await seeded(backend, image_id(), b"private")).location
            outcome = await imagebytes.apply_acls(backend, location, imagebytes.Acls(public=True))
        finally:
            await backend.driver.aclose()
    assert (outcome.status, outcome.reason) == ("False", "Unsupported")
    assert "swift_store_multi_tenant" in outcome.message
