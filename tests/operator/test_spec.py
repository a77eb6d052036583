"""The spec models: what they accept and refuse, and that they cannot drift from the drivers.

Each store block field names the glance_store option it sets; every such name must be a field
of that driver's ``Options`` model, and the block's defaults must be the driver's defaults
(where the units agree), so a StoreBackend with only the required fields renders to what a
glance_store section without those options would mean.
"""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from kglance.drivers import registry
from kglance.operator import spec

# fields whose value is not the option's value (a mount, a generated file)
DERIVED = {("file", "claim_name"), ("file", "sub_path"), ("rbd", "monitors")}
SECRET = {"secretKeyRef": {"name": "creds", "key": "k"}}


def _s3(**extra: Any) -> dict[str, Any]:
    return {
        "endpoint": "https://s3.example.com",
        "bucket": "images",
        "accessKey": SECRET,
        "secretKey": SECRET,
        **extra,
    }


@pytest.mark.parametrize("store_type", spec.STORE_TYPES)
def test_every_block_field_names_an_option_of_its_driver(store_type: spec.StoreType) -> None:
    options = registry.Registry().driver_class(store_type).Options.model_fields
    block = spec.BLOCKS[store_type]
    for name in block.model_fields:
        assert spec.glance_option(block, name) in options, (store_type, name)


@pytest.mark.parametrize("store_type", spec.STORE_TYPES)
def test_block_defaults_are_the_driver_defaults(store_type: spec.StoreType) -> None:
    options = registry.Registry().driver_class(store_type).Options.model_fields
    block = spec.BLOCKS[store_type]
    compared = 0
    for name, field in block.model_fields.items():
        if field.is_required() or field.default is None or (store_type, name) in DERIVED:
            continue  # required here, or "unset": the driver's default applies
        driver_field = options[spec.glance_option(block, name)]
        if driver_field.is_required() or driver_field.default_factory is not None:
            continue
        if isinstance(field.default, tuple | bool | int | float | str):
            assert field.default == driver_field.default, (store_type, name)
            compared += 1
    assert compared >= 1


def test_all_six_store_types_have_a_block() -> None:
    assert set(spec.BLOCKS) == set(spec.STORE_TYPES) == set(registry.BUILTIN)


def test_store_backend_spec_parses_camel_case() -> None:
    parsed = spec.StoreBackendSpec.model_validate(
        {"type": "s3", "weight": 5, "s3": _s3(largeObjectSizeMiB=200, bucketUrlFormat="path")}
    )
    assert isinstance(parsed.block, spec.S3Block)
    assert parsed.block.large_object_size_mi_b == 200
    assert parsed.block.bucket_url_format == "path"
    assert parsed.block.access_key.secret_key_ref.name == "creds"
    assert parsed.weight == 5
    assert parsed.default is False


def test_parse_store_backend_reads_the_body_spec() -> None:
    body = {"metadata": {"name": "fast"}, "spec": {"type": "file", "file": {"claimName": "pvc"}}}
    parsed = spec.parse_store_backend(body)
    assert isinstance(parsed.block, spec.FileBlock)
    assert parsed.block.claim_name == "pvc"
    assert parsed.block.chunk_size == 1024 * 1024


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "s3"}, "set the s3 block"),
        ({"type": "file", "file": {"claimName": "p"}, "s3": _s3()}, "remove the s3 block"),
        ({"type": "nfs"}, "type"),
        ({"type": "file", "file": {"claimName": "p", "bogus": 1}}, "bogus"),
        ({"type": "file", "file": {"claimName": "p", "subPath": "../up"}}, "subPath"),
        ({"type": "file", "file": {"claimName": "Not_A_Name"}}, "Kubernetes object name"),
        ({"type": "s3", "s3": _s3(accessKey="inline-secret")}, "accessKey"),
        ({"type": "s3", "s3": _s3(largeObjectChunkSizeMiB=4)}, "greater than or equal to 5"),
        ({"type": "rbd", "rbd": {"pool": "images"}}, "exactly one of monitors and cephConfig"),
        (
            {
                "type": "rbd",
                "rbd": {
                    "monitors": ["10.0.0.1:6789"],
                    "cephConfig": {"configMapKeyRef": {"name": "ceph", "key": "ceph.conf"}},
                },
            },
            "exactly one of monitors and cephConfig",
        ),
        (
            {"type": "http", "http": {"caBundle": {}}},
            "exactly one of secretKeyRef and configMapKeyRef",
        ),
        ({"type": "http", "http": {"proxies": {"http": "http://a:1,https:b"}}}, "proxies"),
        ({"type": "swift", "swift": {"authVersion": "2"}}, "authVersion"),
    ],
)
def test_invalid_store_backend_specs_are_refused(body: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        spec.StoreBackendSpec.model_validate(body)


def test_image_location_spec() -> None:
    parsed = spec.ImageLocationSpec.model_validate(
        {
            "imageId": "0b3f7c9e-8f07-4a5c-9d3e-2b1a0c9d8e7f",
            "backend": "fast",
            "location": "file:///var/lib/glance/images/0b3f7c9e-8f07-4a5c-9d3e-2b1a0c9d8e7f",
            "size": 2**40,
            "checksum": "d41d8cd98f00b204e9800998ecf8427e",
            "metadata": {"k": "v"},
        }
    )
    assert parsed.reclaim_policy == "Delete"
    assert parsed.size == 2**40
    copy = spec.parse_image_location(
        {"spec": {"imageId": "abc", "backend": "slow", "source": {"name": "cirros-fast"}}}
    )
    assert copy.source is not None and copy.source.name == "cirros-fast"
    assert copy.location is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"imageId": "x", "backend": "b"}, "set location, or source"),
        ({"imageId": ".hidden", "backend": "b", "location": "file:///x"}, "invalid image id"),
        ({"imageId": "a\nb", "backend": "b", "location": "file:///x"}, "invalid image id"),
        ({"imageId": "x", "backend": "b", "location": "file:///x", "size": -1}, "size"),
        ({"imageId": "x", "backend": "b", "location": "not a uri"}, "location URI"),
        (
            {"imageId": "x", "backend": "b", "location": "s3://h/b/o", "osHashAlgo": "sha512"},
            "together",
        ),
        (
            {"imageId": "x", "backend": "b", "source": {"name": "s"}, "reclaimPolicy": "Keep"},
            "reclaimPolicy",
        ),
    ],
)
def test_invalid_image_location_specs_are_refused(body: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        spec.ImageLocationSpec.model_validate(body)
