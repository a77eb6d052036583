"""The Python clients against a real sidecar process over a real socket.

Both clients are exercised: ``AsyncClient`` (aiohttp) and the blocking ``Client``
(http.client). What is checked is what a caller relies on: round trips with every kind of
body (bytes, file, iterable, async iterable), Glance's field names in the result, ranges and
the range actually served, reads by location, and errors arriving as the same
``kglance.drivers.errors`` classes the drivers raise in-process.
"""

from __future__ import annotations

import hashlib
import io
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kglance.drivers import errors
from kglance.drivers.base import ByteRange
from kglance.sidecar import wire
from kglance.sidecar.client import AsyncClient, Client, SidecarUnavailable
from tests.sidecar import harness

IMAGE = harness.payload(3 * harness.MiB + 321, seed=7)


@pytest.fixture(scope="module")
def datadirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("client")
    dirs = {"fast": root / "fast", "slow": root / "slow"}
    for directory in dirs.values():
        directory.mkdir()
    return dirs


@pytest.fixture(scope="module")
def sidecar(datadirs: dict[str, Path]) -> Iterator[harness.Sidecar]:
    work = datadirs["fast"].parent
    config = harness.write_config(
        work / "glance-api.conf", harness.file_backends_config(datadirs, default="fast")
    )
    with harness.running(harness.Sidecar(work, config=config)) as sidecar:
        yield sidecar


@pytest.fixture
async def aclient(sidecar: harness.Sidecar) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(str(sidecar.socket)) as client:
        yield client


@pytest.fixture
def client(sidecar: harness.Sidecar) -> Iterator[Client]:
    with Client(str(sidecar.socket)) as client:
        yield client


def new_id() -> str:
    return str(uuid.uuid4())


