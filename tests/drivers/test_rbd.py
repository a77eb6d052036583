"""RBD-driver behaviour the conformance suite cannot see, on the real Ceph cluster.

The matrix:

* options: glance's names and defaults, ``rbd_store_user`` None staying None, the chunk size
  as object order, image features, errno translation;
* what an add leaves in Ceph (checked through the test's own admin connection): the object
  order, the protected snapshot ``snap``, glance's location, no upload record;
* delete: clones of the snapshot block it (``InUse``) and it works once they are gone; an
  image another client has open (``InUse``, nothing changed); user snapshots send the image
  to the trash, or give ``HasSnapshot`` with the trash turned off (nothing changed);
* writes: unknown-size growth (glance's resize sequence, observed from outside), thin
  provisioning (allocated extents), duplicates that never consume their stream, overwrite;
* reads: ranges served from the snapshot while the head changes; old one-component locations
  read the head;
* the connection: one per backend across operations, replaced after the client is
  blocklisted; errors for a missing pool, a bad conf file, an unknown user, no monitor;
  ``owns()`` before and after the fsid is known;
* least privilege: the restricted cephx user of ``ceph-up.sh`` (``profile rbd`` on one pool)
  does everything, and is refused elsewhere;
* crashes: a writer killed with SIGKILL leaves exactly a recorded partial image, which the
  sweep removes; a duplicate add reclaims such an image; live, complete and foreign images
  are never touched;
* the sidecar, configured with glance_store's option names.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import errno
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import rbd

from kglance.drivers import backends, base, errors, locations, registry
from kglance.drivers.rbd import RbdDriver, failures, options, removal, uploads
from tests.conformance.suite import payload, read_all, stream
from tests.conftest import require_env
from tests.drivers import rbd_helpers
from tests.drivers.rbd_helpers import MiB, PoolAdmin
from tests.sidecar import harness


def build(admin: PoolAdmin, **settings: Any) -> RbdDriver:
    merged = {
        "rbd_store_ceph_conf": admin.conf,
        "rbd_store_pool": admin.pool,
        "rbd_store_chunk_size": 1,
        **settings,
    }
    driver = registry.Registry().build("rbd", merged, backend_id="ceph")
    assert isinstance(driver, RbdDriver)
    return driver


@contextlib.asynccontextmanager
async def opened(admin: PoolAdmin, **settings: Any) -> AsyncIterator[backends.Backend]:
    driver = build(admin, **settings)
    try:
        yield backends.Backend(driver, backend_id="ceph")
    finally:
        await driver.aclose()


@pytest.fixture
async def admin() -> AsyncIterator[PoolAdmin]:
    async with rbd_helpers.pool_admin() as pool:
        yield pool


@pytest.fixture
async def backend(admin: PoolAdmin) -> AsyncIterator[backends.Backend]:
    async with opened(admin) as opened_backend:
        yield opened_backend


def driver_of(backend: backends.Backend) -> RbdDriver:
    assert isinstance(backend.driver, RbdDriver)
    return backend.driver


async def add(backend: backends.Backend, image_id: str, data: bytes) -> locations.RbdLocation:
    result = await backend.add(image_id, stream(data), size=len(data))
    assert isinstance(result.location, locations.RbdLocation)
    return result.location


# --------------------------------------------------------------------------- options


def test_options_have_glance_names_and_defaults() -> None:
    opts = options.RbdOptions()
    assert opts.rbd_store_chunk_size == 8
    assert opts.rbd_store_pool == "images"
    assert opts.rbd_store_user is None
    assert opts.rbd_store_ceph_conf == ""
    assert opts.rados_connect_timeout == -1
    assert opts.rbd_thin_provisioning is False
    assert opts.object_order == 23
    assert opts.features is None  # librbd's configured default, as glance passes it


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, None), ("", None), ("  ", None), ("glance", "glance"), ("client.glance", "glance")],
)
def test_user_none_is_never_the_string_none(given: str | None, expected: str | None) -> None:
    assert options.RbdOptions(rbd_store_user=given).rbd_store_user == expected


@pytest.mark.parametrize(("chunk", "order"), [(1, 20), (3, 21), (8, 23), (32, 25)])
def test_chunk_size_is_the_object_order(chunk: int, order: int) -> None:
    assert options.RbdOptions(rbd_store_chunk_size=chunk).object_order == order


@pytest.mark.parametrize("chunk", [0, 33, -1])
def test_chunk_sizes_librbd_refuses_are_refused_at_configuration(chunk: int) -> None:
    with pytest.raises(errors.ConfigurationError, match="rbd_store_chunk_size"):
        registry.Registry().build("rbd", {"rbd_store_chunk_size": chunk}, backend_id="x")


@pytest.mark.parametrize(
    ("text", "bits"),
    [("layering", 1), ("layering, exclusive-lock", 5), ("61", 61), ("5", 5)],
)
def test_image_features(text: str, bits: int) -> None:
    assert options.RbdOptions(rbd_store_image_features=text).features == bits


@pytest.mark.parametrize("text", ["striping", "object-map", "layering,fast-diff", "2", "1024"])
def test_bad_image_features_are_refused(text: str) -> None:
    with pytest.raises(errors.ConfigurationError, match="rbd_store_image_features"):
        registry.Registry().build("rbd", {"rbd_store_image_features": text}, backend_id="x")


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (-errno.ENOSPC, errors.StorageFull),
        (-errno.EDQUOT, errors.StorageFull),
        (-errno.EACCES, errors.WriteDenied),
        (-errno.EPERM, errors.WriteDenied),
        (-errno.ENOENT, errors.NotFound),
        (-errno.ETIMEDOUT, errors.RemoteUnavailable),
        (-errno.ESHUTDOWN, errors.RemoteUnavailable),
        (-errno.EINVAL, errors.BackendError),
    ],
)
def test_librbd_return_codes(code: int, error: type[errors.StoreError]) -> None:
    assert type(failures.from_errno(code, action="writing")) is error


def test_librbd_exceptions() -> None:
    assert isinstance(
        failures.translate(rbd.NoSpace("full", errno=errno.ENOSPC), action="x"),
        errors.StorageFull,
    )
    shutdown = rbd.ConnectionShutdown("gone", errno=errno.ESHUTDOWN)
    assert failures.connection_lost(shutdown)
    wrapped = errors.RemoteUnavailable("x")
    wrapped.__cause__ = shutdown
    assert failures.connection_lost(wrapped)
    assert not failures.connection_lost(rbd.ImageNotFound("no", errno=errno.ENOENT))


def test_driver_declares_glance_capabilities() -> None:
    cls = registry.Registry().driver_class("rbd")
    assert cls.type_name == "rbd"
    assert cls.schemes == ("rbd",)
    wanted = (
        base.Feature.READ
        | base.Feature.WRITE
        | base.Feature.RANGED_READ
        | base.Feature.UNSIZED_WRITE
        | base.Feature.THIN_PROVISIONING
        | base.Feature.REUSABLE
    )
    assert cls.features == wanted


# --------------------------------------------------------------------------- adds


async def test_add_leaves_a_protected_snapshot_and_glance_location(
    admin: PoolAdmin, backend: backends.Backend
) -> None:
    data = payload(2 * MiB + 5)
    location = await add(backend, "added", data)
    assert location == locations.RbdLocation(
        fsid=admin.fsid, pool=admin.pool, image="added", snapshot="snap"
    )
    assert location.uri() == f"rbd://{admin.fsid}/{admin.pool}/added/snap"
    assert await admin.run(admin.snapshots, "added") == {"snap": True}
    assert await admin.run(admin.read, "added", "snap") == data
    assert await admin.run(admin.order, "added") == 20  # rbd_store_chunk_size 1 MiB
    assert "added" not in await admin.run(uploads.entries, admin.ioctx)


async def test_image_features_option_reaches_librbd(admin: PoolAdmin) -> None:
    async with opened(admin, rbd_store_image_features="layering") as backend:
        await add(backend, "layering-only", b"abc")
    assert await admin.run(admin.features, "layering-only") == 1


async def test_unknown_size_grows_like_glance_and_is_trimmed(admin: PoolAdmin) -> None:
    """glance's test_add_w_image_size_zero_less_resizes: 57 MiB in 8 MiB chunks."""
    observed: list[int] = []
    data = payload(MiB) + bytes(56 * MiB)  # zeros: thin provisioning keeps the OSD small

    async def watched() -> AsyncIterator[bytes]:
        for start in range(0, len(data), MiB):
            yield data[start : start + MiB]
            # the driver asks for more once it has grown the image for what it has; before its
            # first (4 MiB) chunk the image is still empty
            observed.append(await admin.run(admin.size, "grown"))

    async with opened(admin, rbd_store_chunk_size=8, rbd_thin_provisioning=True) as backend:
        result = await backend.add("grown", watched(), size=None)
        assert result.size == len(data)
        assert await read_all(backend, result.location) == data
    assert sorted(set(observed) - {0}) == [16 * MiB, 48 * MiB, 112 * MiB]
    assert await admin.run(admin.size, "grown", "snap") == len(data)
    assert await admin.run(admin.size, "grown") == len(data)


