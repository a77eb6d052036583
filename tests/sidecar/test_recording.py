"""A real sidecar process records ImageLocations in kmock's Kubernetes emulator.

The emulator is a real HTTP server speaking the Kubernetes API (plain http, which the sidecar
accepts only for a loopback address given explicitly); the sidecar runs as a child process with
the environment the injecting webhook gives it and a service account directory of our own.
Covered: the recorded object and its fields, the bearer token (rotated too) never leaving the
Authorization header, TLS verified against the service account's CA (the emulator is also
served over https for that), the 409 path (and the object vanishing in between, and an object
of the same name for another image), the delete path behind an operator's finalizer, an API
that is down (the add still succeeds; warning, metrics, bounded queue), an API that comes up
late, an API that refuses (403), the flush at shutdown, and the names and settings alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import re
import signal
import socket
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import kmock as km
import pytest

from kglance.operator import names, spec
from kglance.sidecar import recording, settings
from tests.operator.test_crds import cel_failures, schema_errors
from tests.sidecar import harness

NAMESPACE = "images"
POD = "glance-api-7d9c-x2v4q"
IMAGES = km.resource("kglance.io", "v1alpha1", "imagelocations")
IMAGE = harness.payload(256 * 1024 + 11)
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class Emulator(km.KubernetesEmulator):
    """kmock's emulator plus the metadata a real API server fills in on create.

    ``vanish_before_get``: names of ImageLocations deleted just before the next GET of them,
    as when a finalizer lets go between two calls of the sidecar.
    """

    def __init__(self) -> None:
        super().__init__()
        self.vanish_before_get: set[str] = set()

    async def _handle(self, request: km.Request) -> aiohttp.web.StreamResponse:
        if request.action == km.action.FETCH and request.name in self.vanish_before_get:
            self.vanish_before_get.discard(request.name)
            self.objects[IMAGES, request.namespace, request.name].delete()
        if request.action == km.action.CREATE and isinstance(request.data, dict):
            metadata = request.data.setdefault("metadata", {})
            metadata.setdefault("uid", str(uuid.uuid4()))
            metadata.setdefault(
                "creationTimestamp",
                datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        return await super()._handle(request)


@contextlib.asynccontextmanager
async def emulator(*, port: int | None = None) -> AsyncIterator[Emulator]:
    async with Emulator() as api, km.Server(api, port=port):
        api.resources["kglance.io/v1alpha1/imagelocations"] = km.ResourceInfo(
            kind="ImageLocation",
            singular="imagelocation",
            namespaced=True,
            verbs=["create", "get", "patch", "delete", "list", "watch"],
        )
        yield api


@pytest.fixture
async def api() -> AsyncIterator[Emulator]:
    async with emulator() as api:
        yield api


@pytest.fixture
def token() -> str:
    return f"kglance-test-token-{uuid.uuid4().hex}"


@pytest.fixture
def serviceaccount(tmp_path: Path, token: str) -> Path:
    directory = tmp_path / "serviceaccount"
    directory.mkdir()
    (directory / "token").write_text(token + "\n")
    (directory / "namespace").write_text(NAMESPACE)
    return directory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def sidecar(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    api_url: str,
    serviceaccount: Path,
    **env: str,
) -> AsyncIterator[harness.Sidecar]:
    """A sidecar recording into ``api_url``, stopped without blocking the emulator's loop."""
    datadir = tmp_path / "fast"
    datadir.mkdir(exist_ok=True)
    config = harness.write_config(
        tmp_path / "glance-store.conf",
        harness.file_backends_config({"fast": datadir}, default="fast"),
    )
    environment = {
        "KGLANCE_RECORD_LOCATIONS": "true",
        "KGLANCE_NAMESPACE": NAMESPACE,
        "KGLANCE_POD_NAME": POD,
        "KGLANCE_KUBERNETES_API": api_url,
        "KGLANCE_SERVICEACCOUNT_DIR": str(serviceaccount),
        "KGLANCE_RECORD_BACKOFF": "0.05",
        "KGLANCE_RECORD_MAX_BACKOFF": "0.5",
        **env,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)  # the child process inherits them
    process = harness.Sidecar(tmp_path, config=config).start()
    try:
        await asyncio.to_thread(process.wait_listening)
        yield process
    finally:
        await asyncio.to_thread(process.stop)


