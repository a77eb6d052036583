"""Location parsing and formatting for every scheme, with glance_store's attribute names.

Parsing is pure: none of these needs a storage SDK or a server. The cases are glance_store
5.7.0's observed parses; where kglance deliberately differs the test says so.
"""

from __future__ import annotations

import pathlib
import types
from typing import Any

import pytest

from tests.glance_store.conftest import ConfFactory

UUID = "0c0d1a9f-2b8e-4c1e-9a5e-000000000001"


def parse(gs: types.ModuleType, module: str, uri: str, conf: Any = None) -> Any:
    cls = {
        "filesystem": gs._drivers.filesystem.StoreLocation,
        "http": gs._drivers.http.StoreLocation,
        "swift": gs._drivers.swift.store.StoreLocation,
        "s3": gs._drivers.s3.StoreLocation,
        "rbd": gs._drivers.rbd.StoreLocation,
        "cinder": gs._drivers.cinder.store.StoreLocation,
    }[module]
    location = cls({}, conf)
    location.parse_uri(uri)
    return location


def attrs(location: Any, *names: str) -> tuple[Any, ...]:
    return tuple(getattr(location, name) for name in names)


@pytest.mark.parametrize(
    ("uri", "path", "written"),
    [
        ("file:///var/lib/glance/images/1", "/var/lib/glance/images/1", None),
        (
            "filesystem:///var/lib/glance/images/1",
            "/var/lib/glance/images/1",
            "file:///var/lib/glance/images/1",
        ),
        ("file://relative/path", "relative/path", None),
    ],
)
def test_file(gs: types.ModuleType, uri: str, path: str, written: str | None) -> None:
    location = parse(gs, "filesystem", uri)
    assert location.path == path
    assert location.get_uri() == (written or uri)


@pytest.mark.parametrize("uri", ["file://", "fil://x", "http://x/y"])
def test_file_malformed(gs: types.ModuleType, uri: str) -> None:
    with pytest.raises(gs.BadStoreUri):
        parse(gs, "filesystem", uri)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "https://user:password@example.com:8080/images/container/1",
            ("https", "user", "password", "example.com:8080", "/images/container/1", ""),
        ),
        (
            "https://user:@example.com:8080/images/1",
            ("https", "user", "", "example.com:8080", "/images/1", ""),
        ),
        (
            "http://[2001:db8::1]:8080/img?x=1&y=2",
            ("http", None, None, "[2001:db8::1]:8080", "/img", "x=1&y=2"),
        ),
        ("http://example.com/123456", ("http", None, None, "example.com", "/123456", "")),
    ],
)
def test_http(gs: types.ModuleType, uri: str, expected: tuple[Any, ...]) -> None:
    location = parse(gs, "http", uri)
    assert attrs(location, "scheme", "user", "password", "netloc", "path", "query") == expected
    assert location.get_uri() == uri  # old credentialed locations keep working


@pytest.mark.parametrize(
    "uri",
    ["http://user@example.com:8080/images/1", "http://example.com:abc/images/1", "http://"],
)
def test_http_malformed(gs: types.ModuleType, uri: str) -> None:
    with pytest.raises(gs.BadStoreUri):
        parse(gs, "http", uri)


SWIFT_FIELDS = ("user", "key", "auth_or_store_url", "container", "obj")


