"""ImageLocation handlers under the real kopf, against kmock's Kubernetes API emulator.

kopf runs its real watch, patch and finalizer loop against an HTTP server speaking the
Kubernetes API; the bytes live in two real filesystem backends ("slow", "fast") under a tmp
directory, the operator's volume root. Covered: the finalizer deletes the bytes, Retain keeps
them, bytes another ImageLocation records are kept, a copy between the backends with its
digests verified and progress in status, a source whose recorded checksum does not match its
bytes fails the copy with nothing at the target, the periodic verification notices a
truncated file, a deletion whose backend is gone is released after the grace period with a
warning event, and an image id the sidecar would refuse fails the object.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import os
import pathlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import jsonpatch
import kmock
import kopf
import pytest

from kglance.drivers import backends, registry
from kglance.operator import imagelocations, kube, names
from kglance.operator.settings import OperatorSettings
from tests.conformance.suite import stream

NAMESPACE = "images"
PAYLOAD = os.urandom(700 * 1024 + 5)
IMAGELOCATIONS = kmock.resource(names.GROUP, names.VERSION, names.IMAGELOCATIONS)
EVENTS = kmock.resource("", "v1", "events")
TIMING = imagelocations.Timing(
    verify_interval=1.0, retry_delay=0.3, release_after=1.5, progress_interval=0.0
)


class Emulator(kmock.KubernetesEmulator):
    """kmock's emulator with the server-managed metadata kopf relies on.

    kmock 0.8 stores objects verbatim: without ``resourceVersion`` kopf's finalizer JSON patch
    (which tests it) fails, without ``metadata.namespace`` its watch drops the object's events,
    and a failed JSON-patch test answers 500 (kopf retries the same stale patch) where a real
    API server answers 422.
    """

    _versions = iter(range(1, 1_000_000_000))

    async def _handle(self, request: Any) -> Any:
        if request.resource is not None and isinstance(request.data, dict | list):
            version = str(next(self._versions))
            if request.action == kmock.action.CREATE and isinstance(request.data, dict):
                meta = request.data.setdefault("metadata", {})
                if request.namespace:
                    meta.setdefault("namespace", request.namespace)
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("generation", 1)
                meta.setdefault(
                    "creationTimestamp",
                    datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                )
                meta["resourceVersion"] = version
            elif request.action == kmock.action.UPDATE:
                if isinstance(request.data, dict):
                    request.data.setdefault("metadata", {})["resourceVersion"] = version
                else:
                    request.data.append(
                        {"op": "add", "path": "/metadata/resourceVersion", "value": version}
                    )
        try:
            return await super()._handle(request)
        except jsonpatch.JsonPatchTestFailed as exc:
            raise kmock.KubernetesError(status=422, reason="Invalid", message=str(exc)) from exc


@pytest.fixture
def kmock_options(kmock_options: dict[str, Any]) -> dict[str, Any]:
    return {**kmock_options, "cls": Emulator}


def filesystem(datadir: pathlib.Path, *, backend_id: str) -> backends.Backend:
    driver = registry.Registry().build(
        "file",
        {"filesystem_store_datadir": str(datadir), "filesystem_store_chunk_size": 64 * 1024},
        backend_id=backend_id,
    )
    return backends.Backend(driver, backend_id=backend_id)


class Cluster:
    """The emulator with the operator running, and the namespace's two backends."""

    def __init__(self, emulator: Any, *, api: kube.Api, volumes: pathlib.Path) -> None:
        self.emulator = emulator
        self.api = api
        self.volumes = volumes
        self.slow = filesystem(volumes / "slow", backend_id="slow")
        self.fast = filesystem(volumes / "fast", backend_id="fast")
        self.backends = backends.Backends([self.slow, self.fast], default="slow")

    async def backends_for(self, namespace: str) -> backends.Backends:
        if namespace == NAMESPACE:
            return self.backends
        return backends.Backends([], default=None)

    def path(self, name: str | None = None, *, subresource: str | None = None) -> str:
        return kube.custom_path(
            names.GROUP,
            names.VERSION,
            names.IMAGELOCATIONS,
            namespace=NAMESPACE,
            name=name,
            subresource=subresource,
        )

    async def create(self, name: str, spec: Mapping[str, Any]) -> None:
        body = {
            "apiVersion": names.API_VERSION,
            "kind": names.IMAGELOCATION_KIND,
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": dict(spec),
        }
        await self.api.create(self.path(), body)

    async def get(self, name: str) -> dict[str, Any] | None:
        return await self.api.get(self.path(name))

    async def delete(self, name: str) -> None:
        await self.api.delete(self.path(name))

    async def wait_for(
        self, name: str, check: Callable[[dict[str, Any] | None], bool], *, within: float = 20
    ) -> dict[str, Any] | None:
        """Poll the object until ``check`` holds; the last body seen, ``None`` once gone."""
        deadline = time.monotonic() + within
        body = await self.get(name)
        while not check(body):
            if time.monotonic() > deadline:
                raise AssertionError(f"ImageLocation {name} never got there; last seen: {body}")
            await asyncio.sleep(0.1)
            body = await self.get(name)
        return body

    async def wait_phase(self, name: str, phase: str) -> dict[str, Any]:
        body = await self.wait_for(
            name, lambda b: b is not None and _status(b).get("phase") == phase
        )
        assert body is not None
        return body

    def events(self, reason: str) -> list[dict[str, Any]]:
        found = []
        for key, obj in self.emulator.objects.items():
            if key[0] == EVENTS and obj.get("reason") == reason:
                found.append(dict(obj.raw))
        return found

    async def seed(self, backend: backends.Backend, *, data: bytes = PAYLOAD) -> Any:
        return await backend.add(str(uuid.uuid4()), stream(data), size=len(data))