@pytest.mark.parametrize("thin", [True, False], ids=["thin", "thick"])
async def test_thin_provisioning_skips_zero_chunks(admin: PoolAdmin, thin: bool) -> None:
    # the driver writes (and skips) 4 MiB chunks; 4 MiB objects make them whole objects
    data = payload(4 * MiB, seed=1) + bytes(8 * MiB) + payload(MiB, seed=2)
    async with opened(admin, rbd_thin_provisioning=thin, rbd_store_chunk_size=4) as backend:
        location = await add(backend, "sparse", data)
        assert await read_all(backend, location) == data
    allocated = await admin.run(admin.allocated, "sparse", "snap")
    touches_zeros = any(
        start < 12 * MiB and start + length > 4 * MiB for start, length in allocated
    )
    assert touches_zeros is not thin, allocated
    assert any(start == 0 for start, _ in allocated)


async def test_duplicate_fails_before_reading_the_stream(
    admin: PoolAdmin, backend: backends.Backend
) -> None:
    await add(backend, "twice", b"first")
    pulled: list[bytes] = []

    async def second() -> AsyncIterator[bytes]:
        pulled.append(b"x")
        yield b"second"

    with pytest.raises(errors.AlreadyExists):
        await backend.add("twice", second(), size=6)
    assert pulled == []
    assert await admin.run(admin.read, "twice", "snap") == b"first"