async def put(socket_path: Path, image_id: str) -> dict[str, Any]:
    async with (
        harness.session(socket_path) as client,
        client.put(f"/v1/images/{image_id}", data=harness.body(IMAGE)) as resp,
    ):
        assert resp.status == 201, await resp.text()
        answer: dict[str, Any] = await resp.json()
        return answer


async def delete(socket_path: Path, image_id: str) -> None:
    async with harness.session(socket_path) as client, client.delete(f"/v1/images/{image_id}") as r:
        assert r.status == 204, await r.text()


async def read(socket_path: Path, image_id: str) -> bytes:
    async with harness.session(socket_path) as client, client.get(f"/v1/images/{image_id}") as r:
        assert r.status == 200
        return await r.read()


async def metric(socket_path: Path, name: str, **labels: str) -> float:
    """A sample of the sidecar's /metrics (0 when the series does not exist yet)."""
    async with harness.session(socket_path) as client, client.get("/metrics") as resp:
        text = await resp.text()
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    series = f"{name}{{{wanted}}}" if wanted else name
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def stored(api: Emulator, name: str) -> dict[str, Any] | None:
    """The object as the emulator holds it now; None when absent or deleted."""
    key = (IMAGES, NAMESPACE, name)
    if key not in api.objects or api.objects[key].deleted:
        return None
    return dict(api.objects[key].raw)


def requests_to(api: Emulator, name: str) -> Iterator[km.Request]:
    for request in api:
        if request.resource == IMAGES and (request.name == name or request.method == "POST"):
            yield request


def assert_valid_image_location(obj: dict[str, Any], *, old: dict[str, Any] | None = None) -> None:
    """What the API server (CRD schema and CEL rules) and the operator would accept."""
    assert schema_errors("ImageLocation", obj) == []
    assert cel_failures("ImageLocation", obj, old) == []
    spec.ImageLocationSpec.model_validate(obj["spec"])


def warnings(process: harness.Sidecar) -> list[dict[str, Any]]:
    return [
        r
        for r in process.log_records()
        if r.get("event") == "location_record" and r.get("level") == "warning"
    ]


# --------------------------------------------------------------------------- recording


async def test_an_added_image_is_recorded_with_the_token_only_in_its_header(
    api: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serviceaccount: Path, token: str
) -> None:
    async with sidecar(
        tmp_path, monkeypatch, api_url=str(api.url), serviceaccount=serviceaccount
    ) as process:
        async with harness.session(process.socket) as client, client.get("/metrics") as resp:
            assert "\nkglance_sidecar_location_records_pending 0\n" in await resp.text()
        image_id = str(uuid.uuid4())
        answer = await put(process.socket, image_id)
        name = f"fast-{image_id}"
        await harness.eventually(lambda: stored(api, name) is not None)
        obj = stored(api, name)
        assert obj is not None
        assert obj["apiVersion"] == "kglance.io/v1alpha1"
        assert obj["kind"] == "ImageLocation"
        assert obj["metadata"]["namespace"] == NAMESPACE
        assert obj["metadata"]["labels"] == {
            "kglance.io/pod": POD,
            "kglance.io/backend": "fast",
            "app.kubernetes.io/created-by": "kglance-sidecar",
        }
        assert obj["spec"] == {
            "imageId": image_id,
            "backend": "fast",
            "location": answer["location"],
            "size": len(IMAGE),
            "checksum": answer["checksum"],
            "osHashAlgo": "sha512",
            "osHashValue": answer["os_hash_value"],
            "metadata": answer["metadata"],
            "reclaimPolicy": "Delete",
        }
        assert answer["location"] == f"file://{tmp_path / 'fast' / image_id}"
        assert "status" not in obj  # the operator's part
        assert_valid_image_location(obj)
        created = await metric(
            process.socket, "kglance_sidecar_location_records_total", op="add", outcome="created"
        )
        assert created == 1

        # the kubelet rotates the token: the next call carries the new one
        rotated = f"kglance-rotated-token-{uuid.uuid4().hex}"
        (serviceaccount / "token.new").write_text(rotated)
        (serviceaccount / "token.new").replace(serviceaccount / "token")
        second = str(uuid.uuid4())
        await put(process.socket, second)
        await harness.eventually(lambda: stored(api, f"fast-{second}") is not None)

    sent = [r for r in api if r.resource == IMAGES]
    assert [r.headers.get("Authorization") for r in sent] == [
        f"Bearer {token}",
        f"Bearer {rotated}",
    ]
    for request in sent:
        assert request.method == "POST"
        assert (
            request.url.path == f"/apis/kglance.io/v1alpha1/namespaces/{NAMESPACE}/imagelocations"
        )
        assert token not in request.text and rotated not in request.text
        assert token not in str(request.url) and rotated not in str(request.url)
    log = process.log_text()
    assert token not in log and rotated not in log
    assert process.proc is not None and process.proc.returncode == 0