@pytest.mark.parametrize(
    ("uri", "expected", "swift_url", "written"),
    [
        (
            "swift://example.com/images/1",
            (None, None, "example.com", "images", "1"),
            "https://example.com",
            None,
        ),
        (
            "swift+https://user:pass@authurl.com/v1/container/12345",
            ("user", "pass", "authurl.com/v1", "container", "12345"),
            "https://authurl.com/v1",
            None,
        ),
        (
            "swift://account:user:pass@authurl.com/container/obj-id",
            ("account:user", "pass", "authurl.com", "container", "obj-id"),
            "https://authurl.com",
            "swift://account%3Auser:pass@authurl.com/container/obj-id",
        ),
        (
            "swift+http://a%3Auser%40example.com:p%40ss@authurl.com/v1/container/12345",
            ("a:user@example.com", "p@ss", "authurl.com/v1", "container", "12345"),
            "http://authurl.com/v1",
            None,
        ),
        (
            "swift+https://example.com/v1/AUTH_tenant/glance_abc/abc",
            (None, None, "example.com/v1/AUTH_tenant", "glance_abc", "abc"),
            "https://example.com/v1/AUTH_tenant",
            None,
        ),
    ],
)
def test_swift(
    gs: types.ModuleType,
    uri: str,
    expected: tuple[Any, ...],
    swift_url: str,
    written: str | None,
) -> None:
    location = parse(gs, "swift", uri)
    assert attrs(location, *SWIFT_FIELDS) == expected
    assert location.swift_url == swift_url
    assert location.get_uri() == (written or uri)
    without = location.get_uri(credentials_included=False)
    assert "@" not in without
    assert without.endswith(f"/{expected[3]}/{expected[4]}")


@pytest.mark.parametrize(
    "uri",
    [
        "swift://user@example.com:8080/images/1",
        "swift://user:pass@http://example.com:8080/images/1",
        "swift://user:key@uri/cont",
        "swift:///",
    ],
)
def test_swift_malformed(gs: types.ModuleType, uri: str) -> None:
    with pytest.raises(gs.BadStoreUri):
        parse(gs, "swift", uri)


ACCOUNTS = """\
[ref1]
user = tenant:user1
key = key1
auth_address = https://example.com

[ref2]
user = "user2"
key = key2
auth_address = http://example.com

[ref3]
auth_address = https://example.com
"""


def test_swift_config_references_resolve_from_the_accounts_file(
    gs: types.ModuleType, tmp_path: pathlib.Path, make_conf: ConfFactory
) -> None:
    accounts = tmp_path / "swift-accounts.conf"
    accounts.write_text(ACCOUNTS)
    conf: Any = make_conf(f"[glance_store]\nswift_store_config_file = {accounts}\n")
    gs.register_opts(conf)
    ref1 = parse(gs, "swift", "swift+config://ref1/glance/img-1", conf)
    assert attrs(ref1, *SWIFT_FIELDS) == ("tenant:user1", "key1", "example.com", "glance", "img-1")
    assert ref1.swift_url == "https://example.com"
    # kglance keeps the reference instead of expanding the credentials into the URI
    assert ref1.get_uri() == "swift+config://ref1/glance/img-1"
    ref2 = parse(gs, "swift", "swift+config://ref2/glance/img-2", conf)
    assert (ref2.user, ref2.swift_url) == ("user2", "http://example.com")
    assert ref2.get_uri(credentials_included=False) == "swift+config://ref2/glance/img-2"
    for unusable in ("swift+config://nosuchref/glance/x", "swift+config://ref3/glance/x"):
        with pytest.raises(gs.BadStoreUri, match="Credentials not found"):
            parse(gs, "swift", unusable, conf)


S3_FIELDS = ("scheme", "accesskey", "secretkey", "s3serviceurl", "bucket", "key")


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "s3://accesskey:secretkey@s3.amazonaws.com/bucket/key-id",
            ("s3", "accesskey", "secretkey", "s3.amazonaws.com", "bucket", "key-id"),
        ),
        (
            "s3+https://accesskey:pass@s3serviceurl.com/v1/bucket/12345",
            ("s3+https", "accesskey", "pass", "s3serviceurl.com/v1", "bucket", "12345"),
        ),
        (
            "s3://accesskey:pass/withslash@s3serviceurl.com/v1/bucket/12345",
            ("s3", "accesskey", "pass/withslash", "s3serviceurl.com/v1", "bucket", "12345"),
        ),
        ("s3://example.com/images/1", ("s3", None, None, "example.com", "images", "1")),
        # difference: glance_store cut the secret at its first ':' ("se")
        (
            "s3://accesskey:se:cret@host/bucket/key",
            ("s3", "accesskey", "se:cret", "host", "bucket", "key"),
        ),
    ],
)
def test_s3(gs: types.ModuleType, uri: str, expected: tuple[Any, ...]) -> None:
    location = parse(gs, "s3", uri)
    assert attrs(location, *S3_FIELDS) == expected
    # 5.7.0: locations are written without credentials
    assert location.get_uri() == f"{expected[0]}://{expected[3]}/{expected[4]}/{expected[5]}"


