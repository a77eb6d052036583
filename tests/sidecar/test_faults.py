"""Faults: clients leaving, racing, the sidecar killed or stopped, its socket, a full disk.

Each case runs its own sidecar process (they kill or stop it), with the test process as the
client. Matrix: a client disconnecting mid-upload (sized and chunked), concurrent uploads of one
id, SIGKILL mid-upload then restart, SIGTERM with a stream in flight (finished within the grace
period, or cut when it stalls past it), the socket's mode, a stale socket replaced, a live one
or a regular file left alone, and ``507`` from a file-size limit on the server process.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import socket
import stat
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.sidecar import harness

IMAGE = harness.payload(4 * harness.MiB, seed=11)


@pytest.fixture
def datadir(tmp_path: Path) -> Path:
    path = tmp_path / "images"
    path.mkdir()
    return path


@pytest.fixture
def config(tmp_path: Path, datadir: Path) -> Path:
    text = harness.file_backends_config({"disk": datadir}, default="disk")
    return harness.write_config(tmp_path / "kglance.conf", text)


@pytest.fixture
def sidecar(tmp_path: Path, config: Path) -> Iterator[harness.Sidecar]:
    with harness.running(harness.Sidecar(tmp_path, config=config)) as sidecar:
        yield sidecar


def temp_files(datadir: Path) -> list[str]:
    return [name for name in os.listdir(datadir) if name.startswith(".kglance-tmp.")]


async def start_upload(
    socket_path: Path, image_id: str, *, chunked: bool = False, sent: int = harness.MiB
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw HTTP upload of ``IMAGE`` that stops after ``sent`` bytes of body."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(IMAGE)}"
    writer.write(f"PUT /v1/images/{image_id} HTTP/1.1\r\nHost: s\r\n{framing}\r\n\r\n".encode())
    await send_body(writer, IMAGE[:sent], chunked=chunked)
    return reader, writer


async def send_body(writer: asyncio.StreamWriter, data: bytes, *, chunked: bool = False) -> None:
    if chunked:
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    else:
        writer.write(data)
    await writer.drain()


async def read_status(reader: asyncio.StreamReader) -> int:
    line = await reader.readline()
    return int(line.split()[1])


# --------------------------------------------------------------------------- clients


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_disconnect_mid_upload_leaves_nothing(
    sidecar: harness.Sidecar, datadir: Path, chunked: bool
) -> None:
    image_id = str(uuid.uuid4())
    _, writer = await start_upload(sidecar.socket, image_id, chunked=chunked)
    await harness.eventually(lambda: len(temp_files(datadir)) == 1)  # the driver is writing
    writer.transport.abort()
    await harness.eventually(lambda: os.listdir(datadir) == [])
    await harness.eventually(lambda: len(sidecar.operations(image_id=image_id)) == 1)
    (line,) = sidecar.operations(image_id=image_id)
    assert line["outcome"] == "upload_interrupted"
    async with harness.session(sidecar.socket) as client:
        async with client.get(f"/v1/images/{image_id}") as resp:
            assert resp.status == 404
        async with client.get("/metrics") as resp:
            text = await resp.text()
    assert 'kglance_sidecar_streams_in_flight{backend="disk",op="put"} 0' in text
    assert 'code="upload_interrupted"' in text


async def test_concurrent_uploads_of_one_id(sidecar: harness.Sidecar, datadir: Path) -> None:
    racers = 5
    image_id = str(uuid.uuid4())
    gate = asyncio.Event()

    async def body(seed: int) -> AsyncIterator[bytes]:
        data = harness.payload(len(IMAGE), seed=seed)
        yield data[: harness.MiB]
        await gate.wait()
        yield data[harness.MiB :]

    async with harness.session(sidecar.socket) as client:

        async def upload(seed: int) -> int:
            headers = {"Content-Length": str(len(IMAGE))}
            url = f"/v1/images/{image_id}"
            async with client.put(url, data=body(seed), headers=headers) as resp:
                await resp.read()
                return resp.status

        uploads = [asyncio.create_task(upload(seed)) for seed in range(racers)]
        # every upload is past the existence check and writing its own temp file
        await harness.eventually(lambda: len(temp_files(datadir)) == racers)
        gate.set()
        statuses = await asyncio.gather(*uploads)
        assert sorted(statuses) == [201] + [409] * (racers - 1)
        async with client.get(f"/v1/images/{image_id}") as resp:
            winner = await resp.read()
    assert winner in {harness.payload(len(IMAGE), seed=seed) for seed in range(racers)}
    assert os.listdir(datadir) == [image_id]


# --------------------------------------------------------------------------- the process


async def test_sigkill_mid_upload_then_restart(tmp_path: Path, config: Path, datadir: Path) -> None:
    image_id = str(uuid.uuid4())
    first = harness.Sidecar(tmp_path, config=config)
    with harness.running(first):
        _, writer = await start_upload(first.socket, image_id)
        await harness.eventually(lambda: len(temp_files(datadir)) == 1)
        first.send(signal.SIGKILL)
        assert first.wait_exit() == -signal.SIGKILL
        writer.transport.abort()
    assert len(temp_files(datadir)) == 1  # the crash left a partial temp file
    assert first.socket.exists()  # and a stale socket
    with harness.running(harness.Sidecar(tmp_path, config=config)) as second:
        assert os.listdir(datadir) == []  # swept at start-up
        async with harness.session(second.socket) as client:
            async with client.get(f"/v1/images/{image_id}") as resp:
                assert resp.status == 404
            async with client.put(f"/v1/images/{image_id}", data=harness.body(IMAGE)) as resp:
                assert resp.status == 201
    assert os.listdir(datadir) == [image_id]


async def test_sigterm_finishes_streams_in_flight(
    tmp_path: Path, config: Path, datadir: Path
) -> None:
    image_id = str(uuid.uuid4())
    sidecar = harness.Sidecar(tmp_path, config=config, args=["--grace-period", "30"])
    with harness.running(sidecar):
        async with (
            harness.session(sidecar.socket) as prober,
            harness.session(sidecar.socket) as client,
        ):
            for session in (prober, client):  # keep-alive connections, idle during the stop
                async with session.get("/healthz") as resp:
                    assert resp.status == 200
            reader, writer = await start_upload(sidecar.socket, image_id)
            await harness.eventually(lambda: len(temp_files(datadir)) == 1)
            sidecar.send(signal.SIGTERM)
            await harness.eventually(lambda: not sidecar.socket.exists())  # not accepting
            with socket.socket(socket.AF_UNIX) as probe, pytest.raises(OSError):
                probe.connect(str(sidecar.socket))
            async with prober.get("/readyz") as resp:
                assert resp.status == 503
                assert (await resp.json())["status"] == "draining"
            async with client.get("/v1/backends") as resp:
                assert resp.status == 503
                assert harness.error_code(await resp.read()) == "shutting_down"
        await send_body(writer, IMAGE[harness.MiB :])
        assert await read_status(reader) == 201
        writer.close()
        await writer.wait_closed()
        assert sidecar.wait_exit() == 0
    assert (datadir / image_id).read_bytes() == IMAGE
    messages = [r["message"] for r in sidecar.log_records()]
    assert messages.index("stopping") < messages.index("put ok") < messages.index("stopped")


async def test_sigterm_cuts_streams_that_outlast_the_grace_period(
    tmp_path: Path, config: Path, datadir: Path
) -> None:
    image_id = str(uuid.uuid4())
    sidecar = harness.Sidecar(tmp_path, config=config, args=["--grace-period", "0.5"])
    with harness.running(sidecar):
        reader, writer = await start_upload(sidecar.socket, image_id)
        await harness.eventually(lambda: len(temp_files(datadir)) == 1)
        sidecar.send(signal.SIGTERM)
        assert sidecar.wait_exit() == 0
        assert await reader.read() == b""  # closed without an answer
        writer.close()
    assert os.listdir(datadir) == []
    assert not sidecar.socket.exists()


# --------------------------------------------------------------------------- the socket


@pytest.mark.parametrize(("args", "mode"), [([], 0o660), (["--socket-mode", "0600"], 0o600)])
def test_socket_mode(tmp_path: Path, config: Path, args: list[str], mode: int) -> None:
    with harness.running(harness.Sidecar(tmp_path, config=config, args=args)) as sidecar:
        info = sidecar.socket.stat()
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == mode
    assert not sidecar.socket.exists()


def test_stale_socket_is_replaced(tmp_path: Path, config: Path) -> None:
    stale = tmp_path / "kglance.sock"
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(str(stale))
    leftover.close()  # the file stays, nothing listens: what a crash leaves
    with harness.running(harness.Sidecar(tmp_path, config=config, socket_path=stale)) as sidecar:
        status, _ = harness.request_sync(sidecar.socket, "GET", "/healthz")
        assert status == 200


def test_live_socket_is_not_stolen(tmp_path: Path, config: Path) -> None:
    with harness.running(harness.Sidecar(tmp_path, config=config)) as first:
        inode = first.socket.stat().st_ino
        second = harness.Sidecar(tmp_path, config=config, socket_path=first.socket).start()
        assert second.wait_exit() == 1
        assert "another server is listening" in second.log_text()
        assert first.socket.stat().st_ino == inode
        assert harness.request_sync(first.socket, "GET", "/healthz")[0] == 200


def test_regular_file_at_the_socket_path_is_left_alone(tmp_path: Path, config: Path) -> None:
    path = tmp_path / "not-a-socket"
    path.write_text("precious")
    sidecar = harness.Sidecar(tmp_path, config=config, socket_path=path).start()
    assert sidecar.wait_exit() == 1
    assert "is not a socket" in sidecar.log_text()
    assert path.read_text() == "precious"


# --------------------------------------------------------------------------- storage full


def _limit_file_size() -> None:
    # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG, as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (2 * harness.MiB, 2 * harness.MiB))


async def test_storage_full_is_507_and_leaves_nothing(
    tmp_path: Path, config: Path, datadir: Path
) -> None:
    sidecar = harness.Sidecar(tmp_path, config=config, preexec_fn=_limit_file_size)
    with harness.running(sidecar):
        async with harness.session(sidecar.socket) as client:
            image_id = str(uuid.uuid4())
            async with client.put(f"/v1/images/{image_id}", data=harness.body(IMAGE)) as resp:
                assert resp.status == 507
                assert harness.error_code(await resp.read()) == "storage_full"
            async with client.put(f"/v1/images/{image_id}", data=b"fits") as resp:
                assert resp.status == 201
    assert os.listdir(datadir) == [image_id]