async def test_the_same_image_added_again_patches_the_existing_record(
    api: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serviceaccount: Path
) -> None:
    image_id = str(uuid.uuid4())
    name = f"fast-{image_id}"
    stale = {
        "apiVersion": "kglance.io/v1alpha1",
        "kind": "ImageLocation",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"team": "a"}},
        "spec": {
            "imageId": image_id,
            "backend": "fast",
            "location": "file:///gone/elsewhere",
            "size": 1,
            "checksum": "0" * 32,
            "reclaimPolicy": "Retain",
        },
    }
    async with api.post(
        f"/apis/kglance.io/v1alpha1/namespaces/{NAMESPACE}/imagelocations", json=stale
    ) as resp:
        assert resp.status == 200, await resp.text()
    async with sidecar(
        tmp_path, monkeypatch, api_url=str(api.url), serviceaccount=serviceaccount
    ) as process:
        answer = await put(process.socket, image_id)

        def patched() -> bool:
            obj = stored(api, name)
            return obj is not None and obj["spec"]["location"] == answer["location"]

        await harness.eventually(patched)
        obj = stored(api, name)
        assert obj is not None
        assert obj["spec"]["size"] == len(IMAGE)
        assert obj["spec"]["checksum"] == answer["checksum"]
        assert obj["spec"]["osHashValue"] == answer["os_hash_value"]
        assert obj["spec"]["reclaimPolicy"] == "Retain"  # the user's choice stays
        assert obj["metadata"]["labels"]["team"] == "a"
        assert obj["metadata"]["labels"]["kglance.io/pod"] == POD
        assert_valid_image_location(obj, old=stale)
        updated = await metric(
            process.socket, "kglance_sidecar_location_records_total", op="add", outcome="updated"
        )
        assert updated == 1
    calls = [(r.method, r.name) for r in requests_to(api, name)]
    assert calls == [("POST", None), ("POST", None), ("GET", name), ("PATCH", name)]
    patch = next(r for r in requests_to(api, name) if r.method == "PATCH")
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert "reclaimPolicy" not in patch.data["spec"]


async def test_an_object_deleted_between_the_conflict_and_the_update_is_created_again(
    api: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serviceaccount: Path
) -> None:
    image_id = str(uuid.uuid4())
    name = f"fast-{image_id}"
    old = {
        "apiVersion": "kglance.io/v1alpha1",
        "kind": "ImageLocation",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"imageId": image_id, "backend": "fast", "location": "file:///old/copy"},
    }
    async with api.post(
        f"/apis/kglance.io/v1alpha1/namespaces/{NAMESPACE}/imagelocations", json=old
    ) as resp:
        assert resp.status == 200, await resp.text()
    api.vanish_before_get.add(name)
    async with sidecar(
        tmp_path, monkeypatch, api_url=str(api.url), serviceaccount=serviceaccount
    ) as process:
        answer = await put(process.socket, image_id)

        async def created() -> bool:
            count = await metric(
                process.socket,
                "kglance_sidecar_location_records_total",
                op="add",
                outcome="created",
            )
            return count == 1

        await harness.eventually(created)
        [warning] = warnings(process)
        assert warning["message"] == "recording the image location failed; will retry"
        assert "vanished" in warning["error"]
    obj = stored(api, name)
    assert obj is not None
    assert obj["spec"]["location"] == answer["location"]
    assert obj["spec"]["reclaimPolicy"] == "Delete"
    calls = [(r.method, r.name) for r in requests_to(api, name)]
    assert calls == [("POST", None), ("POST", None), ("GET", name), ("POST", None)]