def _status(body: Mapping[str, Any]) -> dict[str, Any]:
    return dict(body.get("status") or {})


def condition(body: Mapping[str, Any], type_: str) -> dict[str, Any]:
    for item in _status(body).get("conditions") or ():
        if item.get("type") == type_:
            return dict(item)
    raise AssertionError(f"no {type_} condition in {_status(body)}")


def operator_registry(cluster: Cluster, *, server: str) -> kopf.OperatorRegistry:
    registry_ = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry_)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=server, insecure=True, default_namespace=NAMESPACE)

    @kopf.on.startup(registry=registry_)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.scanning.disabled = True  # kmock cannot list namespaces
        settings.watching.connect_timeout = 5
        settings.watching.server_timeout = 30
        settings.persistence.finalizer = names.FINALIZER

    imagelocations.register(
        registry_,
        settings=OperatorSettings(volume_root=str(cluster.volumes.parent)),
        backends_for=cluster.backends_for,
        api=cluster.api,
        timing=TIMING,
    )
    return registry_


@pytest.fixture
async def cluster(kmock: Any, tmp_path: pathlib.Path) -> AsyncIterator[Cluster]:
    kmock.resources[f"{names.API_VERSION}/{names.IMAGELOCATIONS}"] = kmock.ResourceInfo(
        kind=names.IMAGELOCATION_KIND,
        singular="imagelocation",
        namespaced=True,
        verbs=["list", "watch", "get", "patch", "create", "delete"],
        subresources=["status"],
    )
    kmock.resources["v1/events"] = kmock.ResourceInfo(kind="Event", namespaced=True)
    kmock.resources["v1/namespaces"] = kmock.ResourceInfo(kind="Namespace", namespaced=False)
    server = str(kmock.url).rstrip("/")
    api = kube.Api(login=lambda: kopf.ConnectionInfo(server=server, insecure=True))
    cluster = Cluster(kmock, api=api, volumes=tmp_path / NAMESPACE)
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(
            registry=operator_registry(cluster, server=server),
            standalone=True,
            namespaces=[NAMESPACE],
            ready_flag=ready,
            stop_flag=stop,
        )
    )
    try:
        await asyncio.wait_for(ready.wait(), 10)
        # kmock's watch snapshots and subscribes non-atomically: let kopf's watch settle
        for _ in range(200):
            if list(kmock[kmock.action.WATCH]):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        yield cluster
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, 10)
        await api.aclose()
        await cluster.backends.aclose()


