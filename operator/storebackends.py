"""StoreBackend reconciliation: one namespace's backends become one sidecar configuration.

Sidecars read a single glance_store configuration, so the unit of work is the namespace, not
the object: any change to a backend, or to a Secret or ConfigMap one of them references,
re-renders every backend of the namespace (``rendering.render_namespace``), writes the config
Secret the sidecars mount (they hot-reload it), and brings each backend's status in line. The
inputs are read fresh from the API server each time rather than from caches, because a
rotation must never be rendered from a stale copy of the Secret; a per-namespace lock keeps two
triggers (a backend edit and a Secret rotation arriving together) from interleaving.

The operator also needs working backends itself (probes, ImageLocation copies and deletions).
It renders a second copy of the same configuration with its own volume root and builds it with
the sidecar's config reader; ``backends_for`` caches that build until the rendering changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import kopf

from kglance.drivers import backends, registry
from kglance.operator import conditions, kube, names, probing, rendering, statuses
from kglance.operator.conditions import Condition
from kglance.operator.settings import OperatorSettings
from kglance.sidecar import config

SECRET_REF = "secretKeyRef"
CONFIG_MAP_REF = "configMapKeyRef"
RETIRED_KEPT = 4  # replaced operator-side builds kept open for operations still using them

logger = logging.getLogger(__name__)


def referenced(spec: Any, kind: str) -> set[str]:
    """Names of the Secrets (``secretKeyRef``) or ConfigMaps a spec refers to, at any depth."""
    found: set[str] = set()
    if isinstance(spec, Mapping):
        for key, value in spec.items():
            if key == kind and isinstance(value, Mapping) and value.get("name"):
                found.add(str(value["name"]))
            else:
                found |= referenced(value, kind)
    elif isinstance(spec, list):
        for item in spec:
            found |= referenced(item, kind)
    return found


def _name(body: Mapping[str, Any]) -> str:
    return str(body["metadata"]["name"])


def _with_kind(body: Mapping[str, Any]) -> dict[str, Any]:
    """List items come without apiVersion and kind; events and renderers want them."""
    return {"apiVersion": names.API_VERSION, "kind": names.STOREBACKEND_KIND, **body}


def _config_data(obj: Mapping[str, Any]) -> dict[str, str]:
    data = {k: str(v) for k, v in (obj.get("data") or {}).items()}
    for key, value in (obj.get("binaryData") or {}).items():
        data[key] = kube.decode_data({"data": {key: value}})[key].decode("utf-8", "replace")
    return data


@dataclasses.dataclass(frozen=True, slots=True)
class Inputs:
    """What a rendering of a namespace reads: its backends and their referenced data."""

    bodies: list[dict[str, Any]]
    secrets: dict[str, dict[str, bytes]]
    config_maps: dict[str, dict[str, str]]


def _digest(files: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(files.items()):
        digest.update(b"%d:%s%d:" % (len(key), key.encode(), len(value)) + value)
    return digest.hexdigest()


class _Build:
    """An operator-side build of a namespace's backends and the directory its files live in."""

    def __init__(
        self, digest: str, built: backends.Backends, directory: tempfile.TemporaryDirectory[str]
    ) -> None:
        self.digest = digest
        self.backends = built
        self.directory = directory

    async def aclose(self) -> None:
        await self.backends.aclose()
        self.directory.cleanup()