async def test_an_object_of_the_same_name_for_another_image_is_not_overwritten(
    api: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serviceaccount: Path
) -> None:
    image_id = str(uuid.uuid4())
    name = f"fast-{image_id}"
    theirs = {
        "apiVersion": "kglance.io/v1alpha1",
        "kind": "ImageLocation",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"imageId": "another-image", "backend": "fast", "location": "file:///x/y"},
    }
    async with api.post(
        f"/apis/kglance.io/v1alpha1/namespaces/{NAMESPACE}/imagelocations", json=theirs
    ) as resp:
        assert resp.status == 200, await resp.text()
    async with sidecar(
        tmp_path, monkeypatch, api_url=str(api.url), serviceaccount=serviceaccount
    ) as process:
        await put(process.socket, image_id)
        await harness.eventually(lambda: bool(warnings(process)))
        [warning] = warnings(process)
        assert warning["message"] == "recording the image location failed; giving up"
        assert "records image 'another-image'" in warning["error"]
        failed = await metric(
            process.socket, "kglance_sidecar_location_records_total", op="add", outcome="failed"
        )
        assert failed == 1
    obj = stored(api, name)
    assert obj is not None and obj["spec"] == theirs["spec"]
    assert not [r for r in requests_to(api, name) if r.method == "PATCH"]


async def test_a_delete_retires_the_record_so_a_late_finalizer_keeps_a_readded_image(
    api: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serviceaccount: Path
) -> None:
    async with sidecar(
        tmp_path,
        monkeypatch,
        api_url=str(api.url),
        serviceaccount=serviceaccount,
        KGLANCE_RECORD_ATTEMPTS="1000",
    ) as process:
        image_id = str(uuid.uuid4())
        name = f"fast-{image_id}"
        path = f"/apis/kglance.io/v1alpha1/namespaces/{NAMESPACE}/imagelocations/{name}"
        await put(process.socket, image_id)
        await harness.eventually(lambda: stored(api, name) is not None)
        # the operator's finalizer, as kopf would add it
        finalizer = {"metadata": {"finalizers": [names.FINALIZER]}}
        async with api.patch(path, json=finalizer) as resp:
            assert resp.status == 200

        await delete(process.socket, image_id)

        def retiring() -> bool:
            obj = stored(api, name)
            return obj is not None and bool(obj["metadata"].get("deletionTimestamp"))

        await harness.eventually(retiring)
        obj = stored(api, name)
        assert obj is not None and obj["spec"]["reclaimPolicy"] == "Retain"
        deleting = [r for r in requests_to(api, name) if r.method == "DELETE"]
        assert len(deleting) == 1
        assert deleting[0].data["preconditions"] == {"uid": obj["metadata"]["uid"]}

        # added again while the finalizer still holds the old object: the sidecar waits
        await put(process.socket, image_id)
        await harness.eventually(
            lambda: any("still being deleted" in w.get("error", "") for w in warnings(process))
        )
        async with api.patch(path, json={"metadata": {"finalizers": None}}) as resp:
            assert resp.status == 200  # the operator releases the retained object

        def recreated() -> bool:
            obj = stored(api, name)
            return obj is not None and not obj["metadata"].get("deletionTimestamp")

        await harness.eventually(recreated)
        obj = stored(api, name)
        assert obj is not None and obj["spec"]["reclaimPolicy"] == "Delete"
        assert await read(process.socket, image_id) == IMAGE

        # a delete without a finalizer in the way removes the object
        await delete(process.socket, image_id)
        await harness.eventually(lambda: stored(api, name) is None)
        deleted = await metric(
            process.socket, "kglance_sidecar_location_records_total", op="delete", outcome="deleted"
        )
        assert deleted == 2


