"""Cinder driver behaviour beyond the conformance suite, against the wire-level fake API.

Volume states move on the fake's clock; attaches are real os-brick LOCAL attaches of sparse
files (and RBD connector attaches through librbd when the test Ceph cluster is up). Every
test checks what the fake holds afterwards: volumes, open attachments, backing files.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from kglance.drivers import base, errors, locations, registry
from tests.conformance import suite
from tests.conftest import require_env
from tests.drivers import cinder_helpers
from tests.fakes import cinder_api

MiB = 1024 * 1024


@pytest.fixture
async def fake() -> AsyncIterator[cinder_api.FakeCinder]:
    async with cinder_helpers.fake_cinder(delay=0.05) as server:
        yield server
        assert not server.attachments, "an attachment was left open"


async def test_add_sets_metadata_read_only_and_detaches(fake: cinder_api.FakeCinder) -> None:
    data = suite.payload(MiB + 5)
    async with cinder_helpers.cinder_backend(fake, cinder_volume_type="fast") as backend:
        result = await backend.add("img-1", suite.stream(data), size=len(data))
        assert isinstance(result.location, locations.CinderLocation)
        assert result.location.uri() == f"cinder://cinder-fast/{result.location.volume_id}"
        volume = fake.volumes[result.location.volume_id]
        assert volume.name == "image-img-1"
        assert volume.size == 2  # ceil(1 MiB + 5 bytes / 1 MiB unit)
        assert volume.readonly
        assert volume.volume_type == "fast"
        assert volume.metadata["glance_image_id"] == "img-1"
        assert volume.metadata["image_size"] == str(len(data))
        assert volume.status == "available"
        assert not fake.attachments
        # a read attaches read-only; a rw attach of the read-only volume would be refused
        async with backend.get(result.location, byte_range=base.ByteRange(MiB, 5)) as blob:
            assert [a.mode for a in fake.attachments.values()] == ["ro"]
            assert await blob.read() == data[MiB:]
        assert not fake.attachments


async def test_unknown_size_extends_offline(fake: cinder_api.FakeCinder) -> None:
    data = suite.payload(5 * MiB + 1)
    async with cinder_helpers.cinder_backend(fake) as backend:
        result = await backend.add("grow", suite.stream(data), size=None)
        assert isinstance(result.location, locations.CinderLocation)
        volume = fake.volumes[result.location.volume_id]
        # 1 → 2 → 3 → 4 → 5 → 6 units: +25% of the size, at least one unit
        assert fake.calls["extend"] >= 3
        assert volume.size * MiB >= len(data)
        assert volume.metadata["image_size"] == str(len(data))
        assert fake.calls["attachment_create"] == fake.calls["extend"] + 1
        assert await suite.read_all(backend, result.location) == data


async def test_growth_is_geometric(fake: cinder_api.FakeCinder) -> None:
    data = suite.payload(40 * MiB)
    async with cinder_helpers.cinder_backend(fake) as backend:
        result = await backend.add("big", suite.stream(data), size=None)
        assert isinstance(result.location, locations.CinderLocation)
        # 1 MiB steps would take 39 extends
        assert fake.calls["extend"] < 20
        assert fake.volumes[result.location.volume_id].size * MiB < len(data) * 1.3


async def test_missing_volume_is_not_found(fake: cinder_api.FakeCinder) -> None:
    missing = locations.CinderLocation(volume_id=str(uuid.uuid4()), store="cinder-fast")
    async with cinder_helpers.cinder_backend(fake) as backend:
        with pytest.raises(errors.NotFound):
            await backend.size(missing)
        with pytest.raises(errors.NotFound):
            async with backend.get(missing):
                pass
        await backend.delete(missing)  # idempotent


async def test_create_error_is_backend_error(fake: cinder_api.FakeCinder) -> None:
    async with cinder_helpers.cinder_backend(fake) as backend:
        fake.fail_next("create")
        with pytest.raises(errors.BackendError):
            await backend.add("c1", suite.stream(b"abc"), size=3)
        fake.fail_next("create-quota")
        with pytest.raises(errors.StorageFull):
            await backend.add("c2", suite.stream(b"abc"), size=3)
    assert fake.leftovers() == []


async def test_extend_failure_is_storage_full_and_removes_volume(
    fake: cinder_api.FakeCinder,
) -> None:
    async with cinder_helpers.cinder_backend(fake) as backend:
        fake.fail_next("extend")
        with pytest.raises(errors.StorageFull):
            await backend.add("x", suite.stream(suite.payload(3 * MiB)), size=None)
    assert fake.calls["extend"] == 1
    assert fake.leftovers() == []


async def test_attach_failure_detaches_and_removes_volume(fake: cinder_api.FakeCinder) -> None:
    async with cinder_helpers.cinder_backend(fake) as backend:
        fake.fail_next("attachment_update")
        with pytest.raises(errors.RemoteUnavailable):
            await backend.add("a", suite.stream(b"abc"), size=3)
    assert fake.calls["attachment_create"] == 1
    assert fake.leftovers() == []


async def test_source_failure_after_an_extend_detaches(fake: cinder_api.FakeCinder) -> None:
    async with cinder_helpers.cinder_backend(fake) as backend:
        with pytest.raises(suite.Boom):
            await backend.add(
                "boom", suite.failing_stream(suite.payload(4 * MiB), fail_after=3 * MiB), size=None
            )
    assert fake.calls["extend"] >= 1
    assert fake.leftovers() == []


async def test_transitional_attach_conflict_is_retried(fake: cinder_api.FakeCinder) -> None:
    async with cinder_helpers.cinder_backend(fake) as backend:
        fake.fail_next("attachment_create-busy", times=2)
        result = await backend.add("busy", suite.stream(b"abc"), size=3)
        assert await suite.read_all(backend, result.location) == b"abc"
        fake.fail_next("attachment_create-busy", times=5)
        with pytest.raises(errors.BackendError):
            await suite.read_all(backend, result.location)


async def test_cancelled_read_detaches(fake: cinder_api.FakeCinder) -> None:
    data = suite.payload(3 * MiB)
    async with cinder_helpers.cinder_backend(fake) as backend:
        result = await backend.add("r", suite.stream(data), size=len(data))
        gate = asyncio.Event()

        async def reader() -> None:
            async with backend.get(result.location) as blob:
                async for _ in blob:
                    gate.set()
                    await asyncio.sleep(3600)

        task = asyncio.create_task(reader())
        await gate.wait()
        assert len(fake.attachments) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not fake.attachments


async def test_delete_of_attached_volume_is_in_use(fake: cinder_api.FakeCinder) -> None:
    async with cinder_helpers.cinder_backend(fake) as backend:
        result = await backend.add("held", suite.stream(b"abc"), size=3)
        async with backend.get(result.location) as blob:
            with pytest.raises(errors.InUse):
                await backend.delete(result.location)
            assert await blob.read() == b"abc"
        await backend.delete(result.location)
    assert fake.leftovers() == []


async def test_application_credential(fake: cinder_api.FakeCinder) -> None:
    settings = cinder_helpers.options(
        fake,
        cinder_store_user_name=None,
        cinder_store_password=None,
        cinder_store_application_credential_id=cinder_api.APP_CREDENTIAL_ID,
        cinder_store_application_credential_secret=cinder_api.APP_CREDENTIAL_SECRET,
    )
    driver = registry.Registry().build("cinder", settings, backend_id="cinder-fast")
    try:
        await driver.check()
        assert fake.calls["token"] == 1
    finally:
        await driver.aclose()


async def test_endpoint_template_with_token(fake: cinder_api.FakeCinder) -> None:
    settings = cinder_helpers.options(
        fake,
        cinder_store_auth_address=None,
        cinder_store_user_name=None,
        cinder_store_password=None,
        cinder_endpoint_template=fake.endpoint,
        cinder_store_token=cinder_api.STATIC_TOKEN,
    )
    driver = registry.Registry().build("cinder", settings, backend_id="cinder-fast")
    try:
        stored = await driver.add("tok", suite.stream(b"xyz"), size=3)
        assert await driver.size(stored.location) == 3
        assert fake.calls["token"] == 0
    finally:
        await driver.aclose()


async def test_wrong_password_is_a_configuration_error(fake: cinder_api.FakeCinder) -> None:
    settings = cinder_helpers.options(fake, cinder_store_password="wrong")
    driver = registry.Registry().build("cinder", settings, backend_id="cinder-fast")
    try:
        with pytest.raises(errors.ConfigurationError):
            await driver.check()
    finally:
        await driver.aclose()


def test_options_need_credentials_and_hide_secrets() -> None:
    with pytest.raises(errors.ConfigurationError):
        registry.Registry().build("cinder", {}, backend_id="c")
    options = (
        registry.Registry()
        .driver_class("cinder")
        .Options.model_validate(
            {
                "cinder_store_auth_address": "http://keystone/v3",
                "cinder_store_user_name": "glance",
                "cinder_store_password": "s3cret",
                "cinder_store_project_name": "service",
                "rootwrap_config": "/etc/glance/rootwrap.conf",
                "cinder_mount_point_base": "/mnt",
                "cinder_do_extend_attached": True,
            }
        )
    )
    assert "s3cret" not in repr(options)


async def test_rbd_connector(tmp_path: object) -> None:
    """Volumes in the test Ceph pool, attached by os-brick's RBD connector through librbd."""
    conf = require_env("CEPH_CONF")
    pool = require_env("RBD_POOL")
    keyring = require_env("CEPH_KEYRING")
    from tests.drivers import cinder_rbd

    backing = cinder_rbd.backing(conf=conf, pool=pool, keyring=keyring)
    data = suite.payload(3 * MiB + 17)
    async with (
        cinder_helpers.fake_cinder(backing="rbd", rbd=backing) as server,
        cinder_helpers.cinder_backend(server) as backend,
    ):
        try:
            result = await backend.add("rbd-vol", suite.stream(data), size=None)
            assert isinstance(result.location, locations.CinderLocation)
            assert server.calls["extend"] >= 1
            assert await suite.read_all(backend, result.location) == data
            ranged = base.ByteRange(MiB - 3, 10)
            assert (
                await suite.read_all(backend, result.location, byte_range=ranged)
                == (data[MiB - 3 : MiB + 7])
            )
            await backend.delete(result.location)
            assert server.leftovers() == []
            assert not await asyncio.to_thread(
                backing.run, "exists", f"volume-{result.location.volume_id}", 0
            )
        finally:
            await asyncio.to_thread(cinder_rbd.remove_all, backing, list(server.volumes))
