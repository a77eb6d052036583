"""Sidecar injection: the mutating admission webhook that gives a pod its kglance sidecar.

A pod asks for the sidecar with the annotation ``kglance.io/inject: "true"``. ``inject`` is a
pure function from the pod to RFC 6902 patch operations, so every rule below is tested on plain
manifests; ``register`` wires it into kopf as the ``inject`` mutating webhook, which kopf serves
at ``/inject`` (the handler id is the URL path).

What the patch adds:

* the sidecar as a *native* sidecar: the first init container, ``restartPolicy: Always``
  (Kubernetes 1.29+). The kubelet starts it before any other init container and waits for its
  startup probe (``kglance backends`` over the socket), so init containers and app containers
  alike find the socket answering; it stops after the app containers, so uploads in flight end.
* ``kglance-socket``, an in-memory emptyDir at ``/run/kglance``: the sidecar mounts it writable,
  every other container (init containers too) read-only, with ``KGLANCE_SOCKET`` in its env.
* the namespace's config Secret, mounted into the sidecar only (app containers never see store
  credentials), and one PVC volume per file StoreBackend of the namespace, sidecar only.
* ``kglance.io/injected: <version>``, so a second pass over the same pod adds nothing.

Socket permissions. App containers run as any uid: root in a CI runner, an image's own user,
an arbitrary uid on OpenShift. A Unix socket admits a client that may write to the socket file,
so a mode keyed to the sidecar's uid or gid would shut most apps out. The alternative, a
pod-level ``fsGroup``, is not ours to set: it applies to every volume of the pod, so the kubelet
would re-own the app's own volumes (slow on large PVCs, and it changes their files), and it
alters the supplementary groups of every app container. So the sidecar binds the socket with
mode 0666 (``--socket-mode 0666``) and the trust boundary is the pod: the socket lives in an
emptyDir that only this pod's containers mount, exactly like a port on the pod's loopback
interface. App containers mount that directory read-only, which still lets them connect (a
socket is not a regular file; ``connect`` is not refused on a read-only mount) but not remove or
replace the socket, so one container cannot impersonate the sidecar to the others.

The sidecar itself runs as uid/gid 65532 (numeric, so the kubelet can enforce runAsNonRoot
whatever user the image names) with a read-only root filesystem, no capabilities, no privilege
escalation and the runtime's default seccomp profile; ``/tmp`` is a small emptyDir. Two files
follow from not owning the pod's fsGroup:

* the config Secret volume uses mode 0444, not 0400: without an fsGroup its files belong to
  root, and 0400 would lock out uid 65532. Only the sidecar mounts the volume, so no other
  container can read them either way.
* a file backend's PVC must be writable by uid or gid 65532 (prepared by the storage admin), or
  the pod must set an ``fsGroup`` of its own (the sidecar then writes through that group).

The config Secret is mounted ``optional``: in a namespace without StoreBackends the pod still
starts, and the sidecar says why it cannot serve rather than the pod waiting for a volume.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import jsonpatch
import kopf

from kglance import __version__
from kglance.operator import names

SIDECAR_NAME = "kglance"
SIDECAR_UID = 65532
SOCKET_MODE = "0666"
SOCKET_ENV = "KGLANCE_SOCKET"
CONFIG_FILE = f"{names.SIDECAR_CONFIG_DIR}/{names.CONFIG_KEY}"
CONFIG_MODE = 0o444
INDEX_ID = "kglance_store_backends"  # the kopf index, and the handler's kwarg of the same name

JSONPatchOp = dict[str, Any]
_TRUE = "true"


class InjectionError(ValueError):
    """The pod cannot get the sidecar as it is (the message says what to change)."""


class SidecarSettings(Protocol):
    """The operator settings the injected sidecar is built from."""

    @property
    def sidecar_image(self) -> str: ...
    @property
    def sidecar_cpu_request(self) -> str | None: ...
    @property
    def sidecar_memory_request(self) -> str | None: ...
    @property
    def sidecar_memory_limit(self) -> str | None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class FileVolume:
    """A file StoreBackend's PVC, which the sidecar mounts at ``<volume root>/<backend>``."""

    backend: str
    claim_name: str
    sub_path: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class BackendEntry:
    """What the webhook keeps of one StoreBackend (a value of the kopf index)."""

    name: str
    type: str
    file: FileVolume | None = None


# -- the pure part -------------------------------------------------------------------------------


def wants_sidecar(pod: Mapping[str, Any]) -> bool:
    """Annotated for injection, and not injected yet (by us or by hand)."""
    annotations = pod.get("metadata", {}).get("annotations") or {}
    if str(annotations.get(names.INJECT_ANNOTATION, "")).strip().lower() != _TRUE:
        return False
    if names.INJECTED_ANNOTATION in annotations:
        return False
    spec = pod.get("spec", {})
    containers = [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]
    return all(c.get("name") != SIDECAR_NAME for c in containers)


