"""The s3 and rbd stores through ``import glance_store``, against the real radosgw and RADOS
of scripts/servers/ceph-up.sh, configured with an oslo.config file as Glance configures them.

Each store goes through what Glance does with an image: add (both tuple shapes), whole and
ranged get, size, duplicate refusal, size mismatch, delete, and the exceptions for a missing
image. The store-specific location attributes Glance reads are checked on the way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import types
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import require_env
from tests.glance_store.conftest import ConfFactory, payload

DATA = payload(300_000, seed=5)


@dataclasses.dataclass(frozen=True)
class StoreCase:
    section: str  # the backend's INI lines (after the section header)
    check_location: Callable[[Any, str], None]  # (store_location, image_id) -> asserts


def _s3_section(bucket: str) -> str:
    return f"""
        s3_store_host = {require_env("S3_ENDPOINT")}
        s3_store_access_key = {require_env("S3_ACCESS_KEY")}
        s3_store_secret_key = {require_env("S3_SECRET_KEY")}
        s3_store_region_name = {require_env("S3_REGION")}
        s3_store_bucket = {bucket}
        s3_store_create_bucket_on_put = true
        s3_store_large_object_size = 5
        s3_store_large_object_chunk_size = 5
        """


def _rbd_section() -> str:
    return f"""
        rbd_store_ceph_conf = {require_env("CEPH_CONF")}
        rbd_store_pool = {require_env("RBD_POOL")}
        rbd_store_chunk_size = 1
        """


@pytest.fixture
def bucket() -> Iterator[str]:
    from tests.drivers import s3_helpers

    name = f"gs-{uuid.uuid4().hex[:12]}"
    yield name
    s3_helpers.remove_bucket_now(s3_helpers.admin_client(), name)


def _s3_case(bucket: str) -> StoreCase:
    def check(store_location: Any, image_id: str) -> None:
        assert store_location.bucket == bucket
        assert store_location.key == image_id
        assert store_location.accesskey is None  # no credentials in new locations

    return StoreCase(_s3_section(bucket), check)


def _rbd_case() -> StoreCase:
    def check(store_location: Any, image_id: str) -> None:
        assert store_location.pool == require_env("RBD_POOL")
        assert store_location.image == image_id
        assert store_location.snapshot == "snap"
        assert store_location.fsid

    return StoreCase(_rbd_section(), check)


@pytest.fixture(params=["s3", "rbd"])
def store_type(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def case(store_type: str, request: pytest.FixtureRequest) -> StoreCase:
    if store_type == "s3":
        return _s3_case(request.getfixturevalue("bucket"))
    return _rbd_case()


@pytest.fixture
def conf(gs: types.ModuleType, make_conf: ConfFactory, store_type: str, case: StoreCase) -> Any:
    conf: Any = make_conf(
        f"""
        [DEFAULT]
        enabled_backends = objects:{store_type}

        [glance_store]
        default_backend = objects

        [objects]
        store_description = {store_type} on the test Ceph
        weight = 7
        {case.section}
        """
    )
    gs.register_store_opts(conf)
    assert gs.create_multi_stores(conf) >= 1
    return conf


def test_add_get_size_delete(gs: types.ModuleType, conf: Any, case: StoreCase) -> None:
    store = gs.get_store_from_store_identifier("objects")
    assert store.is_capable(gs.capabilities.BitMasks.RW_ACCESS)
    assert gs.multi_backend.get_store_weight("objects") == 7
    image_id = str(uuid.uuid4())
    url, size, checksum, multihash, metadata = gs.add_with_multihash(
        conf, image_id, io.BytesIO(DATA), len(DATA), "objects", "sha512"
    )
    assert (size, checksum, multihash, metadata) == (
        len(DATA),
        hashlib.md5(DATA).hexdigest(),
        hashlib.sha512(DATA).hexdigest(),
        {"store": "objects"},
    )
    location = gs.location.get_location_from_uri_and_backend(url, "objects")
    case.check_location(location.store_location, image_id)
    assert location.get_store_uri() == url

    data, size = gs.get(url, "objects")
    assert (size, b"".join(data)) == (len(DATA), DATA)
    data, size = gs.get(url, "objects", offset=1000, chunk_size=5000)
    assert (size, b"".join(data)) == (5000, DATA[1000:6000])
    assert gs.get_size_from_uri_and_backend(url, "objects") == len(DATA)

    with pytest.raises(gs.Duplicate):
        gs.multi_backend.add(conf, image_id, io.BytesIO(b"other"), 5, "objects")
    data, _ = gs.get(url, "objects")
    assert b"".join(data) == DATA  # the refused duplicate harmed nothing

    gs.delete(url, "objects")
    with pytest.raises(gs.NotFound):
        gs.get(url, "objects")
    with pytest.raises(gs.NotFound):
        gs.get_size_from_uri_and_backend(url, "objects")
    with pytest.raises(gs.NotFound):
        gs.delete(url, "objects")


def test_legacy_add_returns_four_values(gs: types.ModuleType, conf: Any) -> None:
    image_id = str(uuid.uuid4())
    url, size, checksum, metadata = gs.multi_backend.add(
        conf, image_id, io.BytesIO(DATA), 0, "objects"
    )
    assert (size, checksum) == (len(DATA), hashlib.md5(DATA).hexdigest())
    assert metadata == {"store": "objects"}
    assert gs.get_size_from_uri_and_backend(url, "objects") == len(DATA)
    gs.delete(url, "objects")


@pytest.mark.parametrize("declared", [len(DATA) + 1, len(DATA) - 1])
def test_size_mismatch_leaves_nothing(gs: types.ModuleType, conf: Any, declared: int) -> None:
    image_id = str(uuid.uuid4())
    with pytest.raises(gs.Invalid):
        gs.multi_backend.add(conf, image_id, io.BytesIO(DATA), declared, "objects")
    # nothing half-written holds the id: the same image adds cleanly afterwards
    url = gs.multi_backend.add(conf, image_id, io.BytesIO(DATA), len(DATA), "objects")[0]
    assert gs.get_size_from_uri_and_backend(url, "objects") == len(DATA)
    gs.delete(url, "objects")


def test_unknown_hash_algorithm(gs: types.ModuleType, conf: Any) -> None:
    with pytest.raises(gs.UnknownHashingAlgo):
        gs.add_with_multihash(
            conf, str(uuid.uuid4()), io.BytesIO(DATA), len(DATA), "objects", "nosuch"
        )
