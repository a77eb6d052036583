"""The swift driver against the real Swift of ``scripts/servers/swift-up.sh`` (tempauth, v1).

Every test owns fresh containers, wiped afterwards, and inspects what the driver left with a
plain swiftclient connection. Failures are real server answers: a container quota smaller than
a segment (413 on the segment PUT), a segment deleted behind the driver's back before the
manifest PUT (Swift refuses the manifest), an object created behind its back (412 from
``If-None-Match``), connections cut by ``scripts/servers/faultproxy.py`` in the middle of a GET.
Where a race cannot be produced on demand (the HEAD that precedes a create-only PUT, a
response lost after the server acted) the driver's own module function is wrapped, and the
real request still runs.

Segments here are 2 "MB" (2,048,000 bytes): Swift's SLO middleware throttles segments under
1 MiB to one per second after the tenth, and DLO segments after the tenth whatever their size,
so hand-built DLOs keep to fewer than ten segments.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import importlib.util
import json
import logging
import pathlib
import sys
import textwrap
import threading
import types
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from kglance.drivers import base, errors, locations
from kglance.drivers.swift import SwiftDriver, SwiftOptions, auth, objects
from tests.conformance.suite import Boom, failing_stream, payload, read_all, stream
from tests.drivers import swift_support
from tests.drivers.swift_support import SwiftServer

MB = 1_024_000  # glance's "MB"
SEGMENT = 2 * MB
FAULTPROXY = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "servers" / "faultproxy.py"


@pytest.fixture
def server() -> SwiftServer:
    return SwiftServer.from_env()


@pytest.fixture
def conn(server: SwiftServer) -> Iterator[Any]:
    connection = server.connection()
    yield connection
    connection.close()


@pytest.fixture
def container(conn: Any) -> Iterator[str]:
    name = swift_support.unique("kg-test")
    yield name
    swift_support.wipe(conn, name)


@pytest.fixture
async def make() -> AsyncIterator[Any]:
    """Builds drivers for a test and closes them after it."""
    drivers: list[SwiftDriver] = []

    def build(options: dict[str, Any], *, cls: type[SwiftDriver] = SwiftDriver) -> SwiftDriver:
        driver = cls(SwiftOptions(**options), backend_id="swift")
        drivers.append(driver)
        return driver

    yield build
    for driver in drivers:
        await driver.aclose()


def slo_options(server: SwiftServer, container: str, **extra: Any) -> dict[str, Any]:
    return server.options(
        swift_store_container=container,
        swift_store_large_object_size=1,
        swift_store_large_object_chunk_size=2,
        **extra,
    )


def manifest(conn: Any, container: str, name: str) -> list[dict[str, Any]]:
    _, body = conn.get_object(container, name, query_string="multipart-manifest=get")
    entries: list[dict[str, Any]] = json.loads(body)
    return entries


@pytest.fixture(scope="module")
def faultproxy() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("kglance_tests_swift_faultproxy", FAULTPROXY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


# ---------------------------------------------------------------------- containers


async def test_container_seed_places_images(server: SwiftServer, conn: Any, make: Any) -> None:
    prefix = swift_support.unique("kgseed")
    image_id = str(uuid.uuid4())
    expected = f"{prefix}_{image_id[:3]}"
    with swift_support.scratch_containers(conn, expected):
        driver = make(
            server.options(swift_store_container=prefix, swift_store_multiple_containers_seed=3)
        )
        backend = swift_support.backend(driver)
        result = await backend.add(image_id, stream(b"seeded"), size=6)
        assert isinstance(result.location, locations.SwiftLocation)
        assert result.location.container == expected
        assert swift_support.listing(conn, expected) == [image_id]
        assert await backend.locate(image_id) == result.location


async def test_missing_container_names_the_option(
    server: SwiftServer, conn: Any, container: str, make: Any
) -> None:
    driver = make(
        server.options(swift_store_container=container, swift_store_create_container_on_put=False)
    )
    with pytest.raises(errors.BackendError, match="swift_store_create_container_on_put"):
        await swift_support.backend(driver).add("img", stream(b"x"), size=1)
    assert not swift_support.container_exists(conn, container)


# ---------------------------------------------------------------------- accounts and locations


def accounts_file(tmp_path: pathlib.Path, server: SwiftServer) -> str:
    path = tmp_path / "glance-swift.conf"
    path.write_text(
        textwrap.dedent(
            f"""\
            [ref1]
            auth_version = 1
            auth_address = {server.auth_url}
            user = {server.user}
            key = "{server.key}"

            [ref2]
            auth_version = 1
            auth_address = {server.auth_url}
            user = {server.user2}
            key = {server.key2}

            [keystone]
            auth_address = https://keystone.invalid:5000
            user = service:glance
            key = never-used
            """
        )
    )
    return str(path)


async def test_swift_config_references(
    tmp_path: pathlib.Path, server: SwiftServer, conn: Any, container: str, make: Any
) -> None:
    driver = make(
        {
            "swift_store_config_file": accounts_file(tmp_path, server),
            "default_swift_reference": "ref1",
            "swift_store_container": container,
            "swift_store_create_container_on_put": True,
        }
    )
    backend = swift_support.backend(driver)
    result = await backend.add("via-ref1", stream(b"first account"), size=13)
    assert result.location.uri(credentials=True) == f"swift+config://ref1/{container}/via-ref1"
    assert await read_all(backend, result.location) == b"first account"

    # an image glance wrote with the second reference, in the second account
    conn2 = server.connection(user=server.user2, key=server.key2)
    other = swift_support.unique("kg-ref2")
    try:
        conn2.put_container(other)
        conn2.put_object(other, "old-image", b"second account")
        for uri in (
            f"swift+config://ref2/{other}/old-image",
            # credentialed: the user picks ref2 among the references at that address, the
            # (wrong) key is ignored
            f"{_scheme(server)}://{urllib.parse.quote(server.user2, safe='')}:WRONG@"
            f"{_hostpath(server)}/{other}/old-image",
        ):
            location = locations.parse(uri)
            assert driver.owns(location)
            assert await read_all(backend, location) == b"second account"
            assert await backend.size(location) == 14
        unknown = locations.parse(f"swift+config://ref9/{other}/old-image")
        assert not driver.owns(unknown)
        with pytest.raises(errors.InvalidLocation):
            await backend.size(unknown)
    finally:
        swift_support.wipe(conn2, other)
        conn2.close()


def _scheme(server: SwiftServer) -> str:
    return "swift+http" if server.auth_url.startswith("http://") else "swift+https"


def _hostpath(server: SwiftServer) -> str:
    return server.auth_url.split("://", 1)[1]


async def test_locations_without_config_file(
    server: SwiftServer, conn: Any, container: str, make: Any
) -> None:
    driver = make(server.options(swift_store_container=container))
    backend = swift_support.backend(driver)
    result = await backend.add("plain", stream(b"abc"), size=3)
    # glance put user:key@ in front of the host; kglance does not
    assert result.location.uri(credentials=True) == (
        f"{_scheme(server)}://{_hostpath(server)}/{container}/plain"
    )
    old = locations.parse(
        f"{_scheme(server)}://{urllib.parse.quote(server.user, safe='')}:not-the-key@"
        f"{_hostpath(server)}/{container}/plain"
    )
    assert "not-the-key" not in str(old)
    assert await read_all(backend, old) == b"abc"


# ---------------------------------------------------------------------- SLO writes


async def test_slo_segments_upload_concurrently_within_the_bound(
    server: SwiftServer, conn: Any, container: str, make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = objects.put_streamed
    lock = threading.Lock()
    both_started = threading.Barrier(2, timeout=30)
    state = {"active": 0, "peak": 0, "started": 0}

    def observed(client: Any, target: Any, pipe: Any, **kwargs: Any) -> str:
        with lock:
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])
            index = state["started"]
            state["started"] += 1
        try:
            if index < 2:
                # the first two segments wait for each other: a sequential upload never
                # gets past this; a third starting too early would show in the peak
                both_started.wait()
                threading.Event().wait(0.2)
            return real(client, target, pipe, **kwargs)
        finally:
            with lock:
                state["active"] -= 1

    monkeypatch.setattr(objects, "put_streamed", observed)
    driver = make(slo_options(server, container, swift_store_upload_concurrency=2))
    backend = swift_support.backend(driver)
    data = payload(4 * SEGMENT + 12345, seed=11)
    result = await backend.add("slo", stream(data, piece=300_000), size=len(data))
    assert state["peak"] == 2
    assert state["started"] == 5

    head = conn.head_object(container, "slo")
    assert head["x-static-large-object"].lower() == "true"
    entries = manifest(conn, container, "slo")
    assert [e["bytes"] for e in entries] == [SEGMENT] * 4 + [12345]
    assert all(e["name"].startswith(f"/{container}/slo/") for e in entries)
    assert await read_all(backend, result.location) == data
    middle = base.ByteRange(SEGMENT - 10, 20)  # across a segment boundary
    assert (
        await read_all(backend, result.location, byte_range=middle)
        == data[SEGMENT - 10 : SEGMENT + 10]
    )
    await backend.delete(result.location)
    assert swift_support.listing(conn, container) == []


async def test_unknown_size_slo_and_empty_image(
    server: SwiftServer, conn: Any, container: str, make: Any
) -> None:
    backend = swift_support.backend(make(slo_options(server, container)))
    data = payload(2 * SEGMENT + 1, seed=12)
    result = await backend.add("unsized", stream(data), size=None)
    assert len(manifest(conn, container, "unsized")) == 3
    assert await read_all(backend, result.location) == data
    empty = await backend.add("empty", stream(b""), size=None)
    assert "x-static-large-object" not in conn.head_object(container, "empty")
    assert await read_all(backend, empty.location) == b""
    segments = [e["name"].split("/", 2)[2] for e in manifest(conn, container, "unsized")]
    assert swift_support.listing(conn, container) == sorted(["empty", "unsized", *segments])


async def test_nested_manifests_beyond_the_segment_limit(
    server: SwiftServer, conn: Any, container: str, make: Any
) -> None:
    driver = make(slo_options(server, container))
    driver.max_manifest_segments = 2
    backend = swift_support.backend(driver)
    data = payload(4 * SEGMENT + 5, seed=13)
    result = await backend.add("nested", stream(data), size=len(data))
    top = manifest(conn, container, "nested")
    assert len(top) == 2
    assert all("/manifest-" in e["name"] for e in top)
    assert sum(int(e["bytes"]) for e in top) == len(data)
    assert await read_all(backend, result.location) == data
    await backend.delete(result.location)
    assert swift_support.listing(conn, container) == []


@pytest.mark.parametrize("declared", [True, False], ids=["sized", "unsized"])
async def test_source_failure_after_segments_leaves_nothing(
    server: SwiftServer, conn: Any, container: str, make: Any, declared: bool
) -> None:
    backend = swift_support.backend(make(slo_options(server, container)))
    data = payload(5 * SEGMENT)
    with pytest.raises(Boom):
        await backend.add(
            "broken",
            failing_stream(data, fail_after=3 * SEGMENT + 7),
            size=len(data) if declared else None,
        )
    assert swift_support.listing(conn, container) == []


async def test_segment_refused_by_swift_leaves_nothing(
    server: SwiftServer, conn: Any, container: str, make: Any
) -> None:
    # a quota below one segment: Swift answers 413 to every segment PUT
    conn.put_container(container, headers={"X-Container-Meta-Quota-Bytes": str(SEGMENT // 2)})
    backend = swift_support.backend(make(slo_options(server, container)))
    data = payload(3 * SEGMENT)
    with pytest.raises(errors.StorageFull):
        await backend.add("too-big", stream(data), size=len(data))
    assert swift_support.listing(conn, container) == []


async def test_manifest_refused_by_swift_leaves_nothing(
    server: SwiftServer,
    conn: Any,
    container: str,
    make: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = objects.put_manifest

    def sabotaged(client: Any, target: Any, entries: list[dict[str, Any]], **kw: Any) -> str:
        # a segment vanishes before the manifest is PUT: Swift refuses the manifest
        conn.delete_object(target.container, entries[1]["path"].split("/", 2)[2])
        return real(client, target, entries, **kw)

    monkeypatch.setattr(objects, "put_manifest", sabotaged)
    backend = swift_support.backend(make(slo_options(server, container)))
    data = payload(3 * SEGMENT)
    with pytest.raises(errors.BackendError):
        await backend.add("no-manifest", stream(data), size=len(data))
    assert swift_support.listing(conn, container) == []


async def test_lost_manifest_answer_is_recognised(
    server: SwiftServer,
    conn: Any,
    container: str,
    make: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = objects.put_manifest

    def answer_lost(client: Any, target: Any, entries: list[dict[str, Any]], **kw: Any) -> str:
        real(client, target, entries, **kw)
        raise errors.RemoteUnavailable("connection reset while reading the answer")

    monkeypatch.setattr(objects, "put_manifest", answer_lost)
    backend = swift_support.backend(make(slo_options(server, container)))
    data = payload(2 * SEGMENT + 3)
    result = await backend.add("committed", stream(data), size=len(data))
    monkeypatch.setattr(objects, "put_manifest", real)
    assert await read_all(backend, result.location) == data


async def test_cancelled_segmented_upload_leaves_nothing(
    server: SwiftServer, conn: Any, container: str, make: Any
) -> None:
    backend = swift_support.backend(make(slo_options(server, container)))
    gate = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield payload(2 * SEGMENT + 100)
        gate.set()
        await asyncio.sleep(3600)
        yield b"never"

    task = asyncio.create_task(backend.add("cancelled", slow(), size=None))
    await gate.wait()
    for _ in range(200):  # until a segment is complete in Swift
        if swift_support.listing(conn, container):
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert swift_support.listing(conn, container) == []


@pytest.mark.parametrize("slo", [False, True], ids=["single-put", "slo"])
async def test_if_none_match_refuses_a_duplicate_that_head_missed(
    server: SwiftServer,
    conn: Any,
    container: str,
    make: Any,
    monkeypatch: pytest.MonkeyPatch,
    slo: bool,
) -> None:
    options = (
        slo_options(server, container) if slo else server.options(swift_store_container=container)
    )
    backend = swift_support.backend(make(options))
    original = payload(3 * SEGMENT if slo else 1000, seed=1)
    first = await backend.add("dup", stream(original), size=len(original))
    before = swift_support.listing(conn, container)
    # the object "appears" between the driver's HEAD and its PUT
    monkeypatch.setattr(objects, "head_object", lambda *a, **kw: None)
    other = payload(len(original), seed=2)
    with pytest.raises(errors.AlreadyExists):
        await backend.add("dup", stream(other), size=len(other))
    monkeypatch.undo()
    assert swift_support.listing(conn, container) == before
    assert await read_all(backend, first.location) == original


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
async def test_overwrite_removes_the_replaced_segments(
    server: SwiftServer, conn: Any, container: str, make: Any, nested: bool
) -> None:
    driver = make(slo_options(server, container))
    if nested:
        driver.max_manifest_segments = 2
    backend = swift_support.backend(driver)
    await backend.add("img", stream(payload(2 * SEGMENT + 9)), size=2 * SEGMENT + 9)
    assert len(swift_support.listing(conn, container)) == (6 if nested else 4)
    result = await backend.add("img", stream(b"small now"), size=9, mode="overwrite")
    assert swift_support.listing(conn, container) == ["img"]
    assert await read_all(backend, result.location) == b"small now"


async def test_corrupted_upload_is_removed(
    server: SwiftServer, conn: Any, container: str, make: Any
) -> None:
    class Corrupting(SwiftDriver):
        async def add(self, *args: Any, **kwargs: Any) -> base.Stored:
            stored = await super().add(*args, **kwargs)
            assert stored.md5 is not None  # Swift's ETag of a single PUT
            return dataclasses.replace(stored, md5="0" * 32)

    backend = swift_support.backend(
        make(server.options(swift_store_container=container), cls=Corrupting)
    )
    with pytest.raises(errors.BackendError, match="md5"):
        await backend.add("damaged", stream(b"some bytes"), size=10)
    assert swift_support.listing(conn, container) == []


# ---------------------------------------------------------------------- DLO (glance_store's)


def build_dlo(conn: Any, container: str, name: str, pieces: list[bytes]) -> None:
    conn.put_container(container)
    for number, piece in enumerate(pieces, start=1):
        conn.put_object(container, f"{name}-{number:05d}", piece)
    conn.put_object(container, name, b"", headers={"X-Object-Manifest": f"{container}/{name}-"})


async def test_dlo_read_and_delete_every_listing_page(
    server: SwiftServer, conn: Any, container: str, make: Any
) -> None:
    pieces = [payload(40_000 + n, seed=n) for n in range(8)]
    data = b"".join(pieces)
    build_dlo(conn, container, "old-dlo", pieces)
    conn.put_object(container, "neighbour", b"keep me")
    driver = make(server.options(swift_store_container=container))
    driver.listing_page_size = 3  # eight segments: three pages
    backend = swift_support.backend(driver)
    location = locations.parse(f"{_scheme(server)}://{_hostpath(server)}/{container}/old-dlo")
    assert await backend.size(location) == len(data)
    assert await read_all(backend, location) == data
    span = base.ByteRange(39_990, 100_000)
    assert await read_all(backend, location, byte_range=span) == data[39_990:139_990]
    await backend.delete(location)
    assert swift_support.listing(conn, container) == ["neighbour"]
    await backend.delete(location)  # idempotent


# ---------------------------------------------------------------------- resumed reads


@pytest.mark.parametrize("how", ["close", "reset"])
async def test_get_resumes_after_dropped_connections(
    server: SwiftServer,
    conn: Any,
    container: str,
    make: Any,
    faultproxy: types.ModuleType,
    how: str,
) -> None:
    data = payload(1_500_000, seed=21)
    seeded = await swift_support.backend(make(server.options(swift_store_container=container))).add(
        "resume", stream(data), size=len(data)
    )
    storage = urllib.parse.urlsplit(server.storage_url())
    proxy = faultproxy.FaultProxy(
        target=(storage.hostname, storage.port),
        faults=faultproxy.Faults(cut_after=300_000, how=how),
    )
    async with proxy:
        endpoint = f"{storage.scheme}://127.0.0.1:{proxy.port}{storage.path}"

        def behind(retries: int) -> Any:
            return swift_support.backend(
                make(
                    server.options(
                        swift_store_container=container,
                        swift_store_endpoint=endpoint,
                        swift_store_retry_get_count=retries,
                    )
                )
            )

        patient = behind(20)
        assert await read_all(patient, seeded.location) == data
        span = base.ByteRange(100_000, 1_200_000)
        assert await read_all(patient, seeded.location, byte_range=span) == data[100_000:1_300_000]

        received = bytearray()
        with pytest.raises(errors.RemoteUnavailable, match="swift_store_retry_get_count"):
            async with behind(2).get(seeded.location) as blob:
                async for chunk in blob:
                    received += chunk
        assert 0 < len(received) < len(data)
        assert data.startswith(bytes(received))  # what arrived is right; it never ends short


async def test_unreachable_swift_raises_never_zero(
    server: SwiftServer, container: str, make: Any
) -> None:
    storage = urllib.parse.urlsplit(server.storage_url())
    backend = swift_support.backend(
        make(
            server.options(
                swift_store_container=container,
                swift_store_endpoint=f"http://127.0.0.1:9{storage.path}",
            )
        )
    )
    location = await backend.locate("anything")
    with pytest.raises(errors.RemoteUnavailable):
        await backend.size(location)


# ---------------------------------------------------------------------- multi-tenant


async def test_multi_tenant_container_per_image_and_acls(
    server: SwiftServer, conn: Any, make: Any
) -> None:
    prefix = swift_support.unique("kgmt")
    image_id = str(uuid.uuid4())
    per_image = f"{prefix}_{image_id}"
    with swift_support.scratch_containers(conn, per_image):
        driver = make(
            server.options(
                swift_store_container=prefix,
                swift_store_multi_tenant=True,
                swift_store_create_container_on_put=False,  # per-image containers regardless
                swift_store_admin_tenants="adm1, adm2",
            )
        )
        backend = swift_support.backend(driver)
        result = await backend.add(image_id, stream(b"tenant image"), size=12)
        storage = server.storage_url()
        assert result.location.uri(credentials=True) == (
            f"{_scheme(server)}://{storage.split('://', 1)[1]}/{per_image}/{image_id}"
        )
        assert swift_support.listing(conn, per_image) == [image_id]
        assert driver.owns(result.location)

        readers, writers = ["t1", "t2"], ["w1"]
        await driver.set_acls(result.location, read_tenants=readers, write_tenants=writers)
        head = conn.head_container(per_image)
        assert head["x-container-read"] == "t1:*,t2:*"
        assert head["x-container-write"] == "w1:*,adm1:*,adm2:*"
        assert readers == ["t1", "t2"] and writers == ["w1"]  # never mutated
        await driver.set_acls(result.location, public=True)
        head = conn.head_container(per_image)
        assert head["x-container-read"] == "*:*"
        assert head["x-container-write"] == "adm1:*,adm2:*"

        await backend.delete(result.location)
        assert not swift_support.container_exists(conn, per_image)
        await backend.delete(result.location)


async def test_multi_tenant_service_user_reaches_other_accounts(
    server: SwiftServer, conn: Any, make: Any
) -> None:
    """A reseller admin service user writes to and reads from tenants' accounts."""
    prefix = swift_support.unique("kgmt")
    account1 = server.storage_url()
    driver = make(
        {
            "swift_store_auth_address": server.auth_url,
            "swift_store_auth_version": "1",
            "swift_store_user": server.admin_user,
            "swift_store_key": server.admin_key,
            "swift_store_multi_tenant": True,
            "swift_store_container": prefix,
            "swift_store_endpoint": account1,
        }
    )
    backend = swift_support.backend(driver)
    result = await backend.add("mt-image", stream(b"in account one"), size=14)
    with swift_support.scratch_containers(conn, f"{prefix}_mt-image"):
        assert swift_support.listing(conn, f"{prefix}_mt-image") == ["mt-image"]
    conn2 = server.connection(user=server.user2, key=server.key2)
    other = swift_support.unique("kgmt2")
    try:
        conn2.put_container(other)
        conn2.put_object(other, "theirs", b"account two")
        url2 = server.storage_url(user=server.user2, key=server.key2)
        location = locations.parse(f"{_scheme(server)}://{url2.split('://', 1)[1]}/{other}/theirs")
        assert driver.owns(location)
        assert await read_all(backend, location) == b"account two"
    finally:
        swift_support.wipe(conn2, other)
        conn2.close()
    del result