def inject(
    pod: Mapping[str, Any],
    *,
    settings: SidecarSettings,
    file_backends: Sequence[FileVolume],
) -> list[JSONPatchOp]:
    """The JSON patch that adds the sidecar to ``pod``; empty if it is not wanted or present.

    Raises ``InjectionError`` if a container already mounts something at the socket directory.
    """
    if not wants_sidecar(pod):
        return []
    spec = pod.get("spec", {})
    init_containers = list(spec.get("initContainers") or ())
    app_containers = list(spec.get("containers") or ())
    taken = {v.get("name") for v in spec.get("volumes") or ()}
    socket_volume = _unique("kglance-socket", taken)
    config_volume = _unique("kglance-config", taken)
    tmp_volume = _unique("kglance-tmp", taken)
    files = sorted(file_backends, key=lambda f: f.backend)
    file_volumes = [_unique(f"kglance-file-{f.backend}", taken) for f in files]

    ops: list[JSONPatchOp] = [_annotation_op(pod)]
    ops += _append_ops(
        "/spec/volumes",
        spec.get("volumes"),
        [
            {"name": socket_volume, "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
            {
                "name": config_volume,
                "secret": {
                    "secretName": names.CONFIG_SECRET,
                    "defaultMode": CONFIG_MODE,
                    "optional": True,
                },
            },
            {"name": tmp_volume, "emptyDir": {"sizeLimit": "64Mi"}},
            *(
                {"name": name, "persistentVolumeClaim": {"claimName": f.claim_name}}
                for name, f in zip(file_volumes, files, strict=True)
            ),
        ],
    )
    # the clients' mounts first, at their current indices; the sidecar is inserted last
    for kind, containers in (("initContainers", init_containers), ("containers", app_containers)):
        for index, container in enumerate(containers):
            ops += _client_ops(f"/spec/{kind}/{index}", container, socket_volume=socket_volume)
    sidecar = _sidecar(
        settings,
        socket_volume=socket_volume,
        config_volume=config_volume,
        tmp_volume=tmp_volume,
        file_mounts=zip(file_volumes, files, strict=True),
    )
    if init_containers:
        ops.append({"op": "add", "path": "/spec/initContainers/0", "value": sidecar})
    else:
        ops.append({"op": "add", "path": "/spec/initContainers", "value": [sidecar]})
    return ops


def escape_pointer(token: str) -> str:
    """One JSON-pointer reference token (RFC 6901): ``~`` -> ``~0``, ``/`` -> ``~1``."""
    return token.replace("~", "~0").replace("/", "~1")


def _annotation_op(pod: Mapping[str, Any]) -> JSONPatchOp:
    metadata = pod.get("metadata", {})
    if metadata.get("annotations") is None:
        value = {names.INJECTED_ANNOTATION: __version__}
        return {"op": "add", "path": "/metadata/annotations", "value": value}
    path = f"/metadata/annotations/{escape_pointer(names.INJECTED_ANNOTATION)}"
    return {"op": "add", "path": path, "value": __version__}


def _append_ops(path: str, current: object, items: Sequence[object]) -> list[JSONPatchOp]:
    """Append ``items`` to the list at ``path``, creating it when absent (or null)."""
    if current is None:
        return [{"op": "add", "path": path, "value": list(items)}]
    return [{"op": "add", "path": f"{path}/-", "value": item} for item in items]


def _unique(wanted: str, taken: set[Any]) -> str:
    """A volume name (DNS-1123 label) not in ``taken``; adds it to ``taken``."""
    base = _dns_label(wanted)
    name, number = base, 1
    while name in taken:
        number += 1
        suffix = f"-{number}"
        name = base[: 63 - len(suffix)].rstrip("-") + suffix
    taken.add(name)
    return name


def _dns_label(text: str) -> str:
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    if len(label) <= 63:
        return label
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{label[:54].rstrip('-')}-{digest}"


def _client_ops(
    path: str, container: Mapping[str, Any], *, socket_volume: str
) -> list[JSONPatchOp]:
    mounts = container.get("volumeMounts")
    for mount in mounts or ():
        if mount.get("mountPath", "").rstrip("/") == names.SOCKET_DIR:
            raise InjectionError(
                f"container {container.get('name')!r} already mounts {names.SOCKET_DIR}, "
                "where the kglance socket goes"
            )
    mount = {"name": socket_volume, "mountPath": names.SOCKET_DIR, "readOnly": True}
    ops = _append_ops(f"{path}/volumeMounts", mounts, [mount])
    env = container.get("env")
    if all(e.get("name") != SOCKET_ENV for e in env or ()):
        ops += _append_ops(f"{path}/env", env, [{"name": SOCKET_ENV, "value": names.SOCKET_PATH}])
    return ops


def _sidecar(
    settings: SidecarSettings,
    *,
    socket_volume: str,
    config_volume: str,
    tmp_volume: str,
    file_mounts: Iterable[tuple[str, FileVolume]],
) -> dict[str, Any]:
    mounts: list[dict[str, Any]] = [
        {"name": socket_volume, "mountPath": names.SOCKET_DIR},
        {"name": config_volume, "mountPath": names.SIDECAR_CONFIG_DIR, "readOnly": True},
        {"name": tmp_volume, "mountPath": "/tmp"},
    ]
    for volume, file in file_mounts:
        mount = {"name": volume, "mountPath": f"{names.SIDECAR_VOLUME_ROOT}/{file.backend}"}
        if file.sub_path:
            mount["subPath"] = file.sub_path
        mounts.append(mount)
    answers = ["kglance", "backends", "--socket", names.SOCKET_PATH]
    return {
        "name": SIDECAR_NAME,
        "image": settings.sidecar_image,
        "restartPolicy": "Always",
        "args": [
            "serve",
            "--config",
            CONFIG_FILE,
            "--socket",
            names.SOCKET_PATH,
            "--socket-mode",
            SOCKET_MODE,
        ],
        "env": [
            {"name": SOCKET_ENV, "value": names.SOCKET_PATH},
            {"name": "KGLANCE_RECORD_LOCATIONS", "value": "true"},
            _field_env("KGLANCE_NAMESPACE", "metadata.namespace"),
            _field_env("KGLANCE_POD_NAME", "metadata.name"),
        ],
        "resources": _resources(settings),
        "startupProbe": _exec_probe(answers, period=1, failures=120),
        "readinessProbe": _exec_probe(answers, period=10, failures=3),
        "livenessProbe": _exec_probe(answers, period=30, failures=3),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": SIDECAR_UID,
            "runAsGroup": SIDECAR_UID,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    }


def _field_env(name: str, field: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": field}}}


def _exec_probe(command: list[str], *, period: int, failures: int) -> dict[str, Any]:
    return {
        "exec": {"command": command},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _resources(settings: SidecarSettings) -> dict[str, Any]:
    requests = {
        key: value
        for key, value in (
            ("cpu", settings.sidecar_cpu_request),
            ("memory", settings.sidecar_memory_request),
        )
        if value
    }
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = requests
    if settings.sidecar_memory_limit:
        resources["limits"] = {"memory": settings.sidecar_memory_limit}
    return resources


# -- the kopf part -------------------------------------------------------------------------------


def backend_entry(name: str, spec: Mapping[str, Any]) -> BackendEntry:
    """The index value of one StoreBackend (a file one without a claim gets no volume)."""
    type_ = str(spec.get("type", ""))
    file_spec = spec.get("file") or {}
    claim = file_spec.get("claimName")
    if type_ != "file" or not claim:
        return BackendEntry(name=name, type=type_)
    volume = FileVolume(backend=name, claim_name=claim, sub_path=file_spec.get("subPath") or "")
    return BackendEntry(name=name, type=type_, file=volume)


def register(registry: kopf.OperatorRegistry, *, settings: SidecarSettings) -> None:
    """Add the ``inject`` mutating webhook and the StoreBackend index it reads to ``registry``."""

    @kopf.index(names.GROUP, names.VERSION, names.STOREBACKENDS, id=INDEX_ID, registry=registry)
    def index_backend(
        name: str, namespace: str | None, spec: Mapping[str, Any], **_: Any
    ) -> dict[str | None, BackendEntry]:
        return {namespace: backend_entry(name, spec)}

    @kopf.on.mutate("v1", "pods", id="inject", operations=["CREATE"], registry=registry)
    def inject_sidecar(
        body: Mapping[str, Any],
        patch: kopf.Patch,
        warnings: list[str],
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
        **kwargs: Any,
    ) -> None:
        if not wants_sidecar(body):
            return
        namespace = body.get("metadata", {}).get("namespace")
        index: kopf.Index[str | None, BackendEntry] = kwargs[INDEX_ID]
        entries = list(index.get(namespace, ())) if namespace else []
        if not entries:
            warnings.append(
                f"kglance: namespace {namespace} has no StoreBackends; the sidecar is injected "
                "but serves nothing until one is created"
            )
        files = [entry.file for entry in entries if entry.file is not None]
        try:
            ops = inject(body, settings=settings, file_backends=files)
        except InjectionError as exc:
            raise kopf.AdmissionError(f"kglance: {exc}", code=400) from exc
        logger.info(f"Injecting the kglance sidecar ({len(files)} file backend volumes).")
        patch.fns.append(_applier(ops))


def _applier(ops: list[JSONPatchOp]) -> Callable[[Any], None]:
    """A kopf patch function: it applies ``ops`` to the body that kopf then diffs against."""

    def apply(body: Any) -> None:
        jsonpatch.apply_patch(body, ops, in_place=True)

    return apply
