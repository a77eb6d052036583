"""ImageLocation handlers under the real kopf, against kmock's Kubernetes API emulator.

kopf runs its real watch, patch and finalizer loop against an HTTP server speaking the
Kubernetes API (``tests/operator/emulator.py``). Two operators run per module, each shared by
the module's tests, every test in its own namespace:

* the ImageLocation handlers alone, with short intervals (``TIMING``), over real backends the
  test builds per namespace: two filesystem backends ("slow", "fast") under a tmp directory,
  and the Ceph cluster's RBD pool when it runs. Covered: the finalizer deletes the bytes,
  Retain keeps them, bytes another ImageLocation records are kept, a copy between the backends
  with its digests verified and progress in status, a repeated copy (an operator restarted
  after the bytes were written) adopting them, a source whose recorded checksum does not
  match its bytes failing the copy with nothing at the target, a copy waiting for its source,
  the periodic verification noticing a truncated file, an RBD image with a snapshot keeping
  the object Deleting with a ``Reclaimed`` condition until the snapshot is gone, a deletion
  whose backend is gone released after the grace period with a warning event, and an image id
  the sidecar would refuse failing the object.
* the whole operator (``handlers.make_registry``, the ``operator_env`` fixture): StoreBackends
  of type file rendered into the operator's own backends under its volume root, the finalizer
  deleting real bytes there and a copy between two such backends.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import pathlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import kmock
import kopf
import pytest
import pytest_asyncio

from kglance.drivers import backends, registry
from kglance.operator import imagelocations, kube, names
from kglance.operator.settings import OperatorSettings
from tests.conformance.suite import stream
from tests.operator.emulator import (
    IMAGELOCATIONS,
    READY_TIMEOUT,
    Emulator,
    OperatorEnv,
    declare_resources,
    test_kopf_settings,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

PAYLOAD = os.urandom(700 * 1024 + 5)
TIMING = imagelocations.Timing(
    verify_interval=1.0, retry_delay=0.3, release_after=1.5, progress_interval=0.0
)
IL = names.IMAGELOCATION_KIND


def filesystem(datadir: pathlib.Path, *, backend_id: str) -> backends.Backend:
    driver = registry.Registry().build(
        "file",
        {"filesystem_store_datadir": str(datadir), "filesystem_store_chunk_size": 64 * 1024},
        backend_id=backend_id,
    )
    return backends.Backend(driver, backend_id=backend_id)


class Storage:
    """The backends of each test namespace, as the operator's ``backends_for`` hands them out."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self._by_namespace: dict[str, backends.Backends] = {}

    def add(self, namespace: str, *extra: backends.Backend) -> backends.Backends:
        built = backends.Backends(
            [
                filesystem(self.root / namespace / "slow", backend_id="slow"),
                filesystem(self.root / namespace / "fast", backend_id="fast"),
                *extra,
            ],
            default="slow",
        )
        self._by_namespace[namespace] = built
        return built

    async def backends_for(self, namespace: str) -> backends.Backends:
        return self._by_namespace.get(namespace) or backends.Backends([], default=None)

    async def aclose(self) -> None:
        for built in self._by_namespace.values():
            await built.aclose()