async def test_a_delete_leaves_a_record_of_another_location_alone(
    api: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serviceaccount: Path
) -> None:
    async with sidecar(
        tmp_path, monkeypatch, api_url=str(api.url), serviceaccount=serviceaccount
    ) as process:
        image_id = str(uuid.uuid4())
        name = f"fast-{image_id}"
        path = f"/apis/kglance.io/v1alpha1/namespaces/{NAMESPACE}/imagelocations/{name}"
        await put(process.socket, image_id)
        await harness.eventually(lambda: stored(api, name) is not None)
        moved = {"spec": {"location": "file:///somewhere/else"}}
        async with api.patch(path, json=moved) as resp:
            assert resp.status == 200
        await delete(process.socket, image_id)
        await harness.eventually(
            lambda: any(
                r.get("outcome") == "left_alone" and r.get("image_id") == image_id
                for r in process.log_records()
            )
        )
        assert stored(api, name) is not None
        changes = [r for r in requests_to(api, name) if r.method in ("PATCH", "DELETE")]
        assert len(changes) == 1  # the test's own patch


# --------------------------------------------------------------------------- TLS


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA (certificate, key) made with the openssl command."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    openssl(
        "req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def make_server_cert(directory: Path, *, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """A serving certificate for 127.0.0.1 signed by ``ca``."""
    cert, key, csr = directory / "tls.crt", directory / "tls.key", directory / "tls.csr"
    extensions = directory / "tls.ext"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    openssl(
        "req", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", str(key), "-out", str(csr), "-subj", "/CN=kubernetes",
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(extensions),
    )  # fmt: skip
    return cert, key


def openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr.decode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory, "cluster-ca")
    other, _ = make_ca(directory / "other", "other-ca")
    cert, key = make_server_cert(directory, ca=ca)
    return {"ca": ca[0], "other_ca": other, "cert": cert, "key": key}


@contextlib.asynccontextmanager
async def over_tls(api: Emulator, pki: dict[str, Path]) -> AsyncIterator[str]:
    """The emulator also served over https (aiohttp's low-level server); its URL."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki["cert"], pki["key"])
    handler = aiohttp.web.Server(api)
    server = await asyncio.get_running_loop().create_server(handler, "127.0.0.1", 0, ssl=context)
    try:
        yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await handler.shutdown(1.0)
        await server.wait_closed()


async def test_the_api_server_is_verified_against_the_service_account_ca(
    api: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    serviceaccount: Path,
    token: str,
    pki: dict[str, Path],
) -> None:
    (serviceaccount / "ca.crt").write_bytes(pki["ca"].read_bytes())
    async with (
        over_tls(api, pki) as url,
        sidecar(tmp_path, monkeypatch, api_url=url, serviceaccount=serviceaccount) as process,
    ):
        image_id = str(uuid.uuid4())
        await put(process.socket, image_id)
        await harness.eventually(lambda: stored(api, f"fast-{image_id}") is not None)
    [request] = [r for r in api if r.resource == IMAGES]
    assert request.headers["Authorization"] == f"Bearer {token}"
    assert request.url.scheme == "https"


async def test_an_api_server_the_ca_does_not_vouch_for_gets_nothing(
    api: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    serviceaccount: Path,
    token: str,
    pki: dict[str, Path],
) -> None:
    (serviceaccount / "ca.crt").write_bytes(pki["other_ca"].read_bytes())
    async with (
        over_tls(api, pki) as url,
        sidecar(
            tmp_path,
            monkeypatch,
            api_url=url,
            serviceaccount=serviceaccount,
            KGLANCE_RECORD_ATTEMPTS="2",
        ) as process,
    ):
        await put(process.socket, str(uuid.uuid4()))
        await harness.eventually(lambda: len(warnings(process)) == 2)
        assert "CERTIFICATE_VERIFY_FAILED" in warnings(process)[0]["error"]
    assert not list(api)  # no request, so no token, ever reached the server
    assert token not in process.log_text()


# --------------------------------------------------------------------------- API trouble


async def test_an_unreachable_api_never_fails_the_add_and_the_queue_stays_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serviceaccount: Path, token: str
) -> None:
    async with sidecar(
        tmp_path,
        monkeypatch,
        api_url=f"http://127.0.0.1:{free_port()}",
        serviceaccount=serviceaccount,
        KGLANCE_RECORD_ATTEMPTS="1000",
        KGLANCE_RECORD_BACKOFF="0.5",
        KGLANCE_RECORD_QUEUE_SIZE="2",
        KGLANCE_RECORD_FLUSH_TIMEOUT="0.5",
    ) as process:
        ids = [str(uuid.uuid4()) for _ in range(5)]
        for image_id in ids:
            await put(process.socket, image_id)
        for image_id in ids:
            assert await read(process.socket, image_id) == IMAGE
        await harness.eventually(lambda: bool(warnings(process)))
        first = warnings(process)[0]
        assert first["message"] == "recording the image location failed; will retry"
        assert first["image_id"] == ids[0] and first["backend"] == "fast"
        errors = await metric(
            process.socket,
            "kglance_sidecar_location_record_errors_total",
            op="add",
            reason="unreachable",
        )
        assert errors >= 1
        dropped = await metric(
            process.socket, "kglance_sidecar_location_records_total", op="add", outcome="dropped"
        )
        assert dropped == 2  # one in the worker, two queued, the last two dropped
        assert await metric(process.socket, "kglance_sidecar_location_records_pending") == 3
        ops = process.operations(op="put")
        assert [r["outcome"] for r in ops] == ["ok"] * 5
    assert process.proc is not None and process.proc.returncode == 0
    lost = [r for r in warnings(process) if "flush deadline" in r["message"]]
    assert len(lost) == 1 and lost[0]["count"] == 3
    assert [r["image_id"] for r in lost[0]["records"]] == ids[:3]
    assert token not in process.log_text()