async def test_overwrite_replaces_the_image(admin: PoolAdmin, backend: backends.Backend) -> None:
    await add(backend, "replaced", payload(3000, seed=1))
    new = payload(5000, seed=2)
    result = await backend.add("replaced", stream(new), size=len(new), mode="overwrite")
    assert await read_all(backend, result.location) == new
    assert await admin.run(admin.snapshots, "replaced") == {"snap": True}


@pytest.mark.parametrize("declared", [True, False], ids=["sized", "unsized"])
async def test_failed_add_leaves_no_image_snapshot_or_record(
    admin: PoolAdmin, backend: backends.Backend, declared: bool
) -> None:
    data = payload(3 * MiB)
    reached = asyncio.Event()

    async def failing() -> AsyncIterator[bytes]:
        yield data[: 2 * MiB]
        reached.set()
        raise OSError("the client went away")

    before = await admin.run(admin.contents)
    with pytest.raises(OSError, match="went away"):
        await backend.add("failed", failing(), size=len(data) if declared else None)
    assert reached.is_set()
    assert await admin.run(admin.contents) == before
    assert "failed" not in await admin.run(uploads.entries, admin.ioctx)


# --------------------------------------------------------------------------- deletes


async def test_clone_blocks_delete_until_it_is_removed(
    admin: PoolAdmin, backend: backends.Backend
) -> None:
    data = payload(MiB + 1)
    location = await add(backend, "parent", data)
    await admin.run(admin.clone, "parent", "snap", "child")
    with pytest.raises(errors.InUse) as caught:
        await backend.delete(location)
    assert type(caught.value) is errors.InUse
    assert caught.value.http_status == 409
    assert await admin.run(admin.snapshots, "parent") == {"snap": True}  # nothing changed
    assert await read_all(backend, location) == data
    await admin.run(admin.remove, "child")
    await backend.delete(location)
    assert "parent" not in await admin.run(admin.contents)
    with pytest.raises(errors.NotFound):
        await backend.size(location)