def files(directory: pathlib.Path) -> list[str]:
    return sorted(os.listdir(directory)) if directory.exists() else []


def recorded(result: Any, *, backend: str) -> dict[str, Any]:
    """An ImageLocation spec for bytes ``Backend.add`` stored."""
    return {
        "imageId": result.image_id,
        "backend": backend,
        "location": result.location.uri(),
        "size": result.size,
        "checksum": result.checksum,
        "osHashAlgo": result.os_hash_algo,
        "osHashValue": result.os_hash_value,
    }


# ---------------------------------------------------------------------- tests


async def test_finalizer_deletes_the_bytes(cluster: Cluster) -> None:
    stored = await cluster.seed(cluster.slow)
    await cluster.create("cirros", recorded(stored, backend="slow"))
    body = await cluster.wait_phase("cirros", "Available")
    assert names.FINALIZER in body["metadata"]["finalizers"]
    assert condition(body, "Verified")["status"] == "True"
    assert condition(body, "Ready")["status"] == "True"
    assert _status(body)["lastVerified"]
    assert files(cluster.volumes / "slow") == [stored.image_id]

    await cluster.delete("cirros")
    assert await cluster.wait_for("cirros", lambda b: b is None) is None
    assert files(cluster.volumes / "slow") == []
    assert cluster.events("BytesDeleted")


async def test_retain_keeps_the_bytes(cluster: Cluster) -> None:
    stored = await cluster.seed(cluster.slow)
    await cluster.create("kept", {**recorded(stored, backend="slow"), "reclaimPolicy": "Retain"})
    await cluster.wait_phase("kept", "Available")
    await cluster.delete("kept")
    assert await cluster.wait_for("kept", lambda b: b is None) is None
    assert (cluster.volumes / "slow" / stored.image_id).read_bytes() == PAYLOAD
    assert cluster.events("Retained")


async def test_bytes_another_location_records_are_kept(cluster: Cluster) -> None:
    stored = await cluster.seed(cluster.slow)
    await cluster.create("first", recorded(stored, backend="slow"))
    await cluster.create("second", recorded(stored, backend="slow"))
    await cluster.wait_phase("first", "Available")
    await cluster.wait_phase("second", "Available")
    await cluster.delete("first")
    assert await cluster.wait_for("first", lambda b: b is None) is None
    assert files(cluster.volumes / "slow") == [stored.image_id]
    await cluster.delete("second")  # the last one to record them deletes them
    assert await cluster.wait_for("second", lambda b: b is None) is None
    assert files(cluster.volumes / "slow") == []


async def test_copy_between_backends_verifies_the_checksum(cluster: Cluster) -> None:
    stored = await cluster.seed(cluster.slow)
    await cluster.create("cirros-slow", recorded(stored, backend="slow"))
    await cluster.create(
        "cirros-fast",
        {"imageId": stored.image_id, "backend": "fast", "source": {"name": "cirros-slow"}},
    )
    body = await cluster.wait_phase("cirros-fast", "Available")
    status = _status(body)
    target = cluster.volumes / "fast" / stored.image_id
    assert target.read_bytes() == PAYLOAD
    assert status["location"] == f"file://{target}"
    assert (status["size"], status["checksum"]) == (len(PAYLOAD), hashlib.md5(PAYLOAD).hexdigest())
    assert (status["osHashAlgo"], status["osHashValue"]) == (
        "sha512",
        hashlib.sha512(PAYLOAD).hexdigest(),
    )
    assert status["progress"] == {
        "bytesDone": len(PAYLOAD),
        "bytesTotal": len(PAYLOAD),
        "percent": 100,
    }
    assert condition(body, "Copied")["status"] == "True"
    assert condition(body, "Verified")["status"] == "True"
    # progress was reported while copying, not only at the end
    copying = [
        request
        for request in cluster.emulator[kmock.method.PATCH]
        if str(request.url.path).endswith("/cirros-fast/status")
        and (request.data or {}).get("status", {}).get("phase") == "Copying"
    ]
    assert copying and copying[0].data["status"]["progress"]["bytesDone"] == 0

    # the copy is reclaimed like any other location, the source stays
    await cluster.delete("cirros-fast")
    assert await cluster.wait_for("cirros-fast", lambda b: b is None) is None
    assert files(cluster.volumes / "fast") == []
    assert files(cluster.volumes / "slow") == [stored.image_id]