@pytest.mark.parametrize(
    "uri",
    [
        "s3://accesskey@example.com:8080/images/1",
        "s3://user:pass@http://example.com/images/1",
        "s3://bucket/key",
        "s3://",
    ],
)
def test_s3_malformed(gs: types.ModuleType, uri: str) -> None:
    with pytest.raises(gs.BadStoreUri):
        parse(gs, "s3", uri)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("rbd://imagename", (None, None, "imagename", None)),
        (f"rbd://fsid-1234/images/{UUID}/snap", ("fsid-1234", "images", UUID, "snap")),
        ("rbd://fs%2Fid/po%2Fol/im%2Fage/sn%2Fap", ("fs/id", "po/ol", "im/age", "sn/ap")),
    ],
)
def test_rbd(gs: types.ModuleType, uri: str, expected: tuple[Any, ...]) -> None:
    location = parse(gs, "rbd", uri)
    assert attrs(location, "fsid", "pool", "image", "snapshot") == expected
    assert location.get_uri() == uri


@pytest.mark.parametrize("uri", ["rbd://a/b/c", "rbd://a//c/d", "rbd://"])
def test_rbd_malformed(gs: types.ModuleType, uri: str) -> None:
    with pytest.raises(gs.BadStoreUri):
        parse(gs, "rbd", uri)


def test_cinder(gs: types.ModuleType) -> None:
    plain = parse(gs, "cinder", f"cinder://{UUID}")
    assert plain.volume_id == UUID
    assert plain.get_uri() == f"cinder://{UUID}"
    named = parse(gs, "cinder", f"cinder://fast-ssd/{UUID}")
    assert named.volume_id == UUID
    assert named.get_uri() == f"cinder://{UUID}"  # no backend given: the short form
    # difference: glance_store refused upper case and accepted extra segments
    assert parse(gs, "cinder", f"cinder://{UUID.upper()}").volume_id == UUID
    for bad in ("cinder://not-a-uuid", f"cinder://a/b/c/{UUID}"):
        with pytest.raises(gs.BadStoreUri):
            parse(gs, "cinder", bad)
    in_backend = gs._drivers.cinder.store.StoreLocation({}, None, backend_group="fast-ssd")
    in_backend.parse_uri(f"cinder://{UUID}")
    assert in_backend.get_uri() == f"cinder://fast-ssd/{UUID}"


def test_location_built_from_store_specs(gs: types.ModuleType) -> None:
    cases = [
        (gs._drivers.filesystem.StoreLocation, {"path": "/x/y"}, "file:///x/y"),
        (
            gs._drivers.http.StoreLocation,
            {"scheme": "https", "netloc": "h:1", "path": "/p", "query": "a=b"},
            "https://h:1/p?a=b",
        ),
        (
            gs._drivers.swift.store.StoreLocation,
            {
                "scheme": "swift+https",
                "auth_or_store_url": "a.com/v1",
                "container": "c",
                "obj": "o",
            },
            "swift+https://a.com/v1/c/o",
        ),
        (
            gs._drivers.s3.StoreLocation,
            {"s3serviceurl": "https://s3.example.com/", "bucket": "b", "key": "k"},
            "s3+https://s3.example.com/b/k",
        ),
        (
            gs._drivers.rbd.StoreLocation,
            {"fsid": "f", "pool": "p", "image": "i", "snapshot": "s"},
            "rbd://f/p/i/s",
        ),
        (gs._drivers.cinder.store.StoreLocation, {"volume_id": UUID}, f"cinder://{UUID}"),
    ]
    for cls, specs, uri in cases:
        location = gs.location.Location("x", cls, None, image_id="img", store_specs=specs)
        assert location.get_store_uri() == uri
        assert location.get_uri() is None
        assert (location.store_name, location.image_id) == ("x", "img")