async def test_concurrent_deletes_of_one_image_both_succeed(
    admin: PoolAdmin, backend: backends.Backend
) -> None:
    """Racing RBD.remove calls can leave a name with nothing behind it; the lock prevents it."""
    locations_ = [await add(backend, f"raced-{n}", payload(MiB, seed=n)) for n in range(3)]
    await asyncio.gather(*(backend.delete(loc) for loc in locations_ for _ in range(3)))
    names = await admin.run(admin.contents)
    assert not [name for name in names if name.startswith("raced-")]


async def test_image_open_elsewhere_blocks_delete_and_keeps_its_snapshot(
    admin: PoolAdmin, backend: backends.Backend
) -> None:
    location = await add(backend, "busy", b"data")
    handle = await admin.run(rbd.Image, admin.ioctx, "busy")  # read-write: registers a watch
    try:
        with pytest.raises(errors.InUse, match="open by"):
            await backend.delete(location)
        assert await admin.run(admin.snapshots, "busy") == {"snap": True}
    finally:
        await admin.run(handle.close)
    await backend.delete(location)
    assert "busy" not in await admin.run(admin.contents)


async def test_user_snapshots_send_the_image_to_the_trash(
    admin: PoolAdmin, backend: backends.Backend
) -> None:
    location = await add(backend, "snapped", b"data")
    await admin.run(admin.snapshot, "snapped", "user")
    await backend.delete(location)  # glance's behaviour: deleted, as far as Glance knows
    contents = await admin.run(admin.contents)
    assert "snapped" not in contents
    assert "trash:snapped" in contents
    await backend.delete(location)  # idempotent
    with pytest.raises(errors.NotFound):
        await backend.size(location)


async def test_has_snapshot_when_the_trash_is_turned_off(admin: PoolAdmin) -> None:
    async with opened(admin, rbd_store_trash_images_with_snapshots=False) as backend:
        location = await add(backend, "kept", b"data")
        await admin.run(admin.snapshot, "kept", "user")
        with pytest.raises(errors.HasSnapshot) as caught:
            await backend.delete(location)
        assert caught.value.code == "has_snapshot"
        assert isinstance(caught.value, errors.InUse)
        assert await admin.run(admin.snapshots, "kept") == {"snap": True, "user": False}
        assert await read_all(backend, location) == b"data"


# --------------------------------------------------------------------------- reads


async def test_reads_come_from_the_snapshot_and_old_locations_read_the_head(
    admin: PoolAdmin, backend: backends.Backend
) -> None:
    data = payload(3 * MiB + 17, seed=4)
    location = await add(backend, "layered", data)
    await admin.run(admin.write, "layered", b"X" * 1000, MiB - 500)
    head = bytearray(data)
    head[MiB - 500 : MiB + 500] = b"X" * 1000

    for offset, length in [(0, None), (MiB - 600, 1200), (3 * MiB, None), (5, 1)]:
        byte_range = base.ByteRange(offset, length)
        end = None if length is None else offset + length
        assert await read_all(backend, location, byte_range=byte_range) == data[offset:end]

    old = locations.parse("rbd://layered")
    assert isinstance(old, locations.RbdLocation)
    assert backend.driver.owns(old)
    assert await backend.size(old) == len(data)
    assert await read_all(backend, old) == bytes(head)
    middle = base.ByteRange(MiB - 10, 20)
    assert await read_all(backend, old, byte_range=middle) == bytes(head[MiB - 10 : MiB + 10])


async def test_readers_that_stop_early_or_are_cancelled_release_everything(
    admin: PoolAdmin,
) -> None:
    data = payload(16 * MiB, seed=5)
    driver = build(admin, rbd_store_reads_in_flight=4)
    backend = backends.Backend(driver, backend_id="ceph")
    location = await add(backend, "abandoned-read", data)
    async with backend.get(location) as blob:
        async for _chunk in blob:
            break  # librbd still has reads queued into buffers

    started = asyncio.Event()

    async def reader() -> None:
        async with backend.get(location) as cancelled_blob:
            async for _chunk in cancelled_blob:
                started.set()
                await asyncio.sleep(3600)

    task = asyncio.create_task(reader())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (
        await read_all(backend, location, byte_range=base.ByteRange(15 * MiB)) == data[15 * MiB :]
    )
    await backend.delete(location)
    await driver.aclose()  # returns: no call is still holding the connection
    assert "abandoned-read" not in await admin.run(admin.contents)


