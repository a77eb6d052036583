"""The swift store on kglance's swift driver, against the real Swift of
scripts/servers/swift-up.sh (tempauth, so ``swift_store_auth_version = 1``)."""

from __future__ import annotations

import hashlib
import io
import types
import urllib.parse
import uuid
from typing import Any

import pytest

from tests.conftest import require_env
from tests.glance_store.conftest import ConfFactory, payload

DATA = payload(400_000, seed=9)


@pytest.fixture
def conf(gs: types.ModuleType, make_conf: ConfFactory) -> Any:
    container = f"gs-{uuid.uuid4().hex[:10]}"
    conf: Any = make_conf(
        f"""
        [DEFAULT]
        enabled_backends = objects:swift

        [glance_store]
        default_backend = objects

        [objects]
        store_description = Swift
        swift_store_auth_version = 1
        swift_store_auth_address = {require_env("SWIFT_AUTH_URL")}
        swift_store_user = {require_env("SWIFT_USER")}
        swift_store_key = {require_env("SWIFT_KEY")}
        swift_store_container = {container}
        swift_store_create_container_on_put = true
        swift_store_multiple_containers_seed = 2
        """
    )
    gs.register_store_opts(conf)
    assert gs.create_multi_stores(conf) == 1
    return conf


def test_add_get_size_delete(gs: types.ModuleType, conf: Any) -> None:
    store = gs.get_store_from_store_identifier("objects")
    assert isinstance(store, gs._drivers.swift.store.SingleTenantStore)
    assert store.is_capable(gs.capabilities.BitMasks.RW_ACCESS)
    image_id = str(uuid.uuid4())
    expected = store.create_location(image_id)
    assert expected.container == f"{conf.objects.swift_store_container}_{image_id[:2]}"
    url, size, checksum, multihash, metadata = gs.add_with_multihash(
        conf, image_id, io.BytesIO(DATA), len(DATA), "objects", "sha256"
    )
    assert url == expected.get_uri()
    assert url.startswith(store.url_prefix)
    assert "@" not in url  # kglance writes no credentials into swift locations
    assert (size, checksum, multihash, metadata) == (
        len(DATA),
        hashlib.md5(DATA).hexdigest(),
        hashlib.sha256(DATA).hexdigest(),
        {"store": "objects"},
    )
    data, size = gs.get(url, "objects")
    assert (size, b"".join(data)) == (len(DATA), DATA)
    if store.is_capable(gs.capabilities.BitMasks.READ_RANDOM):
        data, size = gs.get(url, "objects", offset=10, chunk_size=20)
        assert (size, b"".join(data)) == (20, DATA[10:30])
    assert gs.get_size_from_uri_and_backend(url, "objects") == len(DATA)
    with pytest.raises(gs.Duplicate):
        gs.multi_backend.add(conf, image_id, io.BytesIO(b"x"), 1, "objects")
    gs.delete(url, "objects")
    with pytest.raises(gs.NotFound):
        gs.get(url, "objects")
    with pytest.raises(gs.NotFound):
        gs.delete(url, "objects")


@pytest.mark.parametrize("declared", [len(DATA) + 1, len(DATA) - 1])
def test_size_mismatch(gs: types.ModuleType, conf: Any, declared: int) -> None:
    image_id = str(uuid.uuid4())
    with pytest.raises(gs.Invalid):
        gs.multi_backend.add(conf, image_id, io.BytesIO(DATA), declared, "objects")
    location = gs.get_store_from_store_identifier("objects").create_location(image_id)
    with pytest.raises(gs.NotFound):
        gs.get_size_from_uri_and_backend(location.get_uri(), "objects")


def test_an_old_credentialed_location_is_read(gs: types.ModuleType, conf: Any) -> None:
    url = gs.multi_backend.add(conf, str(uuid.uuid4()), io.BytesIO(DATA), 0, "objects")[0]
    user = urllib.parse.quote(require_env("SWIFT_USER"), safe="")
    key = urllib.parse.quote(require_env("SWIFT_KEY"), safe="")
    scheme, _, rest = url.partition("://")
    old = f"{scheme}://{user}:{key}@{rest}"
    location = gs.location.get_location_from_uri_and_backend(old, "objects")
    assert location.store_location.user == require_env("SWIFT_USER")
    assert location.get_store_uri() == old
    data, _ = gs.get(old, "objects")
    assert b"".join(data) == DATA
    gs.delete(url, "objects")


def test_multi_tenant_set_acls(gs: types.ModuleType, make_conf: ConfFactory) -> None:
    """``set_acls`` of a multi-tenant store sets the per-image container's ACL headers."""
    import swiftclient.client

    conn = swiftclient.client.Connection(
        authurl=require_env("SWIFT_AUTH_URL"),
        user=require_env("SWIFT_USER"),
        key=require_env("SWIFT_KEY"),
        auth_version="1",
    )
    storage_url, _ = conn.get_auth()
    prefix = f"gsmt-{uuid.uuid4().hex[:8]}"
    conf: Any = make_conf(
        f"""
        [DEFAULT]
        enabled_backends = tenants:swift

        [glance_store]
        default_backend = tenants

        [tenants]
        swift_store_auth_version = 1
        swift_store_auth_address = {require_env("SWIFT_AUTH_URL")}
        swift_store_user = {require_env("SWIFT_USER")}
        swift_store_key = {require_env("SWIFT_KEY")}
        swift_store_multi_tenant = true
        swift_store_container = {prefix}
        swift_store_endpoint = {storage_url}
        swift_store_admin_tenants = adm
        """
    )
    gs.register_store_opts(conf)
    gs.create_multi_stores(conf)
    store = gs.get_store_from_store_identifier("tenants")
    assert isinstance(store, gs._drivers.swift.store.MultiTenantStore)
    image_id = str(uuid.uuid4())
    url = gs.multi_backend.add(conf, image_id, io.BytesIO(DATA), len(DATA), "tenants")[0]
    container = f"{prefix}_{image_id}"
    try:
        readers, writers = ["t1", "t2"], ["w1"]
        gs.set_acls_for_multi_store(url, "tenants", read_tenants=readers, write_tenants=writers)
        head = conn.head_container(container)
        assert head["x-container-read"] == "t1:*,t2:*"
        assert head["x-container-write"] == "w1:*,adm:*"
        assert readers == ["t1", "t2"] and writers == ["w1"]  # never mutated
        location = gs.location.get_location_from_uri_and_backend(url, "tenants")
        store.set_acls(location, public=True)
        assert conn.head_container(container)["x-container-read"] == "*:*"
    finally:
        gs.delete(url, "tenants")
    location = gs.location.get_location_from_uri_and_backend(url, "tenants")
    with pytest.raises(gs.NotFound):
        store.set_acls(location, public=True)
    conn.close()
