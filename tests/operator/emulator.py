"""The whole operator (``handlers.make_registry``) under the real kopf, against kmock's emulator.

No Kubernetes can run on the test machines, so the operator's tests run kopf's real watch,
handler and patch loop against kmock's ``KubernetesEmulator``: an aiohttp server speaking the
Kubernetes API over HTTP with an in-memory object store. ``Emulator`` fills in what kmock 0.8
leaves out and kopf relies on (``/work/shared/infra/kubernetes.md`` lists the gaps):
server-managed metadata (uid, resourceVersion, creationTimestamp, generation bumped on spec
changes), ``metadata.namespace`` from the URL, ``generateName``, 422 instead of 500 for a failed
JSON-patch test, and a namespace list (kmock cannot parse ``/api/v1/namespaces``; seed it with
``add_namespace``). ``running_operator`` turns kopf's scanning off, so tests need no namespaces.

Use it through the ``operator_env`` fixture (``tests/operator/conftest.py``): one operator per
test module, since kmock's teardown alone takes seconds. Modules using it run their tests in the
module's event loop (``pytestmark = pytest.mark.asyncio(loop_scope="module")``) and give each
test its own namespace, so tests sharing the operator cannot see each other's objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal, TypeVar

import aiohttp.web
import jsonpatch
import kmock
import kopf

from kglance.operator import handlers, kube, main, names
from kglance.operator.settings import OperatorSettings

T = TypeVar("T")

STOREBACKENDS = kmock.resource(names.GROUP, names.VERSION, names.STOREBACKENDS)
IMAGELOCATIONS = kmock.resource(names.GROUP, names.VERSION, names.IMAGELOCATIONS)
SECRETS = kmock.resource("", "v1", "secrets")
CONFIGMAPS = kmock.resource("", "v1", "configmaps")
EVENTS = kmock.resource("", "v1", "events")
PODS = kmock.resource("", "v1", "pods")
NAMESPACES = kmock.resource("", "v1", "namespaces")

# kind -> (API group/version path prefix, plural, kmock resource)
KINDS: dict[str, tuple[str, str, Any]] = {
    names.STOREBACKEND_KIND: (f"/apis/{names.API_VERSION}", names.STOREBACKENDS, STOREBACKENDS),
    names.IMAGELOCATION_KIND: (f"/apis/{names.API_VERSION}", names.IMAGELOCATIONS, IMAGELOCATIONS),
    "Secret": ("/api/v1", "secrets", SECRETS),
    "ConfigMap": ("/api/v1", "configmaps", CONFIGMAPS),
    "Event": ("/api/v1", "events", EVENTS),
    "Pod": ("/api/v1", "pods", PODS),
}
READY_TIMEOUT = 10.0
WAIT_TIMEOUT = 20.0


class Emulator(kmock.KubernetesEmulator):
    """kmock's emulator plus the server-managed metadata kopf relies on."""

    _versions = iter(range(1, 1_000_000_000))

    def _current_generation(self, request: Any) -> int:
        key = (request.resource, request.namespace, request.name)
        with contextlib.suppress(KeyError, TypeError):
            return int(self.objects[key].get("metadata", {}).get("generation") or 1)
        return 1

    def add_namespace(self, name: str) -> None:
        """A Namespace object, as listed to an operator that scans namespaces."""
        self.objects[NAMESPACES, None, name] = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "uid": str(uuid.uuid4()), "resourceVersion": "1"},
        }

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # kmock 0.8 cannot even parse a path of a cluster-scoped list (/api/v1/namespaces):
        # serve the stored Namespace objects here, and a watch that never reports a change
        if raw_request.path == "/api/v1/namespaces" and raw_request.method == "GET":
            return await self._namespaces(raw_request)
        response: aiohttp.web.StreamResponse = await super().__call__(raw_request)
        return response

    async def _namespaces(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if raw_request.query.get("watch") in ("true", "1"):
            stream = aiohttp.web.StreamResponse()
            await stream.prepare(raw_request)
            await asyncio.Event().wait()  # until the client goes or the server stops
        items = [
            dict(obj.raw)
            for (resource, _, _), obj in self.objects.items()
            if resource == NAMESPACES and not obj.deleted
        ]
        return aiohttp.web.json_response(
            {"apiVersion": "v1", "kind": "NamespaceList", "metadata": {}, "items": items}
        )

    async def _handle(self, request: Any) -> Any:
        if request.resource is not None and isinstance(request.data, dict | list):
            version = str(next(self._versions))
            if request.action == kmock.action.CREATE and isinstance(request.data, dict):
                meta = request.data.setdefault("metadata", {})
                if not meta.get("name") and meta.get("generateName"):  # kopf's events use it
                    meta["name"] = meta["generateName"] + uuid.uuid4().hex[:10]
                if request.namespace:  # kmock's watch filter drops objects without it
                    meta.setdefault("namespace", request.namespace)
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("generation", 1)
                meta.setdefault(
                    "creationTimestamp",
                    datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                )
                meta["resourceVersion"] = version
            elif request.action == kmock.action.UPDATE and isinstance(request.data, dict):
                meta = request.data.setdefault("metadata", {})
                meta["resourceVersion"] = version
                if "spec" in request.data and not getattr(request, "subresource", None):
                    meta["generation"] = self._current_generation(request) + 1
            elif request.action == kmock.action.UPDATE and isinstance(
                request.data, list
            ):  # JSON patch: after kopf's "test"
                request.data.append(
                    {"op": "add", "path": "/metadata/resourceVersion", "value": version}
                )
        try:
            return await super()._handle(request)
        except jsonpatch.JsonPatchTestFailed as exc:
            # a real API server answers 422 and kopf re-reads; kmock's 500 makes it retry blindly
            raise kmock.KubernetesError(status=422, reason="Invalid", message=str(exc)) from exc


def declare_resources(emulator: Any) -> None:
    """Discovery entries for everything the operator lists, watches or writes."""
    verbs = ["list", "watch", "get", "patch", "create", "delete"]
    for kind, (_, plural, _) in KINDS.items():
        if kind in (names.STOREBACKEND_KIND, names.IMAGELOCATION_KIND):
            emulator.resources[f"{names.API_VERSION}/{plural}"] = kmock.ResourceInfo(
                kind=kind,
                singular=kind.lower(),
                namespaced=True,
                verbs=verbs,
                subresources=["status"],
            )
        else:
            emulator.resources[f"v1/{plural}"] = kmock.ResourceInfo(
                kind=kind, singular=kind.lower(), namespaced=True, verbs=verbs
            )
    # kopf waits for namespaces in discovery even with scanning disabled
    emulator.resources["v1/namespaces"] = kmock.ResourceInfo(kind="Namespace", namespaced=False)


def object_path(kind: str, namespace: str, name: str | None = None) -> str:
    prefix, plural, _ = KINDS[kind]
    path = f"{prefix}/namespaces/{namespace}/{plural}"
    return path if name is None else f"{path}/{name}"


@dataclasses.dataclass
class OperatorEnv:
    """A running operator: the emulator, an API client to act like kubectl, and ``wait_for``."""

    emulator: Any
    settings: OperatorSettings
    api: kube.Api
    webhook_url: str = ""  # the operator's admission webhooks (plain HTTP), e.g. + "/inject"

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        meta = body["metadata"]
        return await self.api.create(object_path(body["kind"], meta["namespace"]), body)

    async def patch(
        self, kind: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.api.patch(object_path(kind, namespace, name), patch)

    async def delete(self, kind: str, namespace: str, name: str) -> bool:
        return await self.api.delete(object_path(kind, namespace, name))

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object (``None`` if absent or deleted), read without a request."""
        key = (KINDS[kind][2], namespace, name)
        if key not in self.emulator.objects:
            return None
        obj = self.emulator.objects[key]
        return None if obj.deleted else dict(obj.raw)

    def all(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        resource = KINDS[kind][2]
        return [
            dict(obj.raw)
            for (res, ns, _), obj in self.emulator.objects.items()
            if res == resource and not obj.deleted and namespace in (None, ns)
        ]

    def events(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.all("Event", namespace)

    def requests(self) -> Iterator[Any]:
        """Every request the emulator served, in order."""
        return iter(list(self.emulator))

    async def wait_for(
        self,
        probe: Callable[[], T | Literal[False] | None],
        *,
        within: float = WAIT_TIMEOUT,
        what: str = "",
    ) -> T:
        """Poll ``probe`` until it returns something truthy, and return that."""
        deadline = time.monotonic() + within
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached within {within:g} s: {what or probe}")
            await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def emulator_kopf_settings(
    settings: OperatorSettings, *, webhook_port: int | None = None
) -> kopf.OperatorSettings:
    """The production kopf settings with what the emulator cannot serve turned off.

    The webhook server listens on ``webhook_port`` (kopf picks a free one when ``None``).
    """
    tuned = main.kopf_settings(settings)
    tuned.scanning.disabled = True  # the emulator answers 500 to a namespace list
    # kopf refuses webhook handlers without a server: plain HTTP on a free port, no certificates
    tuned.admission.server = kopf.WebhookServer(addr="127.0.0.1", port=webhook_port, insecure=True)
    tuned.watching.connect_timeout = 5
    tuned.peering.standalone = True
    return tuned


# the name it had first, still imported by tests/operator/test_imagelocations.py; a module that
# imports it must not have pytest collect it as a test
test_kopf_settings = emulator_kopf_settings
test_kopf_settings.__test__ = False  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def running_operator(settings: OperatorSettings) -> AsyncIterator[OperatorEnv]:
    """Start an emulator and the operator against it; stop both on exit."""
    async with Emulator() as emulator, kmock.Server(emulator):
        declare_resources(emulator)
        server = str(emulator.url).rstrip("/")

        def login() -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=server, insecure=True)

        api = kube.Api(login=login)
        webhook_port = free_port()
        ready, stop = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(
            kopf.operator(
                registry=handlers.make_registry(settings, login=login),
                settings=emulator_kopf_settings(settings, webhook_port=webhook_port),
                standalone=True,
                clusterwide=settings.clusterwide,
                namespaces=list(settings.namespaces),
                ready_flag=ready,
                stop_flag=stop,
            )
        )
        env = OperatorEnv(
            emulator=emulator,
            settings=settings,
            api=api,
            webhook_url=f"http://127.0.0.1:{webhook_port}",
        )
        try:
            await asyncio.wait_for(ready.wait(), READY_TIMEOUT)
            # kmock's watch snapshots and subscribes non-atomically: let every watch settle
            watched = {STOREBACKENDS, IMAGELOCATIONS, SECRETS, CONFIGMAPS}
            await env.wait_for(
                lambda: watched <= {r.resource for r in emulator[kmock.action.WATCH]},
                within=READY_TIMEOUT,
                what="kopf watching every resource",
            )
            await asyncio.sleep(0.3)
            yield env
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 15)
            await api.aclose()
