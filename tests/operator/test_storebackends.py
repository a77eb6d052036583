"""StoreBackend reconciliation under the real kopf loop, against kmock's Kubernetes emulator.

One operator serves the whole module; each test works in its own namespace. Covered: a backend
becomes Ready with the rendered configuration (decoded from the config Secret and read by the
sidecar's own parser), its reachability probe (volume not mounted in the operator, then
mounted), the exact message of a missing Secret key and its recovery, a Secret rotation
re-rendering the configuration, a default-backend conflict, a deletion blocked while an
ImageLocation uses the backend, the config Secret removed with the last backend, and no
credential in any status patch, event or log line.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import json
import logging
import os
import pathlib
import subprocess
import tempfile
import uuid
from collections.abc import Mapping
from typing import Any

import aiohttp
import jsonpatch
import kmock
import kopf
import pydantic
import pytest

from kglance import cli
from kglance.drivers import errors, registry
from kglance.operator import conditions, failures, kube, main, names, storebackends
from kglance.operator.conditions import Condition
from kglance.operator.settings import OperatorSettings
from kglance.sidecar import config
from tests.operator.emulator import (
    SECRETS,
    STOREBACKENDS,
    Emulator,
    OperatorEnv,
    declare_resources,
    free_port,
)

# the operator is shared by the module's tests: they run in the module's event loop
in_module_loop = pytest.mark.asyncio(loop_scope="module")

SB = names.STOREBACKEND_KIND
IL = names.IMAGELOCATION_KIND
S3_ENDPOINT = "http://127.0.0.1:9"  # nothing listens: the probe fails fast, nothing is written


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def file_backend(
    name: str, namespace: str, *, default: bool = False, weight: int = 0
) -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": SB,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "file",
            "description": f"{name} disks",
            "weight": weight,
            "default": default,
            "file": {"claimName": f"{name}-pvc"},
        },
    }


def s3_backend(name: str, namespace: str, *, secret: str = "s3-creds") -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": SB,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "s3",
            "s3": {
                "endpoint": S3_ENDPOINT,
                "bucket": "images",
                "accessKey": {"secretKeyRef": {"name": secret, "key": "accessKey"}},
                "secretKey": {"secretKeyRef": {"name": secret, "key": "secretKey"}},
            },
        },
    }


def secret(name: str, namespace: str, data: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {key: b64(value) for key, value in data.items()},
    }


def condition(body: Mapping[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for item in ((body or {}).get("status") or {}).get("conditions") or []:
        if item.get("type") == type_:
            return dict(item)
    return None


def rendered(env: OperatorEnv, namespace: str) -> config.ServiceConfig | None:
    """The sidecar's reading of the namespace's config Secret, if there is one."""
    obj = env.get("Secret", namespace, names.CONFIG_SECRET)
    if obj is None or names.CONFIG_KEY not in (obj.get("data") or {}):
        return None
    with tempfile.TemporaryDirectory() as directory:  # as the sidecar mounts the Secret
        for key, value in obj["data"].items():
            pathlib.Path(directory, key).write_bytes(base64.b64decode(value))
        return config.read(os.path.join(directory, names.CONFIG_KEY), drivers=registry.Registry())


async def wait_condition(
    env: OperatorEnv, namespace: str, name: str, type_: str, status: str, reason: str | None = None
) -> dict[str, Any]:
    def matches() -> dict[str, Any] | None:
        found = condition(env.get(SB, namespace, name), type_)
        if found and found["status"] == status and reason in (None, found["reason"]):
            return found
        return None

    return await env.wait_for(matches, what=f"{name}: {type_}={status} {reason or ''}")


@in_module_loop
async def test_file_backend_ready_with_rendered_config(operator_env: OperatorEnv) -> None:
    env, ns = operator_env, "ready"
    await env.create(file_backend("fast", ns))

    ready = await wait_condition(env, ns, "fast", "Ready", "True")
    assert "default backend" in ready["message"]
    body = env.get(SB, ns, "fast")
    assert body is not None
    status = body["status"]
    assert status["observedGeneration"] == 1
    assert status["configSecret"] == names.CONFIG_SECRET
    assert {"read", "write"} <= set(status["capabilities"])
    assert "file" in status["schemes"]
    assert condition(body, "SecretsResolved")["status"] == "True"  # type: ignore[index]

    service = await env.wait_for(lambda: rendered(env, ns), what="config Secret")
    assert service.default_backend == "fast"
    await env.wait_for(
        lambda: {e.get("reason") for e in env.events(ns)} >= {"Ready", "ConfigRendered"},
        what="Ready and ConfigRendered events",
    )
    [spec] = service.backends
    assert (spec.id, spec.type, spec.description) == ("fast", "file", "fast disks")
    datadir = f"{names.SIDECAR_VOLUME_ROOT}/fast"
    assert spec.options["filesystem_store_datadir"] == datadir
    config_secret = env.get("Secret", ns, names.CONFIG_SECRET)
    assert config_secret is not None
    assert config_secret["metadata"]["labels"] == dict(names.LABELS)
    # kopf's bookkeeping under our names: the finalizer and annotations with our prefix
    diffbase = f"{names.GROUP}/last-handled-configuration"
    meta = await env.wait_for(
        lambda: (
            (m := (env.get(SB, ns, "fast") or {}).get("metadata", {}))
            and diffbase in (m.get("annotations") or {})
            and m
        ),
        what="kopf's annotations",
    )
    assert meta["finalizers"] == [names.FINALIZER]


@in_module_loop
async def test_probe_sees_only_volumes_the_operator_mounts(operator_env: OperatorEnv) -> None:
    env, ns = operator_env, "probe"
    await env.create(file_backend("fast", ns))
    unknown = await wait_condition(env, ns, "fast", "Reachable", "Unknown", "NotMountedInOperator")
    assert "fast" in unknown["message"]
    assert condition(env.get(SB, ns, "fast"), "Ready")["status"] == "True"  # type: ignore[index]

    os.makedirs(os.path.join(env.settings.operator_volume_root(ns), "fast"))
    await wait_condition(env, ns, "fast", "Reachable", "True", "Probed")
    await wait_condition(env, ns, "fast", "Ready", "True")


@in_module_loop
async def test_missing_secret_key_is_named_then_resolved(operator_env: OperatorEnv) -> None:
    env, ns = operator_env, "missing"
    await env.create(secret("s3-creds", ns, {"accessKey": "AKIDEXAMPLE"}))
    await env.create(file_backend("fast", ns))
    await env.create(s3_backend("objects", ns))

    resolved = await wait_condition(env, ns, "objects", "SecretsResolved", "False")
    assert resolved["reason"] == "SecretKeyMissing"
    assert resolved["message"] == "Secret s3-creds has no key secretKey"
    ready = await wait_condition(env, ns, "objects", "Ready", "False")
    assert ready["reason"] == "SecretKeyMissing"
    service = await env.wait_for(lambda: rendered(env, ns), what="config Secret")
    assert [b.id for b in service.backends] == ["fast"]  # the others keep working

    await env.patch("Secret", ns, "s3-creds", {"data": {"secretKey": b64("s3cr3t")}})
    await wait_condition(env, ns, "objects", "SecretsResolved", "True")
    service = await env.wait_for(
        lambda: (s := rendered(env, ns)) and len(s.backends) == 2 and s, what="both rendered"
    )
    assert {b.id for b in service.backends} == {"fast", "objects"}

    await env.delete("Secret", ns, "s3-creds")
    gone = await wait_condition(env, ns, "objects", "SecretsResolved", "False", "SecretNotFound")
    assert gone["message"] == "Secret s3-creds not found"


def s3_secret_key(env: OperatorEnv, namespace: str) -> str | None:
    service = rendered(env, namespace)
    if service is None:
        return None
    spec = next((b for b in service.backends if b.id == "objects"), None)
    return None if spec is None else str(spec.options.get("s3_store_secret_key"))


@in_module_loop
async def test_secret_rotation_rerenders_the_config(operator_env: OperatorEnv) -> None:
    env, ns = operator_env, "rotation"
    await env.create(secret("s3-creds", ns, {"accessKey": "AKID", "secretKey": "before"}))
    await env.create(s3_backend("objects", ns))
    await env.wait_for(lambda: s3_secret_key(env, ns) == "before", what="first rendering")
    before = env.get("Secret", ns, names.CONFIG_SECRET)

    await env.patch("Secret", ns, "s3-creds", {"data": {"secretKey": b64("after")}})
    await env.wait_for(lambda: s3_secret_key(env, ns) == "after", what="rotated rendering")
    after = env.get("Secret", ns, names.CONFIG_SECRET)
    assert before is not None and after is not None
    assert before["metadata"]["uid"] == after["metadata"]["uid"]  # patched, not recreated


@in_module_loop
async def test_default_conflict_marks_the_younger_claimant(operator_env: OperatorEnv) -> None:
    env, ns = operator_env, "conflict"
    await env.create(file_backend("first", ns, default=True))
    await wait_condition(env, ns, "first", "Ready", "True")
    await env.create(file_backend("second", ns, default=True, weight=100))

    conflict = await wait_condition(env, ns, "second", "DefaultConflict", "True")
    assert "first" in conflict["message"]
    assert condition(env.get(SB, ns, "first"), "DefaultConflict")["status"] == "False"  # type: ignore[index]
    service = await env.wait_for(lambda: rendered(env, ns), what="config Secret")
    assert service.default_backend == "first"

    await env.patch(SB, ns, "second", {"spec": {"default": False}})
    cleared = await wait_condition(env, ns, "second", "DefaultConflict", "False")
    assert cleared["observedGeneration"] == 2  # the spec change, observed
    await wait_condition(env, ns, "second", "Ready", "True")
    service = await env.wait_for(
        lambda: (s := rendered(env, ns)) and len(s.backends) == 2 and s, what="both rendered"
    )
    assert service.default_backend == "first"


@in_module_loop
async def test_config_map_rotation_rerenders(operator_env: OperatorEnv) -> None:
    env, ns = operator_env, "configmap"
    bundle = {"name": "web-ca", "key": "ca.pem"}
    await env.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "web-ca", "namespace": ns},
            "data": {"ca.pem": "FIRST BUNDLE"},
        }
    )
    backend = file_backend("web", ns)
    backend["spec"] = {"type": "http", "http": {"caBundle": {"configMapKeyRef": bundle}}}
    await env.create(backend)

    def ca_file() -> bytes | None:
        obj = env.get("Secret", ns, names.CONFIG_SECRET)
        data = (obj or {}).get("data") or {}
        return base64.b64decode(data["web.ca.pem"]) if "web.ca.pem" in data else None

    await env.wait_for(lambda: ca_file() == b"FIRST BUNDLE", what="CA bundle rendered")
    service = rendered(env, ns)
    assert service is not None
    ca_path = f"{names.SIDECAR_CONFIG_DIR}/web.ca.pem"  # where the sidecar mounts the Secret
    assert service.backends[0].options["https_ca_certificates_file"] == ca_path

    await env.patch("ConfigMap", ns, "web-ca", {"data": {"ca.pem": "SECOND BUNDLE"}})
    await env.wait_for(lambda: ca_file() == b"SECOND BUNDLE", what="CA bundle re-rendered")


@in_module_loop
async def test_invalid_spec_is_a_condition(operator_env: OperatorEnv) -> None:
    env, ns = operator_env, "invalid"
    backend = file_backend("broken", ns)
    backend["spec"] = {"type": "s3"}  # the CRD's CEL rule refuses this; the emulator does not
    await env.create(backend)
    invalid = await wait_condition(env, ns, "broken", "SpecValid", "False", "InvalidSpec")
    assert "s3" in invalid["message"]
    await wait_condition(env, ns, "broken", "Ready", "False", "InvalidSpec")


@in_module_loop
async def test_make_registry_serves_the_injection_webhook(operator_env: OperatorEnv) -> None:
    env, ns = operator_env, "webhook"
    if importlib.util.find_spec("kglance.operator.injection") is None:
        pytest.skip("operator/injection.py is not installed")
    await env.create(file_backend("fast", ns))
    await wait_condition(env, ns, "fast", "Ready", "True")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "app",
            "namespace": ns,
            "annotations": {names.INJECT_ANNOTATION: "true"},
        },
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    }
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE",
            "namespace": ns,
            "object": pod,
            "userInfo": {"username": "test"},
            "dryRun": False,
        },
    }
    url = env.webhook_url + names.WEBHOOK_PATH
    async with aiohttp.ClientSession() as session, session.post(url, json=review) as response:
        assert response.status == 200, await response.text()
        answer = (await response.json())["response"]
    assert answer["allowed"] is True
    assert answer["uid"] == review["request"]["uid"]  # type: ignore[index]
    patched = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(answer["patch"])))
    sidecars = [c["name"] for c in patched["spec"].get("initContainers") or []]
    assert sidecars and patched["metadata"]["annotations"][names.INJECTED_ANNOTATION]


def image_location(name: str, namespace: str, *, backend: str) -> dict[str, Any]:
    image_id = str(uuid.uuid4())
    return {
        "apiVersion": names.API_VERSION,
        "kind": IL,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "imageId": image_id,
            "backend": backend,
            "location": f"file://{names.SIDECAR_VOLUME_ROOT}/{backend}/{image_id}",
            "size": 3,
            "reclaimPolicy": "Retain",
        },
    }


@in_module_loop
async def test_deletion_waits_for_image_locations(operator_env: OperatorEnv) -> None:
    env, ns = operator_env, "inuse"
    await env.create(file_backend("fast", ns))
    await env.create(image_location("cirros-fast", ns, backend="fast"))
    await wait_condition(env, ns, "fast", "Ready", "True")

    await env.delete(SB, ns, "fast")
    blocked = await wait_condition(env, ns, "fast", "Ready", "False", "InUse")
    assert blocked["message"] == "In use by ImageLocation cirros-fast"
    await env.wait_for(
        lambda: [e for e in env.events(ns) if e.get("reason") == "InUse"], what="InUse event"
    )
    assert env.get(SB, ns, "fast") is not None
    assert rendered(env, ns) is not None  # the ImageLocation still needs the backend

    await env.delete(IL, ns, "cirros-fast")
    await env.wait_for(lambda: env.get(SB, ns, "fast") is None, what="backend released")
    await env.wait_for(lambda: rendered(env, ns) is None, what="config Secret removed")


@in_module_loop
async def test_config_secret_removed_with_the_last_backend(operator_env: OperatorEnv) -> None:
    env, ns = operator_env, "empty"
    await env.create(file_backend("one", ns))
    await env.create(file_backend("two", ns))
    await env.wait_for(
        lambda: (s := rendered(env, ns)) and len(s.backends) == 2, what="both rendered"
    )

    await env.delete(SB, ns, "one")
    await env.wait_for(
        lambda: (s := rendered(env, ns)) and [b.id for b in s.backends] == ["two"],
        what="one left",
    )
    await env.delete(SB, ns, "two")
    await env.wait_for(
        lambda: env.get("Secret", ns, names.CONFIG_SECRET) is None, what="config Secret removed"
    )


@in_module_loop
async def test_no_credentials_in_status_events_or_logs(
    operator_env: OperatorEnv, caplog: pytest.LogCaptureFixture
) -> None:
    # the operator's and kopf's own debug output; SDKs at the operator's level (botocore's
    # debug log prints request headers, which is why the operator never enables it)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="kopf")
    caplog.set_level(logging.DEBUG, logger="kglance")
    env, ns = operator_env, "leak"
    access, secret_key = "AKID-LEAK-CHECK-4711", "SECRET-LEAK-CHECK-0815"
    await env.create(secret("s3-creds", ns, {"accessKey": access, "secretKey": secret_key}))
    await env.create(s3_backend("objects", ns))
    await env.wait_for(lambda: s3_secret_key(env, ns) == secret_key, what="rendered")
    # the probe against a closed port fails: its error message must not carry credentials
    await wait_condition(env, ns, "objects", "Reachable", "False")
    await wait_condition(env, ns, "objects", "Ready", "False", "Unreachable")
    await env.patch("Secret", ns, "s3-creds", {"data": {"secretKey": b64(secret_key + "-2")}})
    await env.wait_for(lambda: s3_secret_key(env, ns) == secret_key + "-2", what="rotated")

    leaks = (access, secret_key, b64(secret_key), b64(access))
    written = [
        repr(request.data)
        for request in env.requests()
        if request.method in ("PATCH", "POST", "PUT")
        and "/secrets" not in str(request.url.path)  # Secrets are where credentials belong
    ]
    assert written, "no status patch or event was recorded"
    events = [repr(event) for event in env.events()]
    statuses = [repr(body.get("status")) for body in env.all(SB)]
    logged = [record.getMessage() for record in caplog.records]
    for text in (*written, *events, *statuses, *logged):
        for leak in leaks:
            assert leak not in text


def test_references_are_found_at_any_depth() -> None:
    spec = {
        "type": "swift",
        "swift": {
            "user": {"secretKeyRef": {"name": "swift-creds", "key": "user"}},
            "key": {"secretKeyRef": {"name": "swift-creds", "key": "key"}},
            "caBundle": {"configMapKeyRef": {"name": "ca", "key": "ca.pem"}},
            "adminTenants": [{"secretKeyRef": {"name": "odd-but-found", "key": "x"}}],
        },
    }
    assert storebackends.referenced(spec, storebackends.SECRET_REF) == {
        "swift-creds",
        "odd-but-found",
    }
    assert storebackends.referenced(spec, storebackends.CONFIG_MAP_REF) == {"ca"}


def test_settings_from_the_environment() -> None:
    settings = OperatorSettings.from_env(
        {
            "KGLANCE_NAMESPACES": "images, tenants ,",
            "KGLANCE_STANDALONE": "true",
            "KGLANCE_PROBE_INTERVAL": "15",
            "KGLANCE_SIDECAR_IMAGE": "",  # empty: the default stays
            "KGLANCE_UNRELATED": "ignored",
        }
    )
    assert settings.namespaces == ("images", "tenants")
    assert settings.standalone and not settings.clusterwide
    assert settings.probe_interval == 15.0
    assert settings.sidecar_image == OperatorSettings().sidecar_image
    assert settings.operator_volume_root("images") == f"{settings.volume_root}/images"
    assert OperatorSettings.from_env({"KGLANCE_LIVENESS_ENDPOINT": "off"}).liveness_endpoint == ""
    with pytest.raises(pydantic.ValidationError):
        OperatorSettings.from_env({"KGLANCE_PROBE_INTERVAL": "0"})


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (errors.RemoteUnavailable("connection refused"), kopf.TemporaryError),
        (errors.NotFound("no such image"), kopf.PermanentError),
        (errors.ConfigurationError("bad option"), kopf.PermanentError),
        (kube.ApiError(status=409, reason="Conflict", message="stale"), kopf.TemporaryError),
        (kube.ApiError(status=503, reason="Unavailable", message=""), kopf.TemporaryError),
        (kube.ApiError(status=403, reason="Forbidden", message="rbac"), kopf.PermanentError),
        (aiohttp.ClientConnectionError("reset"), kopf.TemporaryError),
        (TimeoutError(), kopf.TemporaryError),
    ],
)
def test_errors_map_to_kopf_in_one_place(error: Exception, verdict: type[Exception]) -> None:
    with pytest.raises(verdict) as caught, failures.translated(retry=2):
        raise error
    assert caught.value.__cause__ is error
    if isinstance(caught.value, kopf.TemporaryError):
        assert caught.value.delay == failures.delay_for(2) > failures.delay_for(0)


def self_signed(directory: pathlib.Path) -> None:
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "1", "-subj", "/CN=localhost"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-keyout", str(directory / "tls.key"), "-out", str(directory / "tls.crt")),
        ],
        check=True,
        capture_output=True,
    )


def test_operator_command_line() -> None:
    args = cli.build_parser().parse_args(["operator", "-n", "images", "-n", "team", "--standalone"])
    assert args.namespaces == ["images", "team"] and args.standalone
    assert args.run is not None


async def test_serve_runs_the_production_setup(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``kglance operator``'s coroutine as shipped: kubeconfig login, webhook server with the
    mounted certificates, liveness endpoint, CRD and namespace scanning left on."""
    self_signed(tmp_path)
    async with Emulator() as emulator, kmock.Server(emulator):
        declare_resources(emulator)
        emulator.add_namespace("cmd")
        emulator.resources["apiextensions.k8s.io/v1/customresourcedefinitions"] = (
            kmock.ResourceInfo(kind="CustomResourceDefinition", namespaced=False)
        )
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
            f"clusters: [{{name: emu, cluster: {{server: '{emulator.url}'}}}}]\n"
            "users: [{name: me, user: {token: not-checked}}]\n"
            "contexts: [{name: test, context: {cluster: emu, user: me}}]\n"
        )
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        liveness = f"http://127.0.0.1:{free_port()}/healthz"
        settings = OperatorSettings(
            namespaces=("cmd",),
            standalone=True,
            volume_root=str(tmp_path / "volumes"),
            webhook_port=free_port(),
            webhook_cert_dir=str(tmp_path),
            liveness_endpoint=liveness,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(main.serve(settings, stop=stop))
        env = OperatorEnv(
            emulator=emulator, settings=settings, api=kube.Api(login=kube.default_login)
        )
        try:
            await env.wait_for(
                lambda: (
                    {STOREBACKENDS, SECRETS} <= {r.resource for r in emulator[kmock.action.WATCH]}
                ),
                what="watching",
            )
            await asyncio.sleep(0.3)
            await env.create(file_backend("fast", "cmd"))
            service = await env.wait_for(lambda: rendered(env, "cmd"), what="config Secret")
            assert service.default_backend == "fast"
            async with aiohttp.ClientSession() as session, session.get(liveness) as response:
                assert response.status == 200
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 15)
            await env.api.aclose()
        assert task.done() and task.exception() is None