@contextlib.asynccontextmanager
async def running_handlers(
    settings: OperatorSettings, storage: Storage
) -> AsyncIterator[OperatorEnv]:
    """The emulator with kopf running only the ImageLocation handlers, on ``TIMING``."""
    async with Emulator() as emulator, kmock.Server(emulator):
        declare_resources(emulator)
        server = str(emulator.url).rstrip("/")

        def login() -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=server, insecure=True)

        api = kube.Api(login=login)
        handlers = kopf.OperatorRegistry()
        kopf.on.login(registry=handlers)(lambda **_: login())
        imagelocations.register(
            handlers,
            settings=settings,
            backends_for=storage.backends_for,
            api=api,
            timing=TIMING,
        )
        ready, stop = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(
            kopf.operator(
                registry=handlers,
                settings=test_kopf_settings(settings),
                standalone=True,
                clusterwide=True,
                ready_flag=ready,
                stop_flag=stop,
            )
        )
        env = OperatorEnv(emulator=emulator, settings=settings, api=api)
        try:
            await asyncio.wait_for(ready.wait(), READY_TIMEOUT)
            await env.wait_for(
                lambda: IMAGELOCATIONS in {r.resource for r in emulator[kmock.action.WATCH]},
                within=READY_TIMEOUT,
                what="kopf watching ImageLocations",
            )
            await asyncio.sleep(0.3)  # kmock's watch subscribes after its snapshot
            yield env
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 15)
            await api.aclose()


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    yield Storage(tmp_path_factory.mktemp("volumes"))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def handlers_env(storage: Storage) -> AsyncIterator[OperatorEnv]:
    settings = OperatorSettings(volume_root=str(storage.root), standalone=True)
    try:
        async with running_handlers(settings, storage) as env:
            yield env
    finally:
        await storage.aclose()


