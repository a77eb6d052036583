"""The cinder store through ``import glance_store``: the kglance cinder driver with real
os-brick LOCAL attaches, against the wire-level fake Cinder v3 API of tests/fakes/cinder_api
(no Cinder can run here). The compatibility layer is synchronous, so the fake serves from an
event loop in its own thread, as a remote Cinder would."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import io
import tempfile
import threading
import types
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes import cinder_api
from tests.glance_store.conftest import ConfFactory, payload

DATA = payload(200_000, seed=3)


@pytest.fixture
def fake() -> Iterator[cinder_api.FakeCinder]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-cinder", daemon=True)
    thread.start()

    def call(coro: Any) -> Any:
        future: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(coro, loop)
        return future.result(timeout=30)

    with tempfile.TemporaryDirectory(prefix="kglance-gs-cinder-") as root:
        # Cinder's unit is the GiB; the fake's file-backed volumes are sparse
        server = cinder_api.FakeCinder(f"{root}/volumes", unit=1024**3, delay=0.01)
        call(server.start())
        try:
            yield server
        finally:
            call(server.stop())
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()


@pytest.fixture
def conf(gs: types.ModuleType, make_conf: ConfFactory, fake: cinder_api.FakeCinder) -> Any:
    conf: Any = make_conf(
        f"""
        [DEFAULT]
        enabled_backends = volumes:cinder

        [glance_store]
        default_backend = volumes

        [volumes]
        store_description = Cinder volumes
        cinder_store_auth_address = {fake.auth_url}
        cinder_store_user_name = {cinder_api.USER}
        cinder_store_password = {cinder_api.PASSWORD}
        cinder_store_project_name = service
        cinder_state_transition_timeout = 30
        """
    )
    gs.register_store_opts(conf)
    assert gs.create_multi_stores(conf) >= 1
    return conf


def test_add_get_size_delete(gs: types.ModuleType, conf: Any, fake: cinder_api.FakeCinder) -> None:
    image_id = str(uuid.uuid4())
    url, size, checksum, multihash, metadata = gs.add_with_multihash(
        conf, image_id, io.BytesIO(DATA), len(DATA), "volumes", "sha256"
    )
    assert (size, checksum, multihash, metadata) == (
        len(DATA),
        hashlib.md5(DATA).hexdigest(),
        hashlib.sha256(DATA).hexdigest(),
        {"store": "volumes"},
    )
    assert url.startswith("cinder://")
    location = gs.location.get_location_from_uri_and_backend(url, "volumes")
    volume_id = location.store_location.volume_id
    assert volume_id in fake.volumes
    assert fake.volumes[volume_id].status == "available"  # detached after the write

    data, size = gs.get(url, "volumes")
    assert (size, b"".join(data)) == (len(DATA), DATA)
    data, size = gs.get(url, "volumes", offset=100, chunk_size=1000)
    assert (size, b"".join(data)) == (1000, DATA[100:1100])
    assert gs.get_size_from_uri_and_backend(url, "volumes") == len(DATA)

    gs.delete(url, "volumes")
    assert volume_id not in fake.volumes
    with pytest.raises(gs.NotFound):
        gs.get(url, "volumes")
    with pytest.raises(gs.NotFound):
        gs.delete(url, "volumes")
    assert not fake.attachments  # every attach was detached


def test_size_mismatch_deletes_the_volume(
    gs: types.ModuleType, conf: Any, fake: cinder_api.FakeCinder
) -> None:
    with pytest.raises(gs.Invalid):
        gs.multi_backend.add(conf, str(uuid.uuid4()), io.BytesIO(DATA), len(DATA) + 1, "volumes")
    assert not fake.volumes  # the half-written volume was removed
    assert not fake.attachments