async def test_records_wait_for_an_api_server_that_comes_up_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serviceaccount: Path
) -> None:
    port = free_port()
    async with sidecar(
        tmp_path,
        monkeypatch,
        api_url=f"http://127.0.0.1:{port}",
        serviceaccount=serviceaccount,
        KGLANCE_RECORD_ATTEMPTS="1000",
        KGLANCE_RECORD_BACKOFF="0.05",
    ) as process:
        image_id = str(uuid.uuid4())
        await put(process.socket, image_id)
        await harness.eventually(lambda: bool(warnings(process)))
        async with emulator(port=port) as api:
            await harness.eventually(lambda: stored(api, f"fast-{image_id}") is not None)
            created = await metric(
                process.socket,
                "kglance_sidecar_location_records_total",
                op="add",
                outcome="created",
            )
            assert created == 1


async def test_a_refused_record_is_given_up_without_retrying(
    api: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serviceaccount: Path
) -> None:
    api["post", IMAGES] << km.KubernetesError(status=403, reason="Forbidden", message="no RBAC")
    async with sidecar(
        tmp_path,
        monkeypatch,
        api_url=str(api.url),
        serviceaccount=serviceaccount,
        KGLANCE_RECORD_ATTEMPTS="1000",
    ) as process:
        image_id = str(uuid.uuid4())
        await put(process.socket, image_id)

        async def failed() -> bool:
            return (
                await metric(
                    process.socket,
                    "kglance_sidecar_location_records_total",
                    op="add",
                    outcome="failed",
                )
                == 1
            )

        await harness.eventually(failed)
        errors = await metric(
            process.socket,
            "kglance_sidecar_location_record_errors_total",
            op="add",
            reason="http_403",
        )
        assert errors == 1
        assert [w["message"] for w in warnings(process)] == [
            "recording the image location failed; giving up"
        ]


async def test_shutdown_flushes_pending_records(
    api: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serviceaccount: Path, token: str
) -> None:
    (serviceaccount / "token").unlink()  # records wait (and retry) until the token is mounted
    async with sidecar(
        tmp_path,
        monkeypatch,
        api_url=str(api.url),
        serviceaccount=serviceaccount,
        KGLANCE_RECORD_ATTEMPTS="1000",
        KGLANCE_RECORD_BACKOFF="0.2",
        KGLANCE_RECORD_FLUSH_TIMEOUT="20",
    ) as process:
        image_id = str(uuid.uuid4())
        await put(process.socket, image_id)
        await harness.eventually(lambda: bool(warnings(process)))
        assert "cannot read the service account token" in warnings(process)[0]["error"]
        assert stored(api, f"fast-{image_id}") is None
        process.send(signal.SIGTERM)
        (serviceaccount / "token").write_text(token)  # only now can the record succeed
        assert await asyncio.to_thread(process.wait_exit) == 0
    assert stored(api, f"fast-{image_id}") is not None
    assert [r["image_id"] for r in process.log_records() if r.get("outcome") == "created"] == [
        image_id
    ]
    assert not [r for r in warnings(process) if r.get("outcome") == "dropped"]