def test_kopf_settings_as_tuned() -> None:
    tuned = main.kopf_settings(OperatorSettings(peering="team-a"))
    assert tuned.watching.server_timeout and tuned.watching.client_timeout
    assert tuned.watching.server_timeout < tuned.watching.client_timeout
    assert tuned.persistence.finalizer == names.FINALIZER
    assert tuned.peering.name == "team-a" and tuned.peering.mandatory
    assert not tuned.posting.loggers
    assert isinstance(tuned.admission.server, kopf.WebhookServer)
    standalone = main.kopf_settings(OperatorSettings(standalone=True, webhook=False))
    assert standalone.peering.standalone and not standalone.peering.mandatory
    assert standalone.admission.server is None


def test_conditions_keep_their_transition_time_while_the_status_holds() -> None:
    first = conditions.merge(
        [], [Condition("Ready", "False", "SecretKeyMissing", "a")], generation=1, timestamp="t1"
    )
    reworded = conditions.merge(
        first, [Condition("Ready", "False", "SecretNotFound", "b")], generation=2, timestamp="t2"
    )
    assert reworded[0]["lastTransitionTime"] == "t1"
    assert (reworded[0]["reason"], reworded[0]["observedGeneration"]) == ("SecretNotFound", 2)
    flipped = conditions.merge(
        reworded, [Condition("Ready", "True", "Ready", "ok")], generation=2, timestamp="t3"
    )
    assert flipped[0]["lastTransitionTime"] == "t3"
    assert conditions.same(reworded, reworded) and not conditions.same(reworded, flipped)