class StoreBackends:
    """Renders namespaces, writes their config Secrets and keeps backends' status."""

    def __init__(
        self, *, settings: OperatorSettings, api: kube.Api, drivers: registry.Registry
    ) -> None:
        self.settings = settings
        self.api = api
        self.drivers = drivers
        self._locks: dict[str, asyncio.Lock] = {}
        self._builds: dict[str, _Build] = {}
        self._retired: list[_Build] = []

    def lock(self, namespace: str) -> asyncio.Lock:
        return self._locks.setdefault(namespace, asyncio.Lock())

    def _path(self, namespace: str, name: str | None = None, *, status: bool = False) -> str:
        return kube.custom_path(
            names.GROUP,
            names.VERSION,
            names.STOREBACKENDS,
            namespace=namespace,
            name=name,
            subresource="status" if status else None,
        )

    async def list_backends(
        self, namespace: str, *, leaving: Iterable[str] = ()
    ) -> list[dict[str, Any]]:
        """The namespace's StoreBackends, without those whose deletion is going ahead."""
        gone = set(leaving)
        listing = await self.api.request("GET", self._path(namespace))
        items = [_with_kind(item) for item in listing.get("items") or []]
        return [item for item in items if _name(item) not in gone]

    async def inputs(self, namespace: str, bodies: Sequence[Mapping[str, Any]]) -> Inputs:
        """The Secrets and ConfigMaps the backends reference, read fresh (absent ones left out)."""
        specs = [body.get("spec") for body in bodies]
        secrets: dict[str, dict[str, bytes]] = {}
        for name in sorted(set().union(*(referenced(s, SECRET_REF) for s in specs))):
            found = await self.api.get(kube.core_path("secrets", namespace=namespace, name=name))
            if found is not None:
                secrets[name] = kube.decode_data(found)
        config_maps: dict[str, dict[str, str]] = {}
        for name in sorted(set().union(*(referenced(s, CONFIG_MAP_REF) for s in specs))):
            path = kube.core_path("configmaps", namespace=namespace, name=name)
            found = await self.api.get(path)
            if found is not None:
                config_maps[name] = _config_data(found)
        return Inputs(bodies=[dict(b) for b in bodies], secrets=secrets, config_maps=config_maps)

    def render(
        self, inputs: Inputs, *, volume_root: str, config_dir: str = names.SIDECAR_CONFIG_DIR
    ) -> rendering.Rendering:
        return rendering.render_namespace(
            inputs.bodies,
            secrets=inputs.secrets,
            config_maps=inputs.config_maps,
            volume_root=volume_root,
            config_dir=config_dir,
            drivers=self.drivers,
        )

    async def sync(self, namespace: str, *, leaving: Iterable[str] = ()) -> None:
        """Re-render ``namespace``, write its config Secret and every backend's status."""
        async with self.lock(namespace):
            bodies = await self.list_backends(namespace, leaving=leaving)
            if not bodies:
                if await self.api.delete(self._config_path(namespace)):
                    logger.info(
                        "Namespace %s has no StoreBackends: config Secret removed", namespace
                    )
                await self._retire(namespace)
                return
            inputs = await self.inputs(namespace, bodies)
            result = self.render(inputs, volume_root=self.settings.sidecar_volume_root)
            if await self._write_config(namespace, result.files):
                shown = ", ".join(result.included) or "no backend"
                message = f"{names.CONFIG_SECRET} now configures {shown}"
                for body in bodies:
                    if body["metadata"]["name"] in result.included:
                        kopf.info(_event_body(body), reason="ConfigRendered", message=message)
            for body in bodies:
                if not body["metadata"].get("deletionTimestamp"):  # the release handler's
                    await self._update_status(body, result)

    def _config_path(self, namespace: str, *, named: bool = True) -> str:
        return kube.core_path(
            "secrets", namespace=namespace, name=names.CONFIG_SECRET if named else None
        )

    async def _write_config(self, namespace: str, files: Mapping[str, bytes]) -> bool:
        """Create or patch the config Secret; whether anything changed."""
        data = kube.encode_data(files)
        labels = dict(names.LABELS)
        existing = await self.api.get(self._config_path(namespace))
        if existing is None:
            body = {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {"name": names.CONFIG_SECRET, "namespace": namespace, "labels": labels},
                "data": data,
            }
            await self.api.create(self._config_path(namespace, named=False), body)
            logger.info("Config Secret %s/%s created", namespace, names.CONFIG_SECRET)
            return True
        current = existing.get("data") or {}
        current_labels = (existing.get("metadata") or {}).get("labels") or {}
        if current == data and all(current_labels.get(k) == v for k, v in labels.items()):
            return False
        # a merge patch: keys no longer rendered are removed with null
        patch_data: dict[str, str | None] = {key: None for key in current if key not in data}
        patch_data.update(data)
        patch = {"metadata": {"labels": labels}, "data": patch_data}
        await self.api.patch(self._config_path(namespace), patch)
        logger.info("Config Secret %s/%s updated", namespace, names.CONFIG_SECRET)
        return True

    async def _update_status(
        self,
        body: Mapping[str, Any],
        result: rendering.Rendering,
        *,
        probe: Condition | None = None,
    ) -> None:
        name = _name(body)
        status = statuses.desired(
            body,
            included=name in result.included,
            is_default=result.default_backend == name,
            problems=result.problems.get(name, []),
            drivers=self.drivers,
            config_secret=names.CONFIG_SECRET,
            probe=probe,
        )
        await self.patch_status(body, status)

    async def patch_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        """Patch ``status`` when it says something new, with an event when ``Ready`` moved."""
        if statuses.unchanged(body, status):
            return
        meta = body["metadata"]
        await self.api.patch(
            self._path(meta["namespace"], meta["name"], status=True), {"status": status}
        )
        before = _ready(statuses.current_conditions(body))
        after = _ready(status.get("conditions") or [])
        if after is not None and (before is None or before[:2] != after[:2]):
            post = kopf.info if after[0] == "True" else kopf.warn
            post(_event_body(body), reason=after[1], message=after[2])

    async def probe(self, body: Mapping[str, Any]) -> Condition:
        """Probe one backend through the operator's own rendering and record the verdict."""
        namespace, name = body["metadata"]["namespace"], _name(body)
        async with self.lock(namespace):
            inputs = await self.inputs(namespace, await self.list_backends(namespace))
        volume_root = self.settings.operator_volume_root(namespace)
        with tempfile.TemporaryDirectory(prefix="kglance-probe-") as directory:
            result = self.render(inputs, volume_root=volume_root, config_dir=directory)
            if name in result.included:
                verdict = await probing.probe(
                    result.files, directory=directory, backend_id=name, drivers=self.drivers
                )
            else:
                verdict = probing.unknown("NotRendered", "not in the configuration")
        async with self.lock(namespace):
            fresh = await self.api.get(self._path(namespace, name))
            if fresh is not None and not (fresh.get("metadata") or {}).get("deletionTimestamp"):
                # read again: a rotation may have been rendered while the probe ran
                inputs = await self.inputs(namespace, await self.list_backends(namespace))
                sidecar_view = self.render(inputs, volume_root=self.settings.sidecar_volume_root)
                await self._update_status(_with_kind(fresh), sidecar_view, probe=verdict)
        return verdict

    async def block_deletion(self, body: Mapping[str, Any], *, users: Sequence[str]) -> str:
        """Mark a backend whose deletion waits for ImageLocations; returns the message."""
        shown = ", ".join(users[:10]) + (f" and {len(users) - 10} more" if len(users) > 10 else "")
        message = f"In use by ImageLocation {shown}"
        existing = statuses.current_conditions(body)
        generation = (body.get("metadata") or {}).get("generation")
        update = Condition(statuses.READY, "False", "InUse", message)
        status = {
            **(body.get("status") or {}),
            "conditions": conditions.merge(existing, [update], generation=generation),
        }
        await self.patch_status(body, status)
        return message

    async def backends_for(self, namespace: str) -> backends.Backends:
        """The operator's own backends of ``namespace``, rebuilt when its rendering changes."""
        async with self.lock(namespace):
            inputs = await self.inputs(namespace, await self.list_backends(namespace))
            volume_root = self.settings.operator_volume_root(namespace)
            # rendered against a fixed directory name only to tell whether anything changed
            digest = _digest(self.render(inputs, volume_root=volume_root, config_dir="/-").files)
            current = self._builds.get(namespace)
            if current is not None and current.digest == digest:
                return current.backends
            await self._retire(namespace)
            directory = tempfile.TemporaryDirectory(prefix="kglance-operator-")
            try:
                result = self.render(inputs, volume_root=volume_root, config_dir=directory.name)
                if not result.included:
                    directory.cleanup()
                    return backends.Backends((), default=None)
                path = await asyncio.to_thread(probing.write_files, directory.name, result.files)
                service = await asyncio.to_thread(config.read, path, drivers=self.drivers)
                built = await config.build(service, drivers=self.drivers)
            except BaseException:
                directory.cleanup()
                raise
            self._builds[namespace] = _Build(digest, built, directory)
            return built

    async def _retire(self, namespace: str) -> None:
        build = self._builds.pop(namespace, None)
        if build is not None:
            self._retired.append(build)
        while len(self._retired) > RETIRED_KEPT:
            with contextlib.suppress(Exception):
                await self._retired.pop(0).aclose()

    async def aclose(self) -> None:
        for build in [*self._builds.values(), *self._retired]:
            with contextlib.suppress(Exception):
                await build.aclose()
        self._builds.clear()
        self._retired.clear()


def _event_body(body: Mapping[str, Any]) -> kopf.Body:
    return kopf.Body(cast(kopf.RawBody, dict(body)))


def _ready(items: Sequence[Mapping[str, Any]]) -> tuple[str, str, str] | None:
    for item in items:
        if item.get("type") == statuses.READY:
            return str(item.get("status")), str(item.get("reason")), str(item.get("message"))
    return None
