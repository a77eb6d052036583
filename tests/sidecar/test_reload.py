"""Hot reload of the configuration and of secret files, as Kubernetes updates them.

A mounted ConfigMap or Secret is a directory whose visible files are symlinks through
``..data``, itself a symlink that the kubelet swaps atomically to a new hidden directory
(``atomic_update`` below does the same). Matrix: a ConfigMap swap adding a backend; an
in-place edit; a secret file swap moving a backend's datadir; a broken new file that leaves the
old configuration serving, then its fix; an upload in flight across a reload, served to the
end by the old backends, which are closed afterwards; SIGHUP with polling disabled.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sidecar import harness

_versions = itertools.count()


def atomic_update(directory: Path, files: dict[str, str]) -> None:
    """Replace the files of a mounted volume the way the kubelet does."""
    directory.mkdir(exist_ok=True)
    version = directory / f"..{next(_versions)}_{uuid.uuid4().hex[:6]}"
    version.mkdir()
    for name, text in files.items():
        (version / name).write_text(text)
    data = directory / "..data"
    old = data.resolve() if data.is_symlink() else None
    staging = directory / "..data_tmp"
    staging.symlink_to(version.name)
    staging.rename(data)  # the atomic swap
    for name in files:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")
    if old is not None:
        for child in old.iterdir():
            child.unlink()
        old.rmdir()


def backends_text(datadirs: dict[str, Path | str], *, default: str) -> str:
    return harness.file_backends_config({k: Path(v) for k, v in datadirs.items()}, default=default)


@pytest.fixture
def configmap(tmp_path: Path) -> Path:
    return tmp_path / "configmap"


@pytest.fixture
def sidecar(tmp_path: Path, configmap: Path) -> Iterator[harness.Sidecar]:
    atomic_update(configmap, {"glance-api.conf": backends_text({"a": tmp_path / "a"}, default="a")})
    sidecar = harness.Sidecar(
        tmp_path, config=configmap / "glance-api.conf", args=["--reload-interval", "0.1"]
    )
    with harness.running(sidecar):
        yield sidecar


async def backend_ids(sidecar: harness.Sidecar) -> list[str]:
    async with harness.session(sidecar.socket) as client, client.get("/v1/backends") as resp:
        return [b["id"] for b in await resp.json()]


def reloads(sidecar: harness.Sidecar, outcome: str) -> list[dict[str, object]]:
    return [
        r
        for r in sidecar.log_records()
        if r.get("event") == "reload" and r.get("outcome") == outcome
    ]


async def test_configmap_swap_is_applied(
    sidecar: harness.Sidecar, configmap: Path, tmp_path: Path
) -> None:
    assert await backend_ids(sidecar) == ["a"]
    text = backends_text({"a": tmp_path / "a", "b": tmp_path / "b"}, default="b")
    atomic_update(configmap, {"glance-api.conf": text})

    async def applied() -> bool:
        return await backend_ids(sidecar) == ["a", "b"]

    await harness.eventually(applied)
    async with harness.session(sidecar.socket) as client:
        async with client.put(f"/v1/images/{uuid.uuid4()}", data=b"new default") as resp:
            assert (await resp.json())["backend"] == "b"
        async with client.get("/metrics") as resp:
            metrics = await resp.text()
    assert 'kglance_sidecar_config_reloads_total{outcome="ok"} 1' in metrics
    assert "kglance_sidecar_config_generation 2" in metrics


async def test_broken_config_keeps_the_old_one(
    sidecar: harness.Sidecar, configmap: Path, tmp_path: Path
) -> None:
    image_id = str(uuid.uuid4())
    real = (configmap / "glance-api.conf").resolve()
    good = real.read_text()
    # an in-place edit (no symlink swap) with a bad value
    real.write_text(good + "filesystem_store_chunk_size = huge\n")
    await harness.eventually(lambda: len(reloads(sidecar, "error")) == 1)
    (failure,) = reloads(sidecar, "error")
    assert "[a] filesystem_store_chunk_size" in str(failure["error"])
    async with harness.session(sidecar.socket) as client:
        async with client.put(f"/v1/images/{image_id}", data=b"still served") as resp:
            assert resp.status == 201
        async with client.get("/readyz") as resp:
            assert resp.status == 200
    # then a swap to an unknown store type, then the fix
    broken = good.replace("a:file", "a:tape")
    atomic_update(configmap, {"glance-api.conf": broken})
    await harness.eventually(lambda: len(reloads(sidecar, "error")) == 2)
    assert await backend_ids(sidecar) == ["a"]
    fixed = backends_text({"a": tmp_path / "a", "c": tmp_path / "c"}, default="a")
    atomic_update(configmap, {"glance-api.conf": fixed})

    async def applied() -> bool:
        return await backend_ids(sidecar) == ["a", "c"]

    await harness.eventually(applied)
    async with (
        harness.session(sidecar.socket) as client,
        client.get(f"/v1/images/{image_id}") as resp,
    ):
        assert await resp.read() == b"still served"


async def test_secret_file_swap_is_applied(tmp_path: Path) -> None:
    secrets = tmp_path / "secret"
    atomic_update(secrets, {"datadir": f"{tmp_path / 'first'}\n"})
    text = harness.file_backends_config({"s": tmp_path / "unused"}, default="s").replace(
        f"filesystem_store_datadir = {tmp_path / 'unused'}",
        f"filesystem_store_datadir_file = {secrets / 'datadir'}",
    )
    config = harness.write_config(tmp_path / "kglance.conf", text)
    sidecar = harness.Sidecar(tmp_path, config=config, args=["--reload-interval", "0.1"])
    with harness.running(sidecar):
        async with harness.session(sidecar.socket) as client:
            async with client.put("/v1/images/one", data=b"1") as resp:
                assert resp.status == 201
            atomic_update(secrets, {"datadir": f"{tmp_path / 'second'}\n"})
            await harness.eventually(lambda: len(reloads(sidecar, "ok")) == 1)
            async with client.put("/v1/images/two", data=b"2") as resp:
                assert resp.status == 201
    assert os.listdir(tmp_path / "first") == ["one"]
    assert os.listdir(tmp_path / "second") == ["two"]


async def test_stream_in_flight_survives_a_reload(
    sidecar: harness.Sidecar, configmap: Path, tmp_path: Path
) -> None:
    image_id = str(uuid.uuid4())
    data = harness.payload(3 * harness.MiB, seed=5)
    reader, writer = await asyncio.open_unix_connection(str(sidecar.socket))
    head = f"PUT /v1/images/{image_id} HTTP/1.1\r\nHost: s\r\nContent-Length: {len(data)}\r\n\r\n"
    writer.write(head.encode() + data[: harness.MiB])
    await writer.drain()
    await harness.eventually(lambda: any((tmp_path / "a").iterdir()))  # the driver is writing
    text = backends_text({"a": tmp_path / "a", "b": tmp_path / "b"}, default="a")
    atomic_update(configmap, {"glance-api.conf": text})
    await harness.eventually(lambda: len(reloads(sidecar, "ok")) == 1)
    writer.write(data[harness.MiB :])
    await writer.drain()
    status = await reader.readline()
    writer.close()
    await writer.wait_closed()
    assert status.split()[1] == b"201"
    assert (tmp_path / "a" / image_id).read_bytes() == data

    def old_backends_closed() -> bool:
        return any(r.get("message") == "closed retired backends" for r in sidecar.log_records())

    await harness.eventually(old_backends_closed)
    messages = [r["message"] for r in sidecar.log_records()]
    assert messages.index("put ok") < messages.index("closed retired backends")


async def test_sighup_reloads_without_polling(tmp_path: Path) -> None:
    config = harness.write_config(
        tmp_path / "kglance.conf", backends_text({"a": tmp_path / "a"}, default="a")
    )
    sidecar = harness.Sidecar(tmp_path, config=config, args=["--reload-interval", "0"])
    with harness.running(sidecar):
        config.write_text(backends_text({"a": tmp_path / "a", "z": tmp_path / "z"}, default="a"))
        sidecar.send(signal.SIGHUP)
        await harness.eventually(lambda: len(reloads(sidecar, "ok")) == 1)
        assert await backend_ids(sidecar) == ["a", "z"]