# --------------------------------------------------------------------------- the connection


async def test_one_connection_serves_every_operation(
    admin: PoolAdmin, backend: backends.Backend
) -> None:
    driver = driver_of(backend)
    await driver.check()
    data = payload(MiB + 3)
    location = await add(backend, "reused", data)
    await backend.add("reused-unsized", stream(data), size=None)
    assert await backend.size(location) == len(data)
    assert await backend.locate("reused") == location
    reads = [
        read_all(backend, location, byte_range=base.ByteRange(n * 1000, 100)) for n in range(8)
    ]
    assert await asyncio.gather(*reads) == [data[n * 1000 : n * 1000 + 100] for n in range(8)]
    await backend.delete(location)
    assert driver.cluster.connections_opened == 1


async def test_a_blocklisted_connection_is_replaced(
    admin: PoolAdmin, backend: backends.Backend
) -> None:
    driver = driver_of(backend)
    location = await add(backend, "survivor", b"still here")
    address = driver.cluster.client_address()
    assert address is not None
    await admin.run(admin.blocklist, address)
    try:
        # check() makes a round trip to an OSD, sees ESHUTDOWN, and reconnects once
        await harness.eventually(lambda: _checked_after_reconnect(driver), within=30)
        assert await read_all(backend, location) == b"still here"
        assert driver.cluster.connections_opened == 2
    finally:
        await admin.run(admin.unblocklist, address)


async def _checked_after_reconnect(driver: RbdDriver) -> bool:
    await driver.check()
    return driver.cluster.connections_opened == 2


async def test_missing_pool_is_a_configuration_error(admin: PoolAdmin) -> None:
    async with opened(admin, rbd_store_pool="no-such-pool") as backend:
        with pytest.raises(errors.ConfigurationError, match="no-such-pool"):
            await backend.driver.check()


async def test_missing_conf_file_is_a_configuration_error(admin: PoolAdmin, tmp_path: Path) -> None:
    async with opened(admin, rbd_store_ceph_conf=str(tmp_path / "nope.conf")) as backend:
        with pytest.raises(errors.ConfigurationError, match=r"nope\.conf"):
            await backend.driver.check()


async def test_unknown_user_is_a_configuration_error(admin: PoolAdmin) -> None:
    async with opened(admin, rbd_store_user="client.nobody") as backend:
        with pytest.raises(errors.ConfigurationError, match=r"client\.nobody"):
            await backend.driver.check()


async def test_no_monitor_is_unavailable_within_rados_connect_timeout(
    admin: PoolAdmin, tmp_path: Path
) -> None:
    conf = tmp_path / "ceph.conf"
    conf.write_text("[global]\nmon host = 127.0.0.1:1\nauth client required = none\n")
    async with opened(admin, rbd_store_ceph_conf=str(conf), rados_connect_timeout=1) as backend:
        with pytest.raises(errors.RemoteUnavailable):
            await backend.driver.check()


async def test_owns_checks_the_pool_then_the_fsid(admin: PoolAdmin) -> None:
    driver = build(admin)
    try:
        other_cluster = locations.RbdLocation(
            fsid="00000000-0000-0000-0000-000000000000",
            pool=admin.pool,
            image="x",
            snapshot="snap",
        )
        ours = locations.RbdLocation(fsid=admin.fsid, pool=admin.pool, image="x", snapshot="snap")
        other_pool = locations.RbdLocation(fsid=admin.fsid, pool="other", image="x", snapshot="s")
        assert driver.owns(other_cluster)  # the fsid is not known before the first connection
        assert not driver.owns(other_pool)
        assert not driver.owns(locations.parse("file:///x"))
        with pytest.raises(errors.InvalidLocation, match="00000000"):
            await driver.size(other_cluster)  # but nothing is read from the wrong cluster
        assert not driver.owns(other_cluster)
        assert driver.owns(ours)
        assert driver.owns(locations.RbdLocation(image="x"))
    finally:
        await driver.aclose()