async def test_acls_need_multi_tenant(server: SwiftServer, container: str, make: Any) -> None:
    driver = make(server.options(swift_store_container=container))
    location = await driver.locate("x")
    with pytest.raises(errors.Unsupported, match="swift_store_multi_tenant"):
        await driver.set_acls(location, public=True)


# ---------------------------------------------------------------------- authentication


async def test_refused_token_is_replaced(server: SwiftServer, container: str, make: Any) -> None:
    driver = make(server.options(swift_store_container=container))
    backend = swift_support.backend(driver)
    result = await backend.add("auth", stream(b"x" * 10), size=10)
    tokens = driver._service.tokens
    stale = dataclasses.replace(tokens.get(), value="AUTH_tk" + "0" * 32)
    tokens._token = stale  # as if the token store forgot it
    assert await backend.size(result.location) == 10
    assert tokens.get() is not stale


async def test_v1_tokens_expire_soon(server: SwiftServer) -> None:
    options = SwiftOptions(**server.options())
    account = swift_support_account(options)

    class Counting(auth.V1Authenticator):
        calls = 0

        def authenticate(self, *, now: float) -> auth.Token:
            Counting.calls += 1
            return super().authenticate(now=now)

    source = Counting(account, tls=auth.Tls(), timeout=10)
    token = await asyncio.to_thread(source.authenticate, now=0.0)
    assert token.expires_at is not None and token.expires_at > 60  # tempauth says when
    lifetime = token.expires_at
    patient = auth.TokenCache(source, expire_soon=60)
    first = await asyncio.to_thread(patient.get)
    assert await asyncio.to_thread(patient.get) is first
    eager = auth.TokenCache(source, expire_soon=lifetime + 3600)  # always "expiring soon"
    before = Counting.calls
    await asyncio.to_thread(eager.get)
    await asyncio.to_thread(eager.get)
    assert Counting.calls == before + 2


