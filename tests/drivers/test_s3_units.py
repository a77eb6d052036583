"""The s3 driver's pure parts, without a server: options, part sizes, cutting a stream into
parts, locations and ownership, and the translation of S3 error responses.

Error responses are botocore ``ClientError`` objects built from the dictionaries botocore
itself parses from a response; nothing of the driver is replaced.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator, Iterable

import botocore.exceptions
import pydantic
import pytest

from kglance.drivers import errors, locations, registry
from kglance.drivers.s3 import S3Driver, S3Options, client, parts

MiB = 1024 * 1024
GiB = 1024 * MiB
SECRET = "sEcReT/with+odd=chars"
ACCESS = "AKIAEXAMPLEACCESS"


def options(**overrides: object) -> S3Options:
    values: dict[str, object] = {
        "s3_store_host": "http://rgw.example:7480",
        "s3_store_access_key": ACCESS,
        "s3_store_secret_key": SECRET,
        "s3_store_bucket": "images",
        **overrides,
    }
    return S3Options.model_validate(values)


# --------------------------------------------------------------------- options


def test_defaults_are_glance_stores() -> None:
    opts = options()
    assert opts.s3_store_region_name == ""
    assert opts.s3_store_create_bucket_on_put is False
    assert opts.s3_store_bucket_url_format == "auto"
    assert opts.large_object_size == 100 * MiB
    assert opts.part_size == 10 * MiB
    assert opts.s3_store_thread_pools == 10
    assert opts.s3_store_cacert == ""
    assert opts.checksum_modes == ("when_required", "when_required")


def test_text_values_from_a_config_file_are_accepted() -> None:
    opts = options(
        s3_store_create_bucket_on_put="True",
        s3_store_large_object_size="0",
        s3_store_large_object_chunk_size="5",
        s3_store_thread_pools="3",
        s3_store_bucket_url_format="path",
    )
    assert opts.s3_store_create_bucket_on_put is True
    assert opts.large_object_size == 0
    assert opts.part_size == 5 * MiB


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("s3_store_large_object_chunk_size", 4),
        ("s3_store_large_object_chunk_size", 5 * 1024 + 1),
        ("s3_store_large_object_size", -1),
        ("s3_store_thread_pools", 0),
        ("s3_store_bucket_url_format", "subdomain"),
        ("s3_store_request_checksum_calculation", "always"),
        ("s3_store_host", "ftp://host"),
        ("s3_store_host", "http://"),
        ("s3_store_host", "http://user:pass@host"),
        ("s3_store_host", "http://host/?x=1"),
        ("s3_store_bucket", ""),
        ("s3_store_bucket", "a/b"),
        ("s3_store_secret_key", ""),
        ("s3_store_unknown_option", "x"),
    ],
)
def test_bad_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(pydantic.ValidationError):
        options(**{field: value})


def test_required_options() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        S3Options.model_validate({"s3_store_host": "h"})
    missing = {e["loc"][0] for e in info.value.errors() if e["type"] == "missing"}
    assert missing == {"s3_store_access_key", "s3_store_secret_key", "s3_store_bucket"}


def test_virtual_addressing_needs_a_dns_bucket_name() -> None:
    options(s3_store_bucket="my.images", s3_store_bucket_url_format="virtual")
    with pytest.raises(pydantic.ValidationError, match="not a valid DNS name"):
        options(s3_store_bucket="My_Images", s3_store_bucket_url_format="virtual")
    options(s3_store_bucket="My_Images", s3_store_bucket_url_format="path")


def test_keys_never_show() -> None:
    opts = options()
    with pytest.raises(pydantic.ValidationError) as info:
        options(s3_store_thread_pools=0)
    for text in (repr(opts), str(opts), str(opts.model_dump()), str(info.value)):
        assert SECRET not in text and ACCESS not in text
    assert opts.s3_store_secret_key.get_secret_value() == SECRET


@pytest.mark.parametrize(
    ("host", "endpoint", "service_url", "scheme"),
    [
        ("rgw.example:7480", "http://rgw.example:7480", "rgw.example:7480", "s3"),
        ("http://rgw.example:7480/", "http://rgw.example:7480", "rgw.example:7480", "s3"),
        ("https://s3.example/base", "https://s3.example/base", "s3.example/base", "s3+https"),
    ],
)
def test_host_forms(host: str, endpoint: str, service_url: str, scheme: str) -> None:
    opts = options(s3_store_host=host)
    assert opts.endpoint_url == endpoint
    assert opts.service_url == service_url
    assert opts.location_scheme == scheme
    assert opts.uses_https is (scheme == "s3+https")


@pytest.mark.parametrize(
    ("host", "configured", "region"),
    [
        ("s3-eu-west-1.amazonaws.com", "", "eu-west-1"),
        ("https://s3.ap-northeast-2.amazonaws.com", "", "ap-northeast-2"),
        ("s3-cn-north-1.amazonaws.com.cn", "", "cn-north-1"),
        ("s3.amazonaws.com", "", None),
        ("rgw.example", "", None),
        ("s3-eu-west-1.amazonaws.com", "us-west-2", "us-west-2"),
    ],
)
def test_region(host: str, configured: str, region: str | None) -> None:
    assert options(s3_store_host=host, s3_store_region_name=configured).region == region


def test_checksum_options_apply_only_with_data_integrity_protection() -> None:
    chosen = {
        "s3_store_request_checksum_calculation": "when_supported",
        "s3_store_response_checksum_validation": "when_supported",
    }
    assert options(**chosen).checksum_modes == ("when_required", "when_required")
    enabled = options(s3_store_enable_data_integrity_protection=True, **chosen)
    assert enabled.checksum_modes == ("when_supported", "when_supported")


# ------------------------------------------------------------------ part sizes


def test_known_sizes_use_the_chunk_size_while_10000_parts_suffice() -> None:
    assert parts.plan_parts(1, chunk_size=10 * MiB) == parts.PartPlan(10 * MiB, grows=False)
    exact = parts.plan_parts(10_000 * 10 * MiB, chunk_size=10 * MiB)
    assert exact.first == 10 * MiB


@pytest.mark.parametrize(
    "size", [10_000 * 10 * MiB + 1, 200 * GiB, 1024 * GiB, 5 * 1024 * GiB], ids=str
)
def test_known_sizes_grow_parts_to_stay_within_10000(size: int) -> None:
    plan = parts.plan_parts(size, chunk_size=10 * MiB)
    assert plan.first % MiB == 0
    assert plan.first > 10 * MiB
    assert -(-size // plan.first) <= parts.MAX_PARTS
    assert plan.first <= parts.MAX_PART_SIZE


def test_known_sizes_past_5_tib_are_refused() -> None:
    with pytest.raises(errors.StorageFull):
        parts.plan_parts(5 * 1024 * GiB + 1, chunk_size=10 * MiB)


@pytest.mark.parametrize("chunk", [5 * MiB, 10 * MiB, 64 * MiB])
def test_unknown_sizes_double_every_1000_parts(chunk: int) -> None:
    plan = parts.plan_parts(None, chunk_size=chunk)
    assert [plan.size_of(n) for n in (1, 1000, 1001, 2000, 2001, 3001)] == [
        chunk,
        chunk,
        2 * chunk,
        2 * chunk,
        4 * chunk,
        8 * chunk,
    ]
    assert all(plan.size_of(n) <= parts.MAX_PART_SIZE for n in range(1, parts.MAX_PARTS + 1))
    # glance_store's fixed parts stop at 10,000 chunks (98 GiB at 10 MiB); these do not
    assert plan.capacity() >= 10 * 10_000 * chunk
    assert plan.capacity() >= min(1023 * 1000 * chunk, parts.MAX_OBJECT_SIZE)


def test_part_10001_does_not_exist() -> None:
    plan = parts.plan_parts(None, chunk_size=5 * MiB)
    plan.size_of(parts.MAX_PARTS)
    with pytest.raises(errors.StorageFull):
        plan.size_of(parts.MAX_PARTS + 1)


def test_chunk_outside_s3_part_limits_is_a_bug() -> None:
    with pytest.raises(ValueError):
        parts.plan_parts(None, chunk_size=4 * MiB)


# ------------------------------------------------------------- cutting a stream


async def chunks(pieces: Iterable[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece
        await asyncio.sleep(0)


async def read_parts(reader: parts.PartReader) -> list[bytes]:
    out = []
    while (part := await reader.next_part()) is not None:
        out.append(bytes(part))
    return out


async def test_chunks_straddling_parts_are_split() -> None:
    data = bytes(range(256)) * 40  # 10,240 bytes in pieces of 3,000
    pieces = [data[i : i + 3000] for i in range(0, len(data), 3000)]
    reader = parts.PartReader(chunks(pieces), parts.PartPlan(first=4096, grows=False))
    got = await read_parts(reader)
    assert [len(p) for p in got] == [4096, 4096, 2048]
    assert b"".join(got) == data
    assert reader.exhausted and reader.parts_read == 3 and reader.bytes_read == len(data)


async def test_growing_parts() -> None:
    plan = parts.PartPlan(first=10, grows=True)
    reader = parts.PartReader(chunks([b"x" * 7] * 3000), plan)
    sizes = [len(p) for p in await read_parts(reader)]
    assert sizes[:1000] == [10] * 1000
    assert sizes[1000:1005] == [20] * 5
    assert sum(sizes) == 21_000


async def test_unread_and_confirm_end() -> None:
    reader = parts.PartReader(chunks([b"abc", b"def"]), parts.PartPlan(first=3, grows=False))
    first = await reader.next_part()
    assert first is not None and bytes(first) == b"abc"
    assert not await reader.confirm_end()  # "def" is read ahead and kept
    reader.unread(first)
    assert reader.bytes_read == 0
    assert await read_parts(reader) == [b"abc", b"def"]
    assert await reader.confirm_end()


async def test_an_empty_source_has_no_parts() -> None:
    reader = parts.PartReader(chunks([]), parts.PartPlan(first=5, grows=False))
    assert await reader.next_part() is None
    assert await reader.confirm_end()


async def test_source_errors_come_through() -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"abcd"
        raise errors.SizeMismatch("too short", expected=10, received=4)

    reader = parts.PartReader(failing(), parts.PartPlan(first=3, grows=False))
    first = await reader.next_part()
    assert first is not None and bytes(first) == b"abc"
    with pytest.raises(errors.SizeMismatch):
        await reader.next_part()


# --------------------------------------------------------- locations, ownership


def driver(**overrides: object) -> S3Driver:
    values: dict[str, object] = {
        "s3_store_host": "http://rgw.example:7480",
        "s3_store_access_key": ACCESS,
        "s3_store_secret_key": SECRET,
        "s3_store_bucket": "images",
        **overrides,
    }
    built = registry.Registry().build("s3", values, backend_id="objects")
    assert isinstance(built, S3Driver)
    return built


async def test_locate_needs_no_server_and_carries_no_credentials() -> None:
    d = driver()
    try:
        location = await d.locate("0b8c9a1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b")
        uri = location.uri(credentials=True)
        assert uri == "s3://rgw.example:7480/images/0b8c9a1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
        assert locations.parse(uri) == location
        https = driver(s3_store_host="https://s3.example")
        assert str(await https.locate("x")) == "s3+https://s3.example/images/x"
        await https.aclose()
        for text in (uri, repr(d), repr(d.options)):
            assert SECRET not in text and ACCESS not in text
    finally:
        await d.aclose()


@pytest.mark.parametrize(
    ("uri", "owned"),
    [
        ("s3://rgw.example:7480/images/x", True),
        ("s3+https://elsewhere.example/images/x", True),
        ("s3://OLD:old-secret@old.example/images/x", True),
        ("s3://host/v1/images/x", True),
        ("s3://rgw.example:7480/other/x", False),
        ("swift+config://ref/images/x", False),
    ],
)
async def test_owns_by_bucket(uri: str, owned: bool) -> None:
    d = driver()
    try:
        assert d.owns(locations.parse(uri)) is owned
    finally:
        await d.aclose()


def test_missing_ca_file_is_a_configuration_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.ConfigurationError, match="s3_store_cacert"):
        driver(s3_store_host="https://s3.example", s3_store_cacert=str(tmp_path / "none.pem"))


def test_features_and_schemes() -> None:
    assert S3Driver.type_name == "s3"
    assert S3Driver.schemes == ("s3", "s3+http", "s3+https")
    assert {f.name for f in S3Driver.features} == {
        "READ",
        "WRITE",
        "RANGED_READ",
        "UNSIZED_WRITE",
        "MULTIPART",
        "REUSABLE",
    }


# ------------------------------------------------------------ error translation


def client_error(code: str, status: int, **headers: str) -> botocore.exceptions.ClientError:
    response = {
        "Error": {"Code": code, "Message": ""},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers},
    }
    return botocore.exceptions.ClientError(response, "GetObject")


@pytest.mark.parametrize(
    ("code", "status", "writing", "expected"),
    [
        ("NoSuchKey", 404, False, errors.NotFound),
        ("404", 404, False, errors.NotFound),
        ("NoSuchBucket", 404, False, errors.NotFound),
        ("NoSuchUpload", 404, True, errors.BackendError),
        ("InvalidRange", 416, False, errors.RangeNotSatisfiable),
        ("PreconditionFailed", 412, True, errors.AlreadyExists),
        ("AccessDenied", 403, True, errors.WriteDenied),
        ("AccessDenied", 403, False, errors.BackendError),
        ("QuotaExceeded", 403, True, errors.StorageFull),
        ("SignatureDoesNotMatch", 403, False, errors.BackendError),
        ("SlowDown", 503, True, errors.RemoteUnavailable),
        ("InternalError", 500, False, errors.RemoteUnavailable),
        ("RequestTimeout", 400, True, errors.RemoteUnavailable),
        ("InvalidArgument", 400, True, errors.BackendError),
    ],
)
def test_error_responses(
    code: str, status: int, writing: bool, expected: type[errors.StoreError]
) -> None:
    translated = client.translate(
        client_error(code, status), action="read", target="images/x", writing=writing
    )
    assert type(translated) is expected
    assert "images/x" in str(translated)


def test_unsatisfiable_range_carries_the_size() -> None:
    translated = client.translate(
        client_error("InvalidRange", 416, **{"content-range": "bytes */1234"}),
        action="read",
        target="images/x",
    )
    assert isinstance(translated, errors.RangeNotSatisfiable)
    assert translated.size == 1234


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            botocore.exceptions.EndpointConnectionError(endpoint_url="http://h"),
            errors.RemoteUnavailable,
        ),
        (botocore.exceptions.ReadTimeoutError(endpoint_url="http://h"), errors.RemoteUnavailable),
        (
            botocore.exceptions.ConnectionClosedError(endpoint_url="http://h"),
            errors.RemoteUnavailable,
        ),
        (
            botocore.exceptions.IncompleteReadError(actual_bytes=1, expected_bytes=2),
            errors.RemoteUnavailable,
        ),
        (botocore.exceptions.NoCredentialsError(), errors.ConfigurationError),
        (botocore.exceptions.ParamValidationError(report="bad"), errors.BackendError),
    ],
    ids=["connect", "read-timeout", "closed", "incomplete", "no-credentials", "validation"],
)
def test_sdk_errors(exc: Exception, expected: type[errors.StoreError]) -> None:
    assert type(client.translate(exc, action="read", target="images/x")) is expected