def test_scheme_tables(gs: types.ModuleType) -> None:
    file_class = gs._drivers.filesystem.StoreLocation
    with pytest.raises(gs.UnknownScheme, match="Unknown scheme 'file' found in URI"):
        gs.location.get_location_from_uri("file:///x/1")
    gs.location.register_scheme_map(
        {"file": {"store": None, "location_class": file_class, "store_entry": "file"}}
    )
    location = gs.location.get_location_from_uri("file:///x/1")
    assert (location.store_name, location.store_location.path) == ("file", "/x/1")
    assert "file" in gs.location.SCHEME_TO_CLS_MAP
    gs.location.register_scheme_backend_map(
        {"file": {"one": {"store": None, "location_class": file_class, "store_entry": "file"}}}
    )
    in_one = gs.location.get_location_from_uri_and_backend("file:///x/1", "one")
    assert in_one.backend_group == "one"
    with pytest.raises(gs.UnknownScheme, match="Unknown scheme 'two' found in URI"):
        gs.location.get_location_from_uri_and_backend("file:///x/1", "two")
    gs.reset()
    assert not gs.location.SCHEME_TO_CLS_MAP
    assert not gs.location.SCHEME_TO_CLS_BACKEND_MAP


@pytest.mark.parametrize(
    ("seed", "container"),
    [
        (0, "glance"),
        (1, "glance_f"),
        (3, "glance_fda"),
        (10, "glance_fdae39a1-ba"),
        (32, "glance_fdae39a1-bac5-4238-aba4-69bcc726e848"),
    ],
)
def test_swift_container_name_follows_the_multiple_containers_seed(
    gs: types.ModuleType, make_conf: ConfFactory, seed: int, container: str
) -> None:
    conf: Any = make_conf(
        f"[glance_store]\nswift_store_multiple_containers_seed = {seed}\n"
        "swift_store_auth_address = https://auth.example.com/v3\n"
        "swift_store_user = tenant:user\nswift_store_key = secret\n"
    )
    gs.register_opts(conf)
    store = gs._drivers.swift.store.Store(conf)
    assert isinstance(store, gs._drivers.swift.store.SingleTenantStore)
    image_id = "FDAE39A1-BAC5-4238-ABA4-69BCC726E848"
    assert store.get_container_name(image_id, "glance") == container
    created = store.create_location(image_id)
    assert created.container == container
    assert created.get_uri() == (
        f"swift+https://auth.example.com/v3/{container}/{image_id}"
    )  # never the configured credentials


def test_swift_store_factory_and_accounts_file(
    gs: types.ModuleType, tmp_path: pathlib.Path, make_conf: ConfFactory
) -> None:
    accounts = tmp_path / "accounts.conf"
    accounts.write_text(ACCOUNTS)
    conf: Any = make_conf(f"[glance_store]\nswift_store_config_file = {accounts}\n")
    gs.register_opts(conf)
    store = gs._drivers.swift.store.Store(conf)
    assert store.create_location("img").get_uri() == "swift+config://ref1/glance/img"
    conf.set_override("swift_store_multi_tenant", True, group="glance_store")
    with pytest.raises(gs.BadStoreConfiguration, match="mutually exclusive"):
        gs._drivers.swift.store.Store(conf)
    conf.set_override("swift_store_config_file", None, group="glance_store")
    conf.set_override("swift_store_endpoint", "https://swift.example.com/v1/AUTH_t", "glance_store")
    multi = gs._drivers.swift.store.Store(conf)
    assert isinstance(multi, gs._drivers.swift.store.MultiTenantStore)
    assert multi.create_location("img").get_uri() == (
        "swift+https://swift.example.com/v1/AUTH_t/glance_img/img"
    )
    with pytest.raises(NotImplementedError):
        multi.get_connection(None)