# --------------------------------------------------------------------------- pieces


def test_names_are_dns_1123_and_keep_distinct_ids_apart() -> None:
    image_id = str(uuid.uuid4())
    assert recording.location_name("fast", image_id) == f"fast-{image_id}"
    upper = recording.location_name("fast", "ABC")
    lower = recording.location_name("fast", "abc")
    assert lower == "fast-abc" and upper != lower and upper.startswith("fast-abc-")
    odd = [
        recording.location_name("Fast_SSD", "image_1.raw"),
        recording.location_name("b", "x" * 255),
        recording.location_name("_", "_"),
        recording.location_name("b", "-" + "9" * 254),
    ]
    for name in odd:
        assert DNS_1123.match(name) and len(name) <= 253, name
    assert len(set(odd)) == len(odd)


def test_label_values_are_valid() -> None:
    assert recording.label_value(POD) == POD
    long = recording.label_value("pod-" + "a" * 300)
    assert len(long) == 63
    assert recording.label_value("-x_y.") == "x_y"


def test_recording_settings_from_the_environment(tmp_path: Path) -> None:
    assert settings.recording_from_env({}) is None
    assert settings.recording_from_env({"KGLANCE_RECORD_LOCATIONS": "false"}) is None
    base = {
        "KGLANCE_RECORD_LOCATIONS": "true",
        "KGLANCE_POD_NAME": POD,
        "KGLANCE_SERVICEACCOUNT_DIR": str(tmp_path),
        "KUBERNETES_SERVICE_HOST": "fd00::1",
        "KUBERNETES_SERVICE_PORT": "6443",
    }
    with pytest.raises(settings.RecordingConfigError, match="KGLANCE_NAMESPACE"):
        settings.recording_from_env(base)
    (tmp_path / "namespace").write_text("team-a\n")
    options = settings.recording_from_env(base)
    assert options is not None
    assert options.namespace == "team-a"
    assert options.api_url == "https://[fd00::1]:6443"
    assert options.serviceaccount_dir == tmp_path
    for url in ("http://10.0.0.1:8080", "http://api.example:80", "ftp://127.0.0.1"):
        with pytest.raises(settings.RecordingConfigError, match="loopback"):
            settings.recording_from_env({**base, "KGLANCE_KUBERNETES_API": url})
    local = settings.recording_from_env({**base, "KGLANCE_KUBERNETES_API": "http://127.0.0.1:1/"})
    assert local is not None and local.api_url == "http://127.0.0.1:1"
    with pytest.raises(settings.RecordingConfigError, match="KGLANCE_POD_NAME"):
        settings.recording_from_env({**base, "KGLANCE_POD_NAME": ""})
    with pytest.raises(settings.RecordingConfigError, match="KUBERNETES_SERVICE_HOST"):
        settings.recording_from_env({**base, "KUBERNETES_SERVICE_HOST": ""})


def test_a_sidecar_refuses_to_start_with_unsafe_recording_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serviceaccount: Path
) -> None:
    monkeypatch.setenv("KGLANCE_RECORD_LOCATIONS", "true")
    monkeypatch.setenv("KGLANCE_POD_NAME", POD)
    monkeypatch.setenv("KGLANCE_SERVICEACCOUNT_DIR", str(serviceaccount))
    monkeypatch.setenv("KGLANCE_KUBERNETES_API", "http://10.0.0.1:8080")
    process = harness.Sidecar(tmp_path, config=None).start()
    assert process.wait_exit() == 2
    errors = [r for r in process.log_records() if r.get("level") == "error"]
    assert errors and "loopback" in json.dumps(errors)
    assert not process.socket.exists()