async def test_copy_of_a_source_with_a_wrong_checksum_fails_and_leaves_nothing(
    cluster: Cluster,
) -> None:
    stored = await cluster.seed(cluster.slow)
    wrong = {
        **recorded(stored, backend="slow"),
        "checksum": hashlib.md5(b"another image").hexdigest(),
        "osHashAlgo": None,
        "osHashValue": None,
    }
    await cluster.create("bad-source", {k: v for k, v in wrong.items() if v is not None})
    await cluster.wait_phase("bad-source", "Available")  # verification checks sizes only
    await cluster.create(
        "bad-copy",
        {"imageId": stored.image_id, "backend": "fast", "source": {"name": "bad-source"}},
    )
    body = await cluster.wait_phase("bad-copy", "Failed")
    copied = condition(body, "Copied")
    assert (copied["status"], copied["reason"]) == ("False", "ChecksumMismatch")
    assert "bad-source" in copied["message"]
    assert "location" not in _status(body)
    assert files(cluster.volumes / "fast") == []
    assert cluster.events("CopyFailed")
    # nothing was written, so the finalizer has nothing to delete
    await cluster.delete("bad-copy")
    assert await cluster.wait_for("bad-copy", lambda b: b is None) is None
    assert files(cluster.volumes / "slow") == [stored.image_id]


async def test_copy_waits_for_its_source(cluster: Cluster) -> None:
    stored = await cluster.seed(cluster.slow)
    await cluster.create(
        "early", {"imageId": stored.image_id, "backend": "fast", "source": {"name": "late"}}
    )
    body = await cluster.wait_phase("early", "Pending")
    assert condition(body, "Copied")["reason"] == "SourceNotAvailable"
    await cluster.create("late", recorded(stored, backend="slow"))
    await cluster.wait_phase("early", "Available")
    assert (cluster.volumes / "fast" / stored.image_id).read_bytes() == PAYLOAD


async def test_verification_notices_a_truncated_file(cluster: Cluster) -> None:
    stored = await cluster.seed(cluster.slow)
    await cluster.create("shrinking", recorded(stored, backend="slow"))
    await cluster.wait_phase("shrinking", "Available")
    os.truncate(cluster.volumes / "slow" / stored.image_id, 1000)
    body = await cluster.wait_phase("shrinking", "Failed")  # the timer verifies again
    verified = condition(body, "Verified")
    assert (verified["status"], verified["reason"]) == ("False", "SizeMismatch")
    assert f"holds 1000 bytes, {len(PAYLOAD)} are recorded" in verified["message"]
    assert condition(body, "Ready")["status"] == "False"


async def test_deletion_with_the_backend_gone_is_released_with_a_warning(
    cluster: Cluster,
) -> None:
    stored = await cluster.seed(cluster.slow)
    await cluster.create("orphan", recorded(stored, backend="vanished"))
    body = await cluster.wait_phase("orphan", "Pending")
    assert condition(body, "Verified")["reason"] == "UnknownBackend"
    await cluster.delete("orphan")
    assert await cluster.wait_for("orphan", lambda b: b is None) is None
    (warning,) = cluster.events("BytesLeftBehind")
    assert warning["type"] == "Warning"
    assert stored.location.uri() in warning["message"]
    assert files(cluster.volumes / "slow") == [stored.image_id]  # not its backend's to delete


async def test_an_invalid_image_id_fails_the_object(cluster: Cluster) -> None:
    await cluster.create(
        "invalid", {"imageId": "../etc", "backend": "slow", "location": "file:///tmp/x"}
    )
    body = await cluster.wait_phase("invalid", "Failed")
    assert condition(body, "Ready")["reason"] == "InvalidImageId"
