"""The legacy single-store API (``[glance_store] stores`` and ``default_store``)."""

from __future__ import annotations

import hashlib
import io
import pathlib
import types
import uuid
from typing import Any

import pytest

from tests.glance_store.conftest import ConfFactory, payload

DATA = payload(200_000, seed=1)


@pytest.fixture
def conf(gs: types.ModuleType, make_conf: ConfFactory, tmp_path: pathlib.Path) -> Any:
    conf: Any = make_conf(
        f"""
        [glance_store]
        stores = file, http
        default_store = file
        filesystem_store_datadir = {tmp_path}/images
        """
    )
    gs.register_opts(conf)
    assert gs.create_stores(conf) == 2
    return conf


def test_configuration(gs: types.ModuleType, conf: Any) -> None:
    assert set(gs.get_known_schemes()) == {"file", "filesystem", "http", "https"}
    gs.verify_default_store()
    store = gs.get_store_from_scheme("file")
    assert store is gs.get_store_from_scheme("filesystem")
    assert store.url_prefix is None  # set in multi-backend mode only
    assert store.weight == 0
    assert gs.get_store_from_uri("http://example.com/x") is gs.get_store_from_scheme("http")
    with pytest.raises(gs.UnknownScheme, match="Unknown scheme 's3' found in URI"):
        gs.get_store_from_scheme("s3")
    conf.set_override("default_store", "swift", group="glance_store")
    with pytest.raises(RuntimeError, match="Store for scheme swift not found"):
        gs.verify_default_store()


def test_add_get_size_delete(gs: types.ModuleType, conf: Any, tmp_path: pathlib.Path) -> None:
    image_id = str(uuid.uuid4())
    url, size, checksum, metadata = gs.add_to_backend(conf, image_id, io.BytesIO(DATA), len(DATA))
    assert url == f"file://{tmp_path}/images/{image_id}"
    assert (size, checksum, metadata) == (len(DATA), hashlib.md5(DATA).hexdigest(), {})
    five = gs.add_to_backend_with_multihash(
        conf, str(uuid.uuid4()), io.BytesIO(DATA), 0, "sha384", scheme="file"
    )
    assert five[1:] == (
        len(DATA),
        hashlib.md5(DATA).hexdigest(),
        hashlib.sha384(DATA).hexdigest(),
        {},
    )
    assert gs.get_store_from_location(url) == "file"
    data, size = gs.get_from_backend(url)
    assert (size, b"".join(data)) == (len(DATA), DATA)
    data, size = gs.get_from_backend(url, offset=5, chunk_size=10)
    assert (size, b"".join(data)) == (10, DATA[5:15])
    assert gs.get_size_from_backend(url) == len(DATA)
    gs.set_acls(url, public=True)  # no kglance store has ACLs: silently skipped
    gs.delete_from_backend(url)
    with pytest.raises(gs.NotFound):
        gs.get_size_from_backend(url)
    with pytest.raises(gs.UnknownScheme):
        gs.get_from_backend(f"s3://host/bucket/{image_id}")
    with pytest.raises(gs.BadStoreUri):
        gs.get_from_backend("file://")


def test_an_unreadable_image_id_is_invalid(gs: types.ModuleType, conf: Any) -> None:
    with pytest.raises(gs.Invalid, match="invalid image id"):
        gs.add_to_backend(conf, "../escaped", io.BytesIO(b"x"), 1)
