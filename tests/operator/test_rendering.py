"""A namespace's StoreBackends rendered, then read back by the sidecar's own configuration code.

The rendered files are written to a directory and read with ``kglance.sidecar.config`` exactly
as a sidecar reads its mounted Secret: a file backend is built and stores an image; the S3 and
RBD backends are built against the real radosgw and RADOS when those run; every other type is
parsed and validated by its driver's ``Options`` model.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from kglance.drivers import registry
from kglance.operator import names, rendering
from kglance.sidecar import config, ini
from tests.conftest import require_env

CREATED_OLD = "2026-01-01T00:00:00Z"
CREATED_NEW = "2026-02-01T00:00:00Z"
SECRETS: Mapping[str, Mapping[str, bytes]] = {
    "s3-creds": {"accessKey": b"AKIDEXAMPLE", "secretKey": b"wJalr/K7MDENG+bPxRfiCY\n"},
    "swift-creds": {"user": b"test:tester", "key": b"testing"},
    "ceph-creds": {"keyring": b"AQBfake==", "ceph.conf": b"[global]\nmon_host = 10.0.0.1\n"},
    "cinder-creds": {"password": b"p4ss'word\""},
    "tls": {"ca.crt": b"-----BEGIN CERTIFICATE-----\n...\n"},
}
CONFIG_MAPS: Mapping[str, Mapping[str, str]] = {"ca": {"ca.crt": "-----BEGIN CERTIFICATE-----\n"}}


def ref(name: str, key: str) -> dict[str, Any]:
    return {"secretKeyRef": {"name": name, "key": key}}


def backend(name: str, spec: dict[str, Any], *, created: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "images"}
    if created is not None:
        meta["creationTimestamp"] = created
    return {
        "apiVersion": "kglance.io/v1alpha1",
        "kind": "StoreBackend",
        "metadata": meta,
        "spec": spec,
    }


def file_backend(name: str = "fast", **extra: Any) -> dict[str, Any]:
    return backend(name, {"type": "file", "file": {"claimName": "images-pvc"}, **extra})


def s3_backend(name: str = "objects", **block: Any) -> dict[str, Any]:
    s3 = {
        "endpoint": "https://s3.example.com",
        "bucket": "images",
        "accessKey": ref("s3-creds", "accessKey"),
        "secretKey": ref("s3-creds", "secretKey"),
        **block,
    }
    return backend(name, {"type": "s3", "s3": s3})


ALL_TYPES = [
    file_backend(description='Local "fast" disks', weight=10),
    backend(
        "web",
        {
            "type": "http",
            "http": {
                "caBundle": {"configMapKeyRef": {"name": "ca", "key": "ca.crt"}},
                "proxies": {"https": "http://proxy.example.com:3128"},
                "timeoutSeconds": 30,
            },
        },
    ),
    s3_backend(caBundle={"secretKeyRef": {"name": "tls", "key": "ca.crt"}}),
    backend(
        "swift",
        {
            "type": "swift",
            "swift": {
                "authAddress": "http://keystone.example.com/v3",
                "user": ref("swift-creds", "user"),
                "key": ref("swift-creds", "key"),
                "projectName": "service",
                "adminTenants": ["admin", "ops"],
            },
        },
    ),
    backend(
        "ceph",
        {
            "type": "rbd",
            "rbd": {
                "user": "glance",
                "cephConfig": ref("ceph-creds", "ceph.conf"),
                "keyring": ref("ceph-creds", "keyring"),
                "imageFeatures": "layering,exclusive-lock",
            },
        },
    ),
    backend(
        "volumes",
        {
            "type": "cinder",
            "cinder": {
                "authAddress": "http://keystone.example.com/v3",
                "userName": "glance",
                "password": ref("cinder-creds", "password"),
                "projectName": "service",
            },
        },
    ),
]


def write(directory: pathlib.Path, files: Mapping[str, bytes]) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_bytes(content)
    return str(directory / names.CONFIG_KEY)


def render(bodies: list[dict[str, Any]], tmp_path: pathlib.Path, **kw: Any) -> rendering.Rendering:
    return rendering.render_namespace(
        bodies,
        secrets=kw.pop("secrets", SECRETS),
        config_maps=kw.pop("config_maps", CONFIG_MAPS),
        volume_root=str(tmp_path / "volumes"),
        config_dir=str(tmp_path / "conf"),
        **kw,
    )


def read_back(result: rendering.Rendering, tmp_path: pathlib.Path) -> config.ServiceConfig:
    path = write(tmp_path / "conf", result.files)
    service = config.read(path, drivers=registry.Registry())
    assert service.warnings == ()
    return service


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_file_backend_builds_and_stores_an_image(tmp_path: pathlib.Path) -> None:
    result = render([file_backend()], tmp_path)
    assert result.problems == {}
    assert result.included == ["fast"]
    assert result.default_backend == "fast"
    service = read_back(result, tmp_path)
    built = await config.build(service, drivers=registry.Registry())
    try:
        backend_ = built.get(None)
        assert backend_.id == "fast"
        added = await backend_.add("cirros", _chunks(b"image bytes"), size=11)
        async with backend_.get(added.location) as blob:
            stored = b"".join([chunk async for chunk in blob])
        assert stored == b"image bytes"
        assert (tmp_path / "volumes" / "fast" / "cirros").read_bytes() == b"image bytes"
    finally:
        await built.aclose()


def test_every_store_type_parses_and_validates(tmp_path: pathlib.Path) -> None:
    result = render(ALL_TYPES, tmp_path)
    assert result.problems == {}
    assert sorted(result.included) == ["ceph", "fast", "objects", "swift", "volumes", "web"]
    assert result.default_backend == "fast"  # highest weight
    service = read_back(result, tmp_path)
    drivers = registry.Registry()
    by_id = {spec.id: spec for spec in service.backends}
    for spec in service.backends:
        drivers.driver_class(spec.type).Options.model_validate(dict(spec.options))
    conf_dir = tmp_path / "conf"
    assert by_id["fast"].description == 'Local "fast" disks'
    assert by_id["fast"].weight == 10
    assert by_id["fast"].options["filesystem_store_datadir"] == str(tmp_path / "volumes" / "fast")
    assert by_id["objects"].options["s3_store_secret_key"] == "wJalr/K7MDENG+bPxRfiCY"
    assert by_id["objects"].options["s3_store_cacert"] == str(conf_dir / "objects.ca.pem")
    assert (conf_dir / "objects.ca.pem").read_bytes() == SECRETS["tls"]["ca.crt"]
    assert by_id["web"].options["http_proxy_information"] == "https:http://proxy.example.com:3128"
    assert by_id["web"].options["https_ca_certificates_file"] == str(conf_dir / "web.ca.pem")
    swift_options = drivers.driver_class("swift").Options.model_validate(
        dict(by_id["swift"].options)
    )
    assert swift_options.swift_store_admin_tenants == ("admin", "ops")  # type: ignore[attr-defined]
    assert by_id["swift"].options["swift_store_key"] == "testing"
    assert by_id["volumes"].options["cinder_store_password"] == "p4ss'word\""
    assert by_id["ceph"].options["rbd_store_ceph_conf"] == str(conf_dir / "ceph.ceph.conf")
    keyring = (conf_dir / "ceph.keyring").read_text()
    assert keyring == "[client.glance]\n\tkey = AQBfake==\n"  # a bare key becomes a keyring


def test_no_secret_value_is_in_the_conf(tmp_path: pathlib.Path) -> None:
    result = render(ALL_TYPES, tmp_path)
    conf = result.files[names.CONFIG_KEY]
    for data in SECRETS.values():
        for value in data.values():
            if len(value.strip()) > 8:
                assert value.strip() not in conf
    assert b"testing" not in conf and b"AKIDEXAMPLE" not in conf
    assert "objects.s3_store_secret_key" in result.secret_files
    assert "ceph.keyring" in result.secret_files
    assert "web.ca.pem" not in result.secret_files  # from a ConfigMap
    assert result.referenced_secrets["objects"] == {"s3-creds", "tls"}
    assert result.referenced_config_maps["web"] == {"ca"}
    assert result.referenced_secrets["fast"] == set()


def test_a_newline_in_a_description_cannot_open_a_section(tmp_path: pathlib.Path) -> None:
    evil = file_backend("evil", description="x\n[evil2]\nfilesystem_store_datadir = /etc")
    result = render([evil, file_backend("good")], tmp_path)
    assert result.included == ["good"]
    [problem] = result.problems["evil"]
    assert (problem.condition, problem.reason) == ("SpecValid", "UnsafeValue")
    assert "description" in problem.message
    sections = ini.parse(result.files[names.CONFIG_KEY].decode().splitlines())
    assert set(sections) == {"DEFAULT", "glance_store", "good"}


@pytest.mark.parametrize(
    "value", ["a\rb", "tab\there", "nul\x00", "  spaced  ", '"quoted"', "a = b ; c"]
)
def test_user_strings_round_trip_or_are_refused(tmp_path: pathlib.Path, value: str) -> None:
    result = render([file_backend(description=value)], tmp_path)
    if any(ord(c) < 0x20 for c in value):
        assert result.problems["fast"][0].reason == "UnsafeValue"
        assert result.files == {}
        return
    service = read_back(result, tmp_path)
    assert service.backends[0].description == value


def test_a_secret_value_with_a_newline_stays_a_value(tmp_path: pathlib.Path) -> None:
    secrets = {**SECRETS, "s3-creds": {"accessKey": b"AK\n[evil]", "secretKey": b"SK"}}
    result = render([s3_backend()], tmp_path, secrets=secrets)
    service = read_back(result, tmp_path)
    assert [b.id for b in service.backends] == ["objects"]
    assert service.backends[0].options["s3_store_access_key"] == "AK\n[evil]"


@pytest.mark.parametrize(
    ("secrets", "config_maps", "reason", "message"),
    [
        ({}, CONFIG_MAPS, "SecretNotFound", "Secret s3-creds not found"),
        (
            {"s3-creds": {"accessKey": b"a"}},
            CONFIG_MAPS,
            "SecretKeyMissing",
            "Secret s3-creds has no key secretKey",
        ),
        ({**SECRETS, "tls": {}}, CONFIG_MAPS, "SecretKeyMissing", "Secret tls has no key ca.crt"),
    ],
)
def test_missing_secrets_are_named_and_leave_only_that_backend_out(
    tmp_path: pathlib.Path,
    secrets: Mapping[str, Mapping[str, bytes]],
    config_maps: Mapping[str, Mapping[str, str]],
    reason: str,
    message: str,
) -> None:
    bodies = [file_backend(), s3_backend(caBundle=ref("tls", "ca.crt"))]
    result = render(bodies, tmp_path, secrets=secrets, config_maps=config_maps)
    assert result.included == ["fast"]
    assert result.problems["objects"] == [rendering.Problem("SecretsResolved", reason, message)]
    assert "objects" not in result.files[names.CONFIG_KEY].decode()
    assert not [name for name in result.files if name.startswith("objects.")]
    assert result.referenced_secrets["objects"] == {"s3-creds", "tls"}


def test_missing_config_map_key(tmp_path: pathlib.Path) -> None:
    web = backend(
        "web",
        {"type": "http", "http": {"caBundle": {"configMapKeyRef": {"name": "ca", "key": "x"}}}},
    )
    result = render([web], tmp_path)
    assert result.problems["web"] == [
        rendering.Problem("SecretsResolved", "ConfigMapKeyMissing", "ConfigMap ca has no key x")
    ]
    assert result.files == {}
    assert result.default_backend is None
    result = render([web], tmp_path, config_maps={})
    assert result.problems["web"][0].reason == "ConfigMapNotFound"


def test_invalid_spec_and_invalid_options_are_problems_without_values(
    tmp_path: pathlib.Path,
) -> None:
    bad_spec = backend("bad-spec", {"type": "s3", "file": {"claimName": "x"}})
    # the secret is a valid string, but the driver refuses credentials in the host
    bad_options = s3_backend("bad-options", endpoint="https://user:hunter2@s3.example.com")
    result = render([bad_spec, bad_options, file_backend()], tmp_path)
    assert result.included == ["fast"]
    [spec_problem] = result.problems["bad-spec"]
    assert (spec_problem.condition, spec_problem.reason) == ("SpecValid", "InvalidSpec")
    [options_problem] = result.problems["bad-options"]
    assert (options_problem.condition, options_problem.reason) == ("OptionsValid", "InvalidOptions")
    assert "s3_store_host" in options_problem.message
    assert "hunter2" not in options_problem.message


def test_reserved_and_duplicate_names(tmp_path: pathlib.Path) -> None:
    result = render([file_backend("kglance"), file_backend("a"), file_backend("a")], tmp_path)
    assert result.problems["kglance"][0].reason == "InvalidName"
    assert result.problems["a"][0].reason == "DuplicateName"
    assert result.included == []  # which of the two is meant is unknown: neither


def test_oldest_default_claim_wins(tmp_path: pathlib.Path) -> None:
    bodies = [
        file_backend("young", default=True) | {},
        file_backend("old", default=True),
        file_backend("heavy", weight=100),
    ]
    bodies[0]["metadata"]["creationTimestamp"] = CREATED_NEW
    bodies[1]["metadata"]["creationTimestamp"] = CREATED_OLD
    result = render(bodies, tmp_path)
    assert result.default_backend == "old"
    assert result.included == ["heavy", "old"]
    [conflict] = result.problems["young"]
    assert (conflict.condition, conflict.reason) == ("DefaultConflict", "DefaultConflict")
    assert "old" in conflict.message
    service = read_back(result, tmp_path)
    assert service.default_backend == "old"


def test_a_claim_counts_even_when_its_backend_is_left_out(tmp_path: pathlib.Path) -> None:
    old = s3_backend("old")
    old["spec"]["default"] = True
    old["metadata"]["creationTimestamp"] = CREATED_OLD
    young = file_backend("young", default=True)
    young["metadata"]["creationTimestamp"] = CREATED_NEW
    bodies = [old, young, file_backend("other")]
    result = render(bodies, tmp_path, secrets={})  # old's Secret is missing
    assert result.problems["old"][0].reason == "SecretNotFound"
    assert result.problems["young"][0].reason == "DefaultConflict"
    assert result.included == ["other"]
    assert result.default_backend == "other"
    assert read_back(result, tmp_path).default_backend == "other"


def test_a_duplicate_is_never_the_default(tmp_path: pathlib.Path) -> None:
    bodies = [file_backend("a", weight=9), file_backend("a"), file_backend("b")]
    result = render(bodies, tmp_path)
    assert result.default_backend == "b"
    assert read_back(result, tmp_path).default_backend == "b"


@pytest.mark.parametrize(
    ("bodies", "default"),
    [
        ([file_backend("only", weight=-5)], "only"),
        ([file_backend("b", weight=1), file_backend("a", weight=1), file_backend("c")], "a"),
        ([file_backend("b", weight=2), file_backend("a", weight=1)], "b"),
    ],
)
def test_default_without_a_claim(
    tmp_path: pathlib.Path, bodies: list[dict[str, Any]], default: str
) -> None:
    assert render(bodies, tmp_path).default_backend == default


def test_nothing_to_render(tmp_path: pathlib.Path) -> None:
    result = render([], tmp_path)
    assert result.files == {}
    assert result.default_backend is None
    assert result.included == []


def test_rendering_is_deterministic(tmp_path: pathlib.Path) -> None:
    first = render(ALL_TYPES, tmp_path)
    second = render(list(reversed(ALL_TYPES)), tmp_path)
    assert first.files == second.files


async def test_s3_backend_renders_to_a_working_radosgw_store(tmp_path: pathlib.Path) -> None:
    endpoint = require_env("S3_ENDPOINT")
    secrets = {
        "s3-creds": {
            "accessKey": require_env("S3_ACCESS_KEY").encode(),
            "secretKey": require_env("S3_SECRET_KEY").encode(),
        }
    }
    body = s3_backend(
        endpoint=endpoint,
        bucket=f"kglance-render-{os.getpid()}",
        createBucketOnPut=True,
        bucketUrlFormat="path",
        region=os.environ.get("S3_REGION", ""),
    )
    result = render([body], tmp_path, secrets=secrets)
    assert result.problems == {}
    built = await config.build(read_back(result, tmp_path), drivers=registry.Registry())
    try:
        store = built.get("objects")
        added = await store.add("rendered", _chunks(b"s3 bytes"), size=8)
        assert await store.size(added.location) == 8
        await store.delete(added.location)
    finally:
        await built.aclose()


def client_key(keyring_path: str, *, user: str) -> str:
    """The bare key of ``client.<user>`` in a keyring file."""
    section = ""
    with open(keyring_path, encoding="utf-8") as f:
        for line in f:
            text = line.strip()
            if text.startswith("["):
                section = text.strip("[]")
            elif section == f"client.{user}" and text.startswith("key"):
                return text.split("=", 1)[1].strip()
    raise AssertionError(f"no key for client.{user} in {keyring_path}")


async def test_rbd_backend_from_monitors_and_a_bare_key(tmp_path: pathlib.Path) -> None:
    user = require_env("CEPH_USER")
    pool = require_env("RBD_POOL")
    key = client_key(require_env("CEPH_KEYRING"), user=user)
    body = backend(
        "ceph",
        {
            "type": "rbd",
            "rbd": {
                "pool": pool,
                "user": user,
                "monitors": ["127.0.0.1:6789"],
                "keyring": ref("ceph-creds", "key"),
                "connectTimeoutSeconds": 10,
            },
        },
    )
    result = render([body], tmp_path, secrets={"ceph-creds": {"key": key.encode()}})
    assert result.problems == {}
    built = await config.build(read_back(result, tmp_path), drivers=registry.Registry())
    try:
        store = built.get("ceph")
        await store.driver.check()
        image_id = f"rendered-{os.getpid()}"
        added = await store.add(image_id, _chunks(b"rbd bytes"), size=9)
        assert await store.size(added.location) == 9
        await store.delete(added.location)
    finally:
        await built.aclose()
