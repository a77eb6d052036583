"""The http store against the real nginx of scripts/servers/nginx-up.sh, as Glance uses it:
registered image URLs read whole and ranged, sizes, the errors Glance catches, the options
of the store's group reaching the driver, and Glance's copy of an http image into a file
store (the iterator ``get`` returns handed to ``add``)."""

from __future__ import annotations

import hashlib
import pathlib
import types
import urllib.parse
import uuid
from typing import Any

import pytest

from tests.conftest import require_env
from tests.glance_store.conftest import ConfFactory, payload

DATA = payload(700_000, seed=5)


@pytest.fixture
def site(tmp_path: pathlib.Path) -> tuple[str, pathlib.Path]:
    base = require_env("HTTP_BASE_URL")
    root = pathlib.Path(require_env("HTTP_ROOT"))
    folder = f"gs-{uuid.uuid4().hex[:12]}"
    (root / folder).mkdir()
    (root / folder / "image").write_bytes(DATA)
    return f"{base}/{folder}", root / folder


@pytest.fixture
def conf(gs: types.ModuleType, make_conf: ConfFactory, tmp_path: pathlib.Path) -> Any:
    conf: Any = make_conf(
        f"""
        [DEFAULT]
        enabled_backends = web:http, disk:file, tls:http, lax:http

        [glance_store]
        default_backend = disk

        [disk]
        filesystem_store_datadir = {tmp_path}/disk

        [lax]
        https_insecure = true
        """
    )
    gs.register_store_opts(conf)
    assert gs.create_multi_stores(conf) == 4
    return conf


def test_read_whole_and_ranged(gs: types.ModuleType, conf: Any, site: tuple[str, Any]) -> None:
    url = f"{site[0]}/image"
    data, size = gs.get(url, "web")
    assert (size, b"".join(data)) == (len(DATA), DATA)
    # difference: glance_store's http store refused offsets (StoreRandomGetNotSupported)
    data, size = gs.get(url, "web", offset=100, chunk_size=1000)
    assert (size, b"".join(data)) == (1000, DATA[100:1100])
    assert gs.get_size_from_uri_and_backend(url, "web") == len(DATA)
    redirected = url.replace("/gs-", "/redirect/gs-")
    assert b"".join(gs.get(redirected, "web")[0]) == DATA


def test_errors_glance_catches(gs: types.ModuleType, conf: Any, site: tuple[str, Any]) -> None:
    base = require_env("HTTP_BASE_URL")
    with pytest.raises(gs.NotFound):
        gs.get(f"{site[0]}/missing", "web")
    with pytest.raises(gs.NotFound):
        gs.get_size_from_uri_and_backend(f"{site[0]}/missing", "web")
    with pytest.raises(gs.MaxRedirectsExceeded, match=r"Maximum redirects \(5\)"):
        gs.get(f"{base}/redirect-loop", "web")
    with pytest.raises(gs.RemoteServiceUnavailable):
        gs.get(f"{base}/status/503", "web")
    with pytest.raises(gs.RemoteServiceUnavailable):
        gs.get("http://127.0.0.1:9/image", "web")  # nothing listens on the discard port
    with pytest.raises(gs.StoreAddDisabled):
        gs.multi_backend.add(conf, str(uuid.uuid4()), iter([b"x"]), 1, "web")
    with pytest.raises(gs.StoreDeleteNotSupported):
        gs.delete(f"{site[0]}/image", "web")


def test_credentials_in_an_old_location(
    gs: types.ModuleType, conf: Any, site: tuple[str, Any]
) -> None:
    user = urllib.parse.quote(require_env("HTTP_AUTH_USER"), safe="")
    password = urllib.parse.quote(require_env("HTTP_AUTH_PASSWORD"), safe="")
    scheme, _, rest = site[0].partition("://")
    host, _, folder = rest.partition("/")
    url = f"{scheme}://{user}:{password}@{host}/private/{folder}/image"
    location = gs.location.get_location_from_uri_and_backend(url, "web")
    assert location.store_location.user == require_env("HTTP_AUTH_USER")
    assert location.get_store_uri() == url
    data, _ = gs.get(url, "web")
    assert b"".join(data) == DATA
    with pytest.raises(gs.BackendException):  # without the credentials: 401
        gs.get(f"{scheme}://{host}/private/{folder}/image", "web")


def test_tls_options_reach_the_driver(
    gs: types.ModuleType, conf: Any, site: tuple[str, Any]
) -> None:
    tls_base = require_env("HTTPS_BASE_URL")
    url = f"{tls_base}/{site[1].name}/image"
    # kglance verifies TLS by default (glance_store's https_insecure defaulted to True)
    with pytest.raises(gs.BackendException):
        gs.get(url, "web")
    assert b"".join(gs.get(url, "lax")[0]) == DATA
    conf.set_override("https_ca_certificates_file", require_env("HTTPS_CA_FILE"), group="tls")
    gs.get_store_from_store_identifier("tls").configure(re_raise_bsc=True)
    assert b"".join(gs.get(url, "tls")[0]) == DATA


def test_copy_from_http_into_a_file_store(
    gs: types.ModuleType, conf: Any, site: tuple[str, Any]
) -> None:
    data, size = gs.get(f"{site[0]}/image", "web")
    url, written, checksum, multihash, metadata = gs.add_with_multihash(
        conf, str(uuid.uuid4()), data, size, None, "sha512"
    )
    assert (written, checksum, metadata) == (
        len(DATA),
        hashlib.md5(DATA).hexdigest(),
        {"store": "disk"},
    )
    assert multihash == hashlib.sha512(DATA).hexdigest()
    assert b"".join(gs.get(url, "disk")[0]) == DATA