def _status(body: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict((body or {}).get("status") or {})


def condition(body: Mapping[str, Any], type_: str) -> dict[str, Any]:
    for item in _status(body).get("conditions") or ():
        if item.get("type") == type_:
            return dict(item)
    raise AssertionError(f"no {type_} condition in {_status(body)}")


def files(directory: pathlib.Path) -> list[str]:
    return sorted(os.listdir(directory)) if directory.exists() else []


def recorded(result: backends.AddResult, *, backend: str) -> dict[str, Any]:
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


class Space:
    """One test's namespace on a running operator, with kubectl-like helpers."""

    def __init__(self, env: OperatorEnv, namespace: str) -> None:
        self.env = env
        self.namespace = namespace

    async def create(self, name: str, spec: Mapping[str, Any]) -> None:
        await self.env.create(
            {
                "apiVersion": names.API_VERSION,
                "kind": IL,
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": dict(spec),
            }
        )

    def get(self, name: str) -> dict[str, Any] | None:
        return self.env.get(IL, self.namespace, name)

    async def delete(self, name: str) -> None:
        await self.env.delete(IL, self.namespace, name)

    async def gone(self, name: str) -> None:
        await self.env.wait_for(lambda: self.get(name) is None, what=f"{name} deleted")

    async def phase(
        self, name: str, phase: str, *, having: Callable[[dict[str, Any]], bool] = bool
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            body = self.get(name)
            if body is not None and _status(body).get("phase") == phase and having(body):
                return body
            return None

        return await self.env.wait_for(reached, what=f"{name} {phase}: {self.get(name)}")

    def events(self, reason: str) -> list[dict[str, Any]]:
        return [e for e in self.env.events(self.namespace) if e.get("reason") == reason]


def unique_namespace() -> str:
    return f"il-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def space(handlers_env: OperatorEnv, storage: Storage) -> tuple[Space, backends.Backends]:
    namespace = unique_namespace()
    return Space(handlers_env, namespace), storage.add(namespace)


async def seed(backend: backends.Backend, *, data: bytes = PAYLOAD) -> backends.AddResult:
    return await backend.add(str(uuid.uuid4()), stream(data), size=len(data))


def datadir(backend: backends.Backend) -> pathlib.Path:
    return pathlib.Path(backend.driver.options.filesystem_store_datadir)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- reclaiming


async def test_finalizer_deletes_the_bytes(space: tuple[Space, backends.Backends]) -> None:
    ns, built = space
    slow = built.get("slow")
    stored = await seed(slow)
    await ns.create("cirros", recorded(stored, backend="slow"))
    body = await ns.phase("cirros", "Available")
    assert names.FINALIZER in body["metadata"]["finalizers"]
    assert condition(body, "Verified")["status"] == "True"
    assert condition(body, "Ready")["status"] == "True"
    assert _status(body)["lastVerified"]
    assert _status(body)["location"] == stored.location.uri()
    assert files(datadir(slow)) == [stored.image_id]

    await ns.delete("cirros")
    await ns.gone("cirros")
    assert files(datadir(slow)) == []
    assert ns.events("BytesDeleted")


async def test_retain_keeps_the_bytes(space: tuple[Space, backends.Backends]) -> None:
    ns, built = space
    slow = built.get("slow")
    stored = await seed(slow)
    await ns.create("kept", {**recorded(stored, backend="slow"), "reclaimPolicy": "Retain"})
    await ns.phase("kept", "Available")
    await ns.delete("kept")
    await ns.gone("kept")
    assert (datadir(slow) / stored.image_id).read_bytes() == PAYLOAD
    (event,) = ns.events("Retained")
    assert "was not deleted" in event["message"]


async def test_bytes_another_location_records_are_kept(
    space: tuple[Space, backends.Backends],
) -> None:
    ns, built = space
    slow = built.get("slow")
    stored = await seed(slow)
    await ns.create("first", recorded(stored, backend="slow"))
    await ns.create("second", recorded(stored, backend="slow"))
    await ns.phase("first", "Available")
    await ns.phase("second", "Available")
    await ns.delete("first")
    await ns.gone("first")
    assert files(datadir(slow)) == [stored.image_id]
    await ns.delete("second")  # the last one to record them deletes them
    await ns.gone("second")
    assert files(datadir(slow)) == []


async def test_deletion_with_the_backend_gone_is_released_with_a_warning(
    space: tuple[Space, backends.Backends],
) -> None:
    ns, built = space
    stored = await seed(built.get("slow"))
    await ns.create("orphan", recorded(stored, backend="vanished"))
    body = await ns.phase("orphan", "Pending")
    assert condition(body, "Verified")["reason"] == "UnknownBackend"
    await ns.delete("orphan")
    body = await ns.phase("orphan", "Deleting")  # retried for TIMING.release_after first
    assert condition(body, "Reclaimed")["reason"] == "UnknownBackend"
    await ns.gone("orphan")
    (warning,) = ns.events("BytesLeftBehind")
    assert warning["type"] == "Warning"
    assert stored.location.uri() in warning["message"]
    assert files(datadir(built.get("slow"))) == [stored.image_id]


async def test_credentials_in_a_location_stay_out_of_status_and_events(
    space: tuple[Space, backends.Backends],
) -> None:
    ns, _ = space
    location = "https://glance:s3cr3t-pw@images.example.com/cirros.img"
    spec = {"imageId": str(uuid.uuid4()), "backend": "vanished", "location": location}
    await ns.create("legacy", spec)
    await ns.phase("legacy", "Pending")
    await ns.delete("legacy")
    await ns.gone("legacy")
    (warning,) = ns.events("BytesLeftBehind")
    assert "images.example.com/cirros.img" in warning["message"]
    status_patches = [  # (kopf's own annotations repeat the spec, which says it anyway)
        str(request.data["status"])
        for request in ns.env.emulator[kmock.method.PATCH]
        if f"/{ns.namespace}/" in str(request.url.path)
        and isinstance(request.data, dict)
        and "status" in request.data
    ]
    assert status_patches
    assert not [text for text in status_patches if "s3cr3t" in text]
    assert not [event for event in ns.env.events(ns.namespace) if "s3cr3t" in str(event)]


@pytest_asyncio.fixture(loop_scope="module")
async def ceph() -> AsyncIterator[tuple[Any, backends.Backend]]:
    """The RBD pool's admin and a backend on it that refuses to trash images with snapshots."""
    from tests.drivers import rbd_helpers  # needs Ceph's Python bindings: only this test

    async with rbd_helpers.pool_admin() as admin:
        driver = registry.Registry().build(
            "rbd",
            {
                "rbd_store_ceph_conf": admin.conf,
                "rbd_store_pool": admin.pool,
                "rbd_store_chunk_size": 1,
                "rbd_store_trash_images_with_snapshots": False,
            },
            backend_id="ceph",
        )
        # the namespace's Backends close it at the end of the module
        yield admin, backends.Backend(driver, backend_id="ceph")


def remove_snapshot(admin: Any, image: str, snapshot: str) -> None:
    import rbd

    with rbd.Image(admin.ioctx, image) as opened:
        opened.remove_snap(snapshot)


async def test_a_snapshot_keeps_the_object_deleting_until_it_is_gone(
    handlers_env: OperatorEnv,
    storage: Storage,
    ceph: tuple[Any, backends.Backend],
) -> None:
    admin, rbd_backend = ceph
    namespace = unique_namespace()
    storage.add(namespace, rbd_backend)
    ns = Space(handlers_env, namespace)
    stored = await seed(rbd_backend, data=PAYLOAD[: 64 * 1024])
    name = stored.image_id
    await admin.run(admin.snapshot, name, "backup")
    await ns.create("pinned", recorded(stored, backend="ceph"))
    await ns.phase("pinned", "Available")
    await ns.delete("pinned")
    body = await ns.phase(
        "pinned", "Deleting", having=lambda b: "Reclaimed" in str(_status(b).get("conditions"))
    )
    reclaimed = condition(body, "Reclaimed")
    assert (reclaimed["status"], reclaimed["reason"]) == ("False", "HasSnapshot")
    assert "backup" in reclaimed["message"]
    assert name in await admin.run(admin.images)

    await admin.run(remove_snapshot, admin, name, "backup")  # the admin removes it
    await ns.gone("pinned")  # the next retry deletes the image and releases the object
    assert name not in await admin.run(admin.contents)


# ---------------------------------------------------------------------- copying


async def test_copy_between_backends_verifies_the_checksum(
    space: tuple[Space, backends.Backends],
) -> None:
    ns, built = space
    slow, fast = built.get("slow"), built.get("fast")
    stored = await seed(slow)
    await ns.create("cirros-slow", recorded(stored, backend="slow"))
    await ns.create(
        "cirros-fast",
        {"imageId": stored.image_id, "backend": "fast", "source": {"name": "cirros-slow"}},
    )
    body = await ns.phase("cirros-fast", "Available")
    status = _status(body)
    target = datadir(fast) / stored.image_id
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
    # progress was patched while copying, before the handler's own patch
    reports = [
        request.data["status"]
        for request in ns.env.emulator[kmock.method.PATCH]
        if str(request.url.path).endswith(f"/{ns.namespace}/imagelocations/cirros-fast/status")
        and isinstance(request.data, dict)
        and request.data.get("status", {}).get("phase") == "Copying"
    ]
    assert reports and reports[0]["progress"] == {
        "bytesDone": 0,
        "bytesTotal": len(PAYLOAD),
        "percent": 0,
    }

    # a copy is reclaimed like any other location; its source stays
    await ns.delete("cirros-fast")
    await ns.gone("cirros-fast")
    assert files(datadir(fast)) == []
    assert files(datadir(slow)) == [stored.image_id]


async def test_a_repeated_copy_adopts_the_bytes_of_the_first(
    space: tuple[Space, backends.Backends],
) -> None:
    """The operator died after the target committed and before status said so."""
    ns, built = space
    slow, fast = built.get("slow"), built.get("fast")
    stored = await seed(slow)
    await fast.add(stored.image_id, stream(PAYLOAD), size=len(PAYLOAD))  # the first attempt
    await ns.create("source", recorded(stored, backend="slow"))
    await ns.create(
        "again", {"imageId": stored.image_id, "backend": "fast", "source": {"name": "source"}}
    )
    body = await ns.phase("again", "Available")
    assert _status(body)["checksum"] == stored.checksum
    assert files(datadir(fast)) == [stored.image_id]


async def test_copy_of_a_source_with_a_wrong_checksum_fails_and_leaves_nothing(
    space: tuple[Space, backends.Backends],
) -> None:
    ns, built = space
    slow, fast = built.get("slow"), built.get("fast")
    stored = await seed(slow)
    wrong = {
        **recorded(stored, backend="slow"),
        "checksum": hashlib.md5(b"another image").hexdigest(),
    }
    del wrong["osHashAlgo"], wrong["osHashValue"]
    await ns.create("bad-source", wrong)
    await ns.phase("bad-source", "Available")  # verification compares sizes only
    await ns.create(
        "bad-copy",
        {"imageId": stored.image_id, "backend": "fast", "source": {"name": "bad-source"}},
    )
    body = await ns.phase("bad-copy", "Failed")
    copied = condition(body, "Copied")
    assert (copied["status"], copied["reason"]) == ("False", "ChecksumMismatch")
    assert "bad-source" in copied["message"]
    assert "location" not in _status(body)
    assert files(datadir(fast)) == []
    assert ns.events("CopyFailed")
    # nothing was written, so the finalizer has nothing to delete
    await ns.delete("bad-copy")
    await ns.gone("bad-copy")
    assert files(datadir(slow)) == [stored.image_id]


async def test_copy_waits_for_its_source(space: tuple[Space, backends.Backends]) -> None:
    ns, built = space
    stored = await seed(built.get("slow"))
    await ns.create(
        "early", {"imageId": stored.image_id, "backend": "fast", "source": {"name": "late"}}
    )
    body = await ns.phase("early", "Pending")
    assert condition(body, "Copied")["reason"] == "SourceNotAvailable"
    await ns.create("late", recorded(stored, backend="slow"))
    await ns.phase("early", "Available")
    assert (datadir(built.get("fast")) / stored.image_id).read_bytes() == PAYLOAD


# ---------------------------------------------------------------------- verification


async def test_verification_notices_a_truncated_file(
    space: tuple[Space, backends.Backends],
) -> None:
    ns, built = space
    slow = built.get("slow")
    stored = await seed(slow)
    await ns.create("shrinking", recorded(stored, backend="slow"))
    await ns.phase("shrinking", "Available")
    os.truncate(datadir(slow) / stored.image_id, 1000)
    body = await ns.phase("shrinking", "Failed")  # the timer verifies again
    verified = condition(body, "Verified")
    assert (verified["status"], verified["reason"]) == ("False", "SizeMismatch")
    assert f"holds 1000 bytes, {len(PAYLOAD)} are recorded" in verified["message"]
    assert condition(body, "Ready")["status"] == "False"


async def test_an_invalid_spec_fails_the_object(
    space: tuple[Space, backends.Backends],
) -> None:
    ns, _ = space
    await ns.create("invalid", {"imageId": "../etc", "backend": "slow", "location": "file:///x"})
    body = await ns.phase("invalid", "Failed")
    ready = condition(body, "Ready")
    assert ready["reason"] == "InvalidSpec"
    assert "imageId" in ready["message"] and "invalid image id '../etc'" in ready["message"]
    await asyncio.sleep(2 * TIMING.verify_interval)  # the verification timer leaves it alone
    later = ns.get("invalid")
    assert later is not None and condition(later, "Ready")["reason"] == "InvalidSpec"
    assert "lastVerified" not in _status(later)


# ---------------------------------------------------------------------- ACLs


async def test_acls_on_a_backend_without_them_are_reported(
    space: tuple[Space, backends.Backends],
) -> None:
    ns, built = space
    stored = await seed(built.get("slow"))
    await ns.create("public", {**recorded(stored, backend="slow"), "acls": {"public": True}})
    body = await ns.phase(
        "public", "Available", having=lambda b: "AclsApplied" in str(_status(b).get("conditions"))
    )
    applied = condition(body, "AclsApplied")
    assert (applied["status"], applied["reason"]) == ("False", "Unsupported")
    assert ns.events("AclsNotApplied")


@pytest.fixture
def swift_env() -> Iterator[tuple[Any, Any]]:
    from tests.drivers import swift_support

    server = swift_support.SwiftServer.from_env()
    conn = server.connection()
    try:
        yield server, conn
    finally:
        conn.close()


async def test_acls_are_set_and_changed_on_a_multi_tenant_swift(
    handlers_env: OperatorEnv, storage: Storage, swift_env: tuple[Any, Any]
) -> None:
    from tests.drivers import swift_support

    server, conn = swift_env
    prefix = swift_support.unique("kgil")
    swift = swift_support.backend(
        swift_support.build(
            server.options(
                swift_store_container=prefix,
                swift_store_multi_tenant=True,
                swift_store_admin_tenants="ops",
            )
        )
    )
    namespace = unique_namespace()
    storage.add(namespace, swift)  # closed with the namespace's backends
    ns = Space(handlers_env, namespace)
    stored = await seed(swift, data=b"a shared image")
    container = f"{prefix}_{stored.image_id}"
    with swift_support.scratch_containers(conn, container):
        shared = {"readTenants": ["t1", "t2"], "writeTenants": ["w1"]}
        await ns.create("shared", {**recorded(stored, backend="swift"), "acls": shared})
        await ns.phase(
            "shared",
            "Available",
            having=lambda b: "AclsApplied" in str(_status(b).get("conditions")),
        )
        head = await asyncio.to_thread(conn.head_container, container)
        assert head["x-container-read"] == "t1:*,t2:*"
        assert head["x-container-write"] == "w1:*,ops:*"

        await ns.env.patch(IL, namespace, "shared", {"spec": {"acls": {"public": True}}})

        async def public() -> bool:
            head = await asyncio.to_thread(conn.head_container, container)
            return bool(head.get("x-container-read") == "*:*")

        for _ in range(100):
            if await public():
                break
            await asyncio.sleep(0.1)
        assert await public()
        body = ns.get("shared")
        assert body is not None and condition(body, "AclsApplied")["status"] == "True"
        await ns.delete("shared")
        await ns.gone("shared")
        assert not swift_support.exists(conn, container, stored.image_id)


# ---------------------------------------------------------------------- the whole operator


def ready(body: Mapping[str, Any] | None) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in _status(body).get("conditions") or ()
    )


async def file_backends(env: OperatorEnv, namespace: str, *backend_names: str) -> None:
    """StoreBackends of type file with their volumes where the operator mounts them, Ready."""
    for name in backend_names:
        (pathlib.Path(env.settings.operator_volume_root(namespace)) / name).mkdir(parents=True)
        await env.create(
            {
                "apiVersion": names.API_VERSION,
                "kind": names.STOREBACKEND_KIND,
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"type": "file", "file": {"claimName": f"{name}-images"}},
            }
        )
    for name in backend_names:

        def backend_ready(name: str = name) -> bool:
            return ready(env.get(names.STOREBACKEND_KIND, namespace, name))

        await env.wait_for(backend_ready, what=f"StoreBackend {name} Ready")


async def test_operator_deletes_bytes_and_copies_between_file_backends(
    operator_env: OperatorEnv,
) -> None:
    namespace = unique_namespace()
    await file_backends(operator_env, namespace, "slow", "fast")
    root = pathlib.Path(operator_env.settings.operator_volume_root(namespace))
    ns = Space(operator_env, namespace)
    writer = filesystem(root / "slow", backend_id="slow")  # as the sidecar wrote it
    try:
        stored = await seed(writer)
    finally:
        await writer.driver.aclose()

    await ns.create("cirros-slow", recorded(stored, backend="slow"))
    await ns.phase("cirros-slow", "Available")
    await ns.create(
        "cirros-fast",
        {"imageId": stored.image_id, "backend": "fast", "source": {"name": "cirros-slow"}},
    )
    body = await ns.phase("cirros-fast", "Available")
    assert (root / "fast" / stored.image_id).read_bytes() == PAYLOAD
    assert _status(body)["osHashValue"] == stored.os_hash_value

    await ns.delete("cirros-slow")
    await ns.gone("cirros-slow")
    assert files(root / "slow") == []
    assert files(root / "fast") == [stored.image_id]
    await ns.delete("cirros-fast")
    await ns.gone("cirros-fast")
    assert files(root / "fast") == []