async def async_pieces(data: bytes, piece: int = 100_000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


def pieces(data: bytes, piece: int = 100_000) -> Iterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


# -- AsyncClient --------------------------------------------------------------------------------


async def test_put_answers_with_glance_fields_and_get_returns_the_bytes(
    aclient: AsyncClient,
) -> None:
    image_id = new_id()
    result = await aclient.put(image_id, IMAGE)
    assert result.image_id == image_id
    assert result.backend == "fast"
    assert result.size == len(IMAGE)
    assert result.checksum == hashlib.md5(IMAGE).hexdigest()
    assert (result.os_hash_algo, result.os_hash_value) == (
        "sha512",
        hashlib.sha512(IMAGE).hexdigest(),
    )
    assert result.location.startswith("file://") and result.location.endswith(image_id)
    assert result.metadata.get("store") == "fast"
    assert set(result.as_json()) == {
        "image_id",
        "backend",
        "location",
        "size",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "metadata",
    }
    async with aclient.get(image_id) as download:
        assert download.size == len(IMAGE)
        assert download.served == ByteRange(0, len(IMAGE))
        assert await download.read() == IMAGE
    assert await aclient.stat(image_id) == len(IMAGE)


@pytest.fixture
def image_file(tmp_path: Path) -> Iterator[io.BufferedReader]:
    source = tmp_path / "disk.img"
    source.write_bytes(IMAGE)
    with open(source, "rb") as file:
        yield file


async def test_put_streams_a_file_an_async_iterable_and_a_declared_size(
    aclient: AsyncClient, image_file: io.BufferedReader
) -> None:
    from_file = await aclient.put(new_id(), image_file)
    chunked = await aclient.put(new_id(), async_pieces(IMAGE))
    declared = await aclient.put(new_id(), async_pieces(IMAGE), size=len(IMAGE))
    digest = hashlib.sha512(IMAGE).hexdigest()
    assert {from_file.os_hash_value, chunked.os_hash_value, declared.os_hash_value} == {digest}
    assert from_file.size == chunked.size == declared.size == len(IMAGE)


async def test_put_with_another_hash_algorithm_and_a_backend(aclient: AsyncClient) -> None:
    result = await aclient.put(new_id(), IMAGE, hash_algo="sha256", backend="slow")
    assert result.backend == "slow"
    assert (result.os_hash_algo, result.os_hash_value) == (
        "sha256",
        hashlib.sha256(IMAGE).hexdigest(),
    )


async def test_checksum_is_verified_on_arrival(aclient: AsyncClient) -> None:
    good = f"sha256:{hashlib.sha256(IMAGE).hexdigest()}"
    assert (await aclient.put(new_id(), IMAGE, checksum=good)).size == len(IMAGE)
    image_id = new_id()
    with pytest.raises(errors.ChecksumMismatch) as caught:
        await aclient.put(image_id, IMAGE, checksum=f"md5:{hashlib.md5(b'other').hexdigest()}")
    assert caught.value.http_status == 422
    with pytest.raises(errors.NotFound):
        await aclient.stat(image_id)


async def test_declared_size_mismatch_is_size_mismatch_and_stores_nothing(
    aclient: AsyncClient,
) -> None:
    image_id = new_id()
    with pytest.raises(errors.SizeMismatch):  # chunked: the server holds it to X-Image-Size
        await aclient.put(image_id, async_pieces(IMAGE), size=len(IMAGE) + 1)
    with pytest.raises(errors.SizeMismatch):  # bytes: refused before anything is sent
        await aclient.put(image_id, b"abc", size=4)
    with pytest.raises(errors.NotFound):
        await aclient.stat(image_id)


async def test_a_file_shorter_than_its_declared_size_aborts_the_upload(
    aclient: AsyncClient, image_file: io.BufferedReader
) -> None:
    image_id = new_id()
    with pytest.raises(errors.SizeMismatch):
        await aclient.put(image_id, image_file, size=len(IMAGE) + 1000)
    with pytest.raises(errors.NotFound):
        await aclient.stat(image_id)


async def test_server_errors_arrive_as_the_driver_error_classes(aclient: AsyncClient) -> None:
    image_id = new_id()
    await aclient.put(image_id, b"first")
    with pytest.raises(errors.AlreadyExists) as duplicate:  # refused while the body streams
        await aclient.put(image_id, IMAGE)
    assert duplicate.value.code == "duplicate"
    with pytest.raises(errors.InvalidImageId):
        await aclient.put("..", b"x")
    with pytest.raises(errors.InvalidImageId):
        await aclient.put("a/b", b"x")
    with pytest.raises(errors.UnknownBackend):
        await aclient.put(new_id(), b"x", backend="nowhere")
    with pytest.raises(errors.UnknownHashAlgorithm):
        await aclient.put(new_id(), b"x", hash_algo="crc-nothing")
    with pytest.raises(errors.NotFound):
        async with aclient.get(new_id()):
            pass
    with pytest.raises(errors.UnknownBackend):
        async with aclient.get(image_id, backend="nowhere"):
            pass
    with pytest.raises(errors.NotFound):
        await aclient.delete(new_id())
    with pytest.raises(errors.NotFound):  # HEAD has no body: classed by its status
        await aclient.stat(new_id())


async def test_ranges_report_what_was_served(aclient: AsyncClient) -> None:
    image_id = new_id()
    await aclient.put(image_id, IMAGE)
    async with aclient.get(image_id, byte_range=ByteRange(0, 512)) as download:
        assert (download.size, download.served) == (len(IMAGE), ByteRange(0, 512))
        assert await download.read() == IMAGE[:512]
    async with aclient.get(image_id, byte_range=ByteRange(len(IMAGE) - 10)) as download:
        assert download.served == ByteRange(len(IMAGE) - 10, 10)
        assert await download.read() == IMAGE[-10:]
    past_end = ByteRange(len(IMAGE) - 5, 100)  # cut to what remains
    async with aclient.get(image_id, byte_range=past_end) as download:
        assert download.served == ByteRange(len(IMAGE) - 5, 5)
        assert await download.read() == IMAGE[-5:]
    with pytest.raises(errors.RangeNotSatisfiable) as caught:
        async with aclient.get(image_id, byte_range=ByteRange(len(IMAGE))):
            pass
    assert caught.value.size == len(IMAGE)  # from Content-Range: bytes */size
    assert caught.value.http_status == 416


async def test_empty_image(aclient: AsyncClient) -> None:
    image_id = new_id()
    result = await aclient.put(image_id, b"")
    assert (result.size, result.checksum) == (0, hashlib.md5(b"").hexdigest())
    async with aclient.get(image_id) as download:
        assert download.size == 0
        assert await download.read() == b""
    with pytest.raises(errors.RangeNotSatisfiable):
        async with aclient.get(image_id, byte_range=ByteRange(0, 1)):
            pass


async def test_read_by_location(aclient: AsyncClient, datadirs: dict[str, Path]) -> None:
    image_id = new_id()
    location = (await aclient.put(image_id, IMAGE)).location
    async with aclient.read_location(location, byte_range=ByteRange(1000, 24)) as download:
        assert download.served == ByteRange(1000, 24)
        assert await download.read() == IMAGE[1000:1024]
    assert await aclient.stat_location(location) == len(IMAGE)
    with pytest.raises(errors.InvalidLocation):  # the other backend's datadir is not its own
        async with aclient.read_location(location, backend="slow"):
            pass
    with pytest.raises(errors.InvalidRequest):  # HEAD: no body, so classed by status only
        await aclient.stat_location(location, backend="slow")
    with pytest.raises(errors.InvalidLocation):
        async with aclient.read_location("file:///etc/passwd"):
            pass
    with pytest.raises(errors.UnknownBackend):
        async with aclient.read_location("swift://user:key@keystone/v3/images/obj"):
            pass


async def test_backends_health_ready_and_metrics(aclient: AsyncClient) -> None:
    backends = {b.id: b for b in await aclient.backends()}
    assert set(backends) == {"fast", "slow"}
    assert backends["fast"].default and not backends["slow"].default
    assert backends["fast"].type == "file"
    assert backends["fast"].description == "fast disks"
    assert {"read", "write", "ranged_read"} <= set(backends["fast"].capabilities)
    assert await aclient.health()
    assert await aclient.ready()
    image_id = new_id()
    await aclient.put(image_id, b"counted")
    assert 'kglance_sidecar_received_bytes_total{backend="fast"}' in await aclient.metrics()


async def test_no_sidecar_is_sidecar_unavailable(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sock"
    async with AsyncClient(str(missing)) as client:
        with pytest.raises(SidecarUnavailable) as caught:
            await client.backends()
    assert caught.value.retryable
    assert isinstance(caught.value, errors.RemoteUnavailable)
    assert str(missing) in caught.value.message
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(stale))  # a socket file nobody listens on: what a crash leaves
    async with AsyncClient(str(stale)) as client:
        with pytest.raises(SidecarUnavailable, match="no sidecar listening on"):
            await client.health()


async def test_a_sidecar_dying_mid_stream_is_a_short_read(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    config = harness.write_config(
        tmp_path / "one.conf",
        harness.file_backends_config({"one": tmp_path / "data"}, default="one"),
    )
    big = harness.payload(16 * harness.MiB, seed=3)
    with harness.running(harness.Sidecar(tmp_path, config=config)) as sidecar:
        async with AsyncClient(str(sidecar.socket)) as client:
            image_id = new_id()
            await client.put(image_id, big)
            received = 0
            with pytest.raises(errors.RemoteUnavailable, match="ended after"):
                async with client.get(image_id) as download:
                    async for chunk in download:
                        if not received:
                            sidecar.send(signal.SIGKILL)
                            sidecar.wait_exit()
                        received += len(chunk)
            assert 0 < received < len(big)


# -- Client (blocking) --------------------------------------------------------------------------


def test_sync_round_trip_with_every_kind_of_body(client: Client, tmp_path: Path) -> None:
    source = tmp_path / "disk.img"
    source.write_bytes(IMAGE)
    ids = [new_id() for _ in range(4)]
    with open(source, "rb") as file:
        results = [
            client.put(ids[0], IMAGE),
            client.put(ids[1], file),
            client.put(ids[2], pieces(IMAGE)),
            client.put(ids[3], io.BytesIO(IMAGE), size=len(IMAGE)),
        ]
    assert {r.os_hash_value for r in results} == {hashlib.sha512(IMAGE).hexdigest()}
    for image_id in ids:
        with client.get(image_id) as download:
            assert download.size == len(IMAGE)
            assert b"".join(download) == IMAGE
        assert client.stat(image_id) == len(IMAGE)
        client.delete(image_id)
        with pytest.raises(errors.NotFound):
            client.stat(image_id)


def test_sync_ranges_and_locations(client: Client) -> None:
    image_id = new_id()
    location = client.put(image_id, IMAGE, backend="slow").location
    with client.get(image_id, backend="slow", byte_range=ByteRange(5, 5)) as download:
        assert (download.served, download.read()) == (ByteRange(5, 5), IMAGE[5:10])
    with client.read_location(location, byte_range=ByteRange(len(IMAGE) - 3)) as download:
        assert download.read() == IMAGE[-3:]
    assert client.stat_location(location) == len(IMAGE)
    with (
        pytest.raises(errors.RangeNotSatisfiable) as caught,
        client.get(image_id, backend="slow", byte_range=ByteRange(len(IMAGE) + 1)),
    ):
        pass
    assert caught.value.size == len(IMAGE)


def test_sync_errors_arrive_as_the_driver_error_classes(client: Client) -> None:
    image_id = new_id()
    client.put(image_id, IMAGE)
    with pytest.raises(errors.AlreadyExists):  # refused while the body is still being sent
        client.put(image_id, pieces(IMAGE))
    with pytest.raises(errors.SizeMismatch):
        client.put(new_id(), pieces(IMAGE), size=len(IMAGE) - 1)
    with pytest.raises(errors.ChecksumMismatch):
        client.put(new_id(), IMAGE, checksum="sha512:" + "0" * 128)
    with pytest.raises(errors.UnknownBackend), client.get(image_id, backend="nowhere"):
        pass
    with pytest.raises(errors.NotFound):
        client.delete(new_id())


def test_sync_service_endpoints(client: Client) -> None:
    assert [b.id for b in client.backends()] == ["fast", "slow"]
    assert client.health() and client.ready()
    assert "kglance_sidecar_streams_in_flight" in client.metrics()


def test_sync_no_sidecar(tmp_path: Path) -> None:
    with pytest.raises(SidecarUnavailable, match="no sidecar listening on"):
        Client(str(tmp_path / "none.sock")).stat("x")


def test_socket_path_comes_from_the_environment(
    sidecar: harness.Sidecar, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(wire.SOCKET_ENV, str(sidecar.socket))
    assert Client().socket_path == str(sidecar.socket)
    assert Client().health()
    monkeypatch.delenv(wire.SOCKET_ENV)
    assert Client().socket_path == "./kglance.sock"


# -- the error mapping --------------------------------------------------------------------------


def _all_error_classes() -> list[type[errors.StoreError]]:
    found: list[type[errors.StoreError]] = []
    pending: list[type[errors.StoreError]] = [errors.StoreError]
    while pending:
        cls = pending.pop()
        if cls.__module__ == errors.__name__:
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("cls", _all_error_classes(), ids=lambda cls: cls.code)
def test_every_error_code_maps_back_to_its_class(cls: type[errors.StoreError]) -> None:
    body = f'{{"error": {{"code": "{cls.code}", "message": "why"}}}}'.encode()
    exc = wire.error_from_response(
        request="GET /x", status=cls.http_status, reason="", headers={}, body=body
    )
    assert type(exc) is cls
    assert exc.message == "why"


def test_error_details_and_fallbacks() -> None:
    size_body = (
        b'{"error": {"code": "size_mismatch", "message": "m", "expected": 5, "received": 3}}'
    )
    exc = wire.error_from_response(
        request="PUT /x", status=400, reason="", headers={}, body=size_body
    )
    assert isinstance(exc, errors.SizeMismatch) and (exc.expected, exc.received) == (5, 3)
    range_body = b'{"error": {"code": "range_not_satisfiable", "message": "m"}}'
    headers = {"Content-Range": "bytes */42"}
    exc = wire.error_from_response(
        request="GET /x", status=416, reason="", headers=headers, body=range_body
    )
    assert isinstance(exc, errors.RangeNotSatisfiable) and exc.size == 42
    # codes this client does not know fall back to the class of their status
    unknown = b'{"error": {"code": "upload_interrupted", "message": "gone"}}'
    exc = wire.error_from_response(
        request="PUT /x", status=400, reason="", headers={}, body=unknown
    )
    assert type(exc) is errors.InvalidRequest and exc.message == "gone"
    exc = wire.error_from_response(
        request="GET /x", status=418, reason="Teapot", headers={}, body=b""
    )
    assert type(exc) is errors.StoreError and "GET /x answered 418 Teapot" in exc.message
    headed = {wire.ERROR_CODE_HEADER: "unknown_backend"}
    exc = wire.error_from_response(
        request="HEAD /x", status=404, reason="", headers=headed, body=b""
    )
    assert type(exc) is errors.UnknownBackend