# --------------------------------------------------------------------------- least privilege


async def test_the_restricted_cephx_user_does_everything(admin: PoolAdmin) -> None:
    user = require_env("CEPH_RESTRICTED_USER")
    keyring = require_env("CEPH_RESTRICTED_KEYRING")
    settings = {"rbd_store_user": user, "rbd_store_keyring": keyring}
    async with opened(admin, rbd_thin_provisioning=True, **settings) as backend:
        await backend.driver.check()
        data = payload(2 * MiB + 1) + bytes(MiB)
        result = await backend.add("least", stream(data), size=None)
        assert isinstance(result.location, locations.RbdLocation)
        assert await backend.locate("least") == result.location
        window = base.ByteRange(MiB, 10)
        assert await read_all(backend, result.location, byte_range=window) == data[MiB : MiB + 10]
        await admin.run(admin.clone, "least", "snap", "least-child")
        with pytest.raises(errors.InUse):
            await backend.delete(result.location)
        await admin.run(admin.remove, "least-child")
        await admin.run(admin.snapshot, "least", "user")
        await backend.delete(result.location)  # unprotect, remove snap, trash move
        assert "trash:least" in await admin.run(admin.contents)


async def test_the_restricted_user_cannot_write_to_other_pools(admin: PoolAdmin) -> None:
    user = require_env("CEPH_RESTRICTED_USER")
    keyring = require_env("CEPH_RESTRICTED_KEYRING")
    other = next((p for p in await admin.run(admin.cluster.list_pools) if p != admin.pool), None)
    if other is None:
        pytest.skip("the cluster has a single pool")
    async with opened(
        admin, rbd_store_pool=other, rbd_store_user=user, rbd_store_keyring=keyring
    ) as backend:
        with pytest.raises(errors.WriteDenied):
            await backend.add("denied", stream(b"abc"), size=3)