def swift_support_account(options: SwiftOptions) -> Any:
    from kglance.drivers.swift import accounts

    return accounts.from_options(options)


async def test_wrong_key_is_reported_without_secrets(
    server: SwiftServer, container: str, make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    driver = make(
        server.options(swift_store_container=container, swift_store_key="wrong-secret-key")
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.BackendError) as caught:
        await driver.check()
    assert "refused" in caught.value.message
    assert "wrong-secret-key" not in caplog.text + str(caught.value)


async def test_nothing_secret_reaches_the_logs(
    server: SwiftServer, container: str, make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        driver = make(server.options(swift_store_container=container))
        backend = swift_support.backend(driver)
        await driver.check()
        result = await backend.add("logged", stream(b"data"), size=4)
        await read_all(backend, result.location)
        await backend.delete(result.location)
        with pytest.raises(errors.NotFound):
            await backend.size(result.location)  # a 404, which swiftclient logs at INFO
        token = driver._service.tokens.get().value
    assert server.key not in caplog.text
    assert token not in caplog.text
    assert token[:16] not in caplog.text


async def test_checksum_of_single_put_matches_swift(
    server: SwiftServer, conn: Any, container: str, make: Any
) -> None:
    backend = swift_support.backend(make(server.options(swift_store_container=container)))
    data = payload(123_456)
    result = await backend.add("md5", stream(data), size=len(data))
    assert conn.head_object(container, "md5")["etag"] == hashlib.md5(data).hexdigest()
    assert result.checksum == hashlib.md5(data).hexdigest()


# ---------------------------------------------------------------------- through the sidecar


async def test_through_the_sidecar_with_glance_option_names(
    tmp_path: pathlib.Path, server: SwiftServer, conn: Any, container: str
) -> None:
    from kglance.sidecar.client import AsyncClient
    from tests.sidecar import harness

    config = harness.write_config(
        tmp_path / "glance-api.conf",
        textwrap.dedent(
            f"""\
            [DEFAULT]
            enabled_backends = objects:swift
            [glance_store]
            default_backend = objects
            [objects]
            store_description = "Swift"
            swift_store_config_file = {accounts_file(tmp_path, server)}
            default_swift_reference = ref1
            swift_store_container = {container}
            swift_store_create_container_on_put = True
            swift_store_large_object_size = 1
            swift_store_large_object_chunk_size = 2
            swift_store_admin_tenants = a, b
            swift_store_retry_get_count = 3
            """
        ),
    )
    build_dlo(conn, container, "old-dlo", [b"glance ", b"wrote ", b"this"])
    data = payload(2 * SEGMENT + 77, seed=31)
    with harness.running(harness.Sidecar(tmp_path, config=config)) as sidecar:
        async with AsyncClient(str(sidecar.socket)) as client:
            stored = await client.put("via-sidecar", stream(data), size=len(data))
            assert stored.location == f"swift+config://ref1/{container}/via-sidecar"
            assert len(manifest(conn, container, "via-sidecar")) == 3
            async with client.get("via-sidecar") as download:
                assert await download.read() == data
            span = base.ByteRange(SEGMENT - 5, 10)
            async with client.get("via-sidecar", byte_range=span) as download:
                assert await download.read() == data[SEGMENT - 5 : SEGMENT + 5]
            assert await client.stat("via-sidecar") == len(data)
            old = f"swift+config://ref1/{container}/old-dlo"
            async with client.read_location(old) as download:
                assert await download.read() == b"glance wrote this"
            await client.delete("via-sidecar")
        assert server.key not in sidecar.log_text()
    assert swift_support.listing(conn, container) == sorted(
        ["old-dlo", "old-dlo-00001", "old-dlo-00002", "old-dlo-00003"]
    )