# --------------------------------------------------------------------------- crashes

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from kglance.drivers import backends, registry

    async def main(conf, pool, image_id):
        driver = registry.Registry().build(
            "rbd", {"rbd_store_ceph_conf": conf, "rbd_store_pool": pool,
                    "rbd_store_chunk_size": 1}, backend_id="ceph")
        backend = backends.Backend(driver, backend_id="ceph")

        async def endless():
            yield b"x" * (1024 * 1024)
            print("writing", flush=True)
            await asyncio.sleep(3600)
            yield b""

        await backend.add(image_id, endless(), size=None)

    asyncio.run(main(*sys.argv[1:]))
    """
)


async def test_a_killed_writer_leaves_a_recorded_image_that_the_sweep_removes(
    admin: PoolAdmin,
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WRITER,
        admin.conf,
        admin.pool,
        "crashed",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert line == b"writing\n"
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
        await process.wait()

    image_id = (await admin.run(uploads.entries, admin.ioctx)).get("crashed")
    assert image_id is not None
    assert await admin.run(admin.snapshots, "crashed") == {}
    watchers = await admin.run(removal.watchers, admin.ioctx, "crashed")
    assert len(watchers) == 1  # the dead writer's watch, until it times out
    # what an operator does after a crash: evict the dead client, which drops its watch
    dead = str(watchers[0]["addr"])
    await admin.run(admin.blocklist, dead)
    try:
        await harness.eventually(lambda: admin.run(_unwatched, admin, "crashed"), within=30)
        removed = await admin.run(
            removal.sweep, admin.ioctx, snapshot="snap", min_age=datetime.timedelta(0)
        )
    finally:
        await admin.run(admin.unblocklist, dead)
    assert removed == ["crashed"]
    assert "crashed" not in await admin.run(admin.contents)
    assert "crashed" not in await admin.run(uploads.entries, admin.ioctx)


def _unwatched(admin: PoolAdmin, name: str) -> bool:
    return not removal.watchers(admin.ioctx, name)


async def test_the_sweep_leaves_live_complete_and_foreign_images(admin: PoolAdmin) -> None:
    await admin.run(admin.create, "foreign", b"not ours")
    await admin.run(admin.create, "complete", b"done")
    await admin.run(admin.snapshot, "complete", "snap", protect=True)
    await admin.run(admin.create, "live", b"being written")
    for name in ("complete", "live"):
        await admin.run(uploads.register, admin.ioctx, name, await admin.run(admin.image_id, name))
    writer = await admin.run(rbd.Image, admin.ioctx, "live")  # a watch, as a live writer has
    try:
        removed = await admin.run(
            removal.sweep, admin.ioctx, snapshot="snap", min_age=datetime.timedelta(0)
        )
        assert removed == []
        assert {"foreign", "complete", "live"} <= set(await admin.run(admin.images))
        entries = await admin.run(uploads.entries, admin.ioctx)
        assert "live" in entries
        assert "complete" not in entries  # a finished upload's stale record is dropped
    finally:
        await admin.run(writer.close)
        await admin.run(uploads.unregister, admin.ioctx, "live")


async def test_a_new_add_reclaims_the_name_from_a_dead_upload(
    admin: PoolAdmin, backend: backends.Backend
) -> None:
    await admin.run(admin.create, "reclaimed", b"partial")
    await admin.run(
        uploads.register, admin.ioctx, "reclaimed", await admin.run(admin.image_id, "reclaimed")
    )
    await admin.run(admin.create, "foreign-name", b"not ours")
    driver_of(backend).abandoned_after = datetime.timedelta(0)
    data = payload(5000)
    location = await add(backend, "reclaimed", data)
    assert await read_all(backend, location) == data
    with pytest.raises(errors.AlreadyExists):  # never reclaims what it did not record
        await add(backend, "foreign-name", data)
    assert await admin.run(admin.read, "foreign-name") == b"not ours"


# --------------------------------------------------------------------------- the sidecar


@pytest.fixture
def rbd_sidecar(admin: PoolAdmin, tmp_path: Path) -> Iterator[harness.Sidecar]:
    user = os.environ.get("CEPH_RESTRICTED_USER")
    keyring = os.environ.get("CEPH_RESTRICTED_KEYRING")
    credentials = (
        f"rbd_store_user = {user}\nrbd_store_keyring = {keyring}\n" if user and keyring else ""
    )
    text = textwrap.dedent(
        f"""\
        [DEFAULT]
        enabled_backends = ceph:rbd
        [glance_store]
        default_backend = ceph
        [ceph]
        store_description = "Ceph RBD"
        rbd_store_pool = {admin.pool}
        rbd_store_ceph_conf = {admin.conf}
        rbd_store_chunk_size = 4
        rbd_thin_provisioning = true
        rados_connect_timeout = 30
        """
    )
    config = harness.write_config(tmp_path / "glance-api.conf", text + credentials)
    with harness.running(harness.Sidecar(tmp_path, config=config)) as sidecar:
        yield sidecar


async def test_through_the_sidecar_with_glance_option_names(
    admin: PoolAdmin, rbd_sidecar: harness.Sidecar
) -> None:
    data = harness.payload(3 * MiB + 77)
    async with harness.session(rbd_sidecar.socket) as client:
        async with client.put("/v1/images/via-sidecar", data=harness.chunks(data)) as resp:
            assert resp.status == 201, await resp.text()
            body = await resp.json()
        assert body["location"] == f"rbd://{admin.fsid}/{admin.pool}/via-sidecar/snap"
        assert body["size"] == len(data)
        headers = {"Range": f"bytes={MiB}-{MiB + 99}"}
        async with client.get("/v1/images/via-sidecar", headers=headers) as resp:
            assert resp.status == 206
            assert await resp.read() == data[MiB : MiB + 100]
        await admin.run(admin.clone, "via-sidecar", "snap", "sidecar-child")
        async with client.delete("/v1/images/via-sidecar") as resp:
            assert resp.status == 409
            assert harness.error_code(await resp.read()) == "in_use"
        await admin.run(admin.remove, "sidecar-child")
        async with client.delete("/v1/images/via-sidecar") as resp:
            assert resp.status == 204
        async with client.get("/v1/images/via-sidecar") as resp:
            assert resp.status == 404
    assert "via-sidecar" not in await admin.run(admin.contents)
