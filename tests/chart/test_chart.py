"""The Helm chart at the repository root, rendered and linted by a real ``helm``.

No cluster runs here, so the chart is checked the way a cluster would check it as far as that
goes offline: ``helm lint --strict``, the values schema refusing bad values, every rendered
manifest validated against the Kubernetes API schemas of the oldest supported release (1.29,
the first with native sidecars on by default) and the newest one kubernetes-validate bundles,
kopf's peering objects against the CRDs shipped in ``crds/``. RBAC is compared rule by rule,
because a wildcard or a stray write verb renders and validates just as well as the right rule.

helm comes from ``$KGLANCE_HELM`` (set by scripts/test.sh, which installs it) or
``.tools/bin/helm`` (scripts/tools/install-helm.sh); without either the tests skip, and under
scripts/test.sh they fail.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import os
import pathlib
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from kglance.operator import names
from kglance.operator.settings import OperatorSettings
from tests.conftest import require_env

ROOT = pathlib.Path(__file__).resolve().parents[2]
NAMESPACE = "kglance-system"
RELEASE = "kglance"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest bundled.
KUBE_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
# Kinds no schema is available for offline (cert-manager's CRDs are not ours to ship); their
# fields the chart depends on are asserted by the cert-manager tests below instead.
CERT_MANAGER_KINDS = {("cert-manager.io/v1", "Issuer"), ("cert-manager.io/v1", "Certificate")}

Manifest = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Helm:
    binary: str
    env: Mapping[str, str]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, *args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=50,
        )
        if check and result.returncode != 0:
            pytest.fail(f"helm {' '.join(args)} failed:\n{result.stderr}")
        return result

    def template(self, *sets: str, include_crds: bool = False) -> list[Manifest]:
        args = ["template", RELEASE, ".", "--namespace", NAMESPACE]
        if include_crds:
            args.append("--include-crds")
        for value in sets:
            args += ["--set", value]
        return [doc for doc in yaml.safe_load_all(self.run(*args).stdout) if doc]


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = os.environ.get("KGLANCE_HELM") or ""
    if not binary and os.access(ROOT / ".tools/bin/helm", os.X_OK):
        binary = str(ROOT / ".tools/bin/helm")
    if not binary:
        binary = require_env("KGLANCE_HELM")
    home = tmp_path_factory.mktemp("helm-home")
    env = {f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")}
    return Helm(binary=binary, env=env)


def find(manifests: Sequence[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [
        m
        for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]


def one(manifests: Sequence[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = find(manifests, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


# --- validation -------------------------------------------------------------------------------


def _structural_to_jsonschema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A CRD's openAPIV3Schema as a JSON schema that, like the API server's pruning, refuses
    fields the schema does not declare (unless x-kubernetes-preserve-unknown-fields)."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {k: walk(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
        if node.get("x-kubernetes-int-or-string"):
            out.pop("type", None)
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if node.get("nullable"):
            out.pop("nullable")
            out["type"] = [out["type"], "null"]
        preserve = node.get("x-kubernetes-preserve-unknown-fields")
        if node.get("type") == "object" and not preserve and "additionalProperties" not in node:
            out["additionalProperties"] = False
        return out

    converted: dict[str, Any] = walk(copy.deepcopy(dict(schema)))
    converted.setdefault("properties", {}).update(
        apiVersion={"type": "string"}, kind={"type": "string"}, metadata={"type": "object"}
    )
    return converted


def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd:
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                schemas[key] = _structural_to_jsonschema(version["schema"]["openAPIV3Schema"])
    return schemas


def validation_errors(manifests: Sequence[Manifest], kube_version: str) -> list[str]:
    custom = _crd_schemas()
    errors = []
    for manifest in manifests:
        key = (manifest["apiVersion"], manifest["kind"])
        label = f"{manifest['kind']}/{manifest['metadata'].get('name')}"
        if key in CERT_MANAGER_KINDS:
            continue
        if key in custom:
            validator = jsonschema.Draft7Validator(custom[key])
            errors += [f"{label}: {e.message}" for e in validator.iter_errors(manifest)]
            continue
        try:
            kubernetes_validate.validate(manifest, kube_version, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"{label}: {'.'.join(map(str, e.path))}: {e.message}")
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError):
            errors.append(f"{label}: no schema for {key} in Kubernetes {kube_version}")
    return errors


SCENARIOS: dict[str, tuple[str, ...]] = {
    "defaults": (),
    "cert-manager": ("certManager.enabled=true",),
    "cert-manager-cluster-issuer": (
        "certManager.enabled=true",
        "certManager.issuerRef.name=corp-ca",
        "certManager.issuerRef.kind=ClusterIssuer",
    ),
    "webhook-off": ("webhook.enabled=false",),
    "watch-namespaces": ("watchNamespaces={team-a,team-b}",),
    "standalone": ("peering.enabled=false",),
    "standalone-namespaced": ("peering.enabled=false", "watchNamespaces={team-a}"),
    "replicas-2": ("replicaCount=2",),
    "everything-set": (
        "image.tag=1.2.3",
        "sidecar.image.repository=registry.example/kglance-sidecar",
        "webhook.failurePolicy=Fail",
        "webhook.objectSelector.matchLabels.kglance\\.io/sidecar=wanted",
        "webhook.excludeNamespaces={monitoring}",
        "webhook.namespaceSelectorExpressions[0].key=tier",
        "webhook.namespaceSelectorExpressions[0].operator=NotIn",
        "webhook.namespaceSelectorExpressions[0].values={infra}",
        "serviceAccount.create=false",
        "serviceAccount.name=existing",
        "rbac.aggregateToDefaultRoles=false",
        "priorityClassName=system-cluster-critical",
        "nodeSelector.kubernetes\\.io/os=linux",
        "tolerations[0].key=dedicated",
        "tolerations[0].operator=Exists",
        "tolerations[0].effect=NoSchedule",
        "affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight=1",
        "affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]"
        ".podAffinityTerm.topologyKey=kubernetes.io/hostname",
        "podAnnotations.example\\.com/team=images",
        "podLabels.team=images",
        "imagePullSecrets[0].name=regcred",
        "extraEnv[0].name=HTTPS_PROXY",
        "extraEnv[0].value=http://proxy:3128",
        "extraVolumes[0].name=nfs",
        "extraVolumes[0].persistentVolumeClaim.claimName=images",
        "extraVolumeMounts[0].name=nfs",
        "extraVolumeMounts[0].mountPath=/var/lib/kglance/operator-volumes",
    ),
}


def test_lint_strict(helm: Helm) -> None:
    for sets in (SCENARIOS["defaults"], SCENARIOS["watch-namespaces"], SCENARIOS["cert-manager"]):
        args = ["lint", "--strict", "."]
        for value in sets:
            args += ["--set", value]
        result = helm.run(*args)
        assert "0 chart(s) failed" in result.stdout, result.stdout


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rendered_manifests_validate(helm: Helm, scenario: str) -> None:
    manifests = helm.template(*SCENARIOS[scenario], include_crds=True)
    assert one(manifests, "Deployment")
    for version in KUBE_VERSIONS:
        assert validation_errors(manifests, version) == [], f"Kubernetes {version}"


def test_validation_catches_a_broken_manifest(helm: Helm) -> None:
    """The validation above is strict: an unknown field or a peering object with a stray
    field is reported, so the passing scenarios mean something."""
    manifests = helm.template()
    deployment = copy.deepcopy(one(manifests, "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    peering = copy.deepcopy(one(manifests, "ClusterKopfPeering"))
    peering["spec"] = {"x": 1}
    errors = validation_errors([deployment, peering], KUBE_VERSIONS[0])
    assert len(errors) == 2
    assert "livenesProbe" in errors[0]


BAD_VALUES = {
    "unknown key": "replicas=2",
    "failure policy": "webhook.failurePolicy=Sometimes",
    "second replica without peering": "peering.enabled=false,replicaCount=2",
    "namespace name": "watchNamespaces={Team_A}",
    "empty image": "image.repository=",
    "sidecar quantity": "sidecar.resources.memoryLimit=lots",
    "webhook timeout": "webhook.timeoutSeconds=60",
    "cert-manager without webhook": "certManager.enabled=true,webhook.enabled=false",
    "issuer kind": "certManager.issuerRef.kind=Vault",
    "port": "healthPort=70000",
}


@pytest.mark.parametrize("value", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_schema_rejects_bad_values(helm: Helm, value: str) -> None:
    result = helm.run("template", RELEASE, ".", "--set", value, check=False)
    assert result.returncode != 0
    assert "don't meet the specifications of the schema" in result.stderr, result.stderr


# --- RBAC -------------------------------------------------------------------------------------


def rules_of(manifests: Sequence[Manifest], name: str) -> list[dict[str, Any]]:
    role = one(manifests, "ClusterRole", name)
    return [
        {key: sorted(value) for key, value in rule.items() if key != "nonResourceURLs"}
        for rule in role["rules"]
    ]


def rule(
    group: str, resources: list[str], verbs: list[str], names_: list[str] | None = None
) -> dict[str, list[str]]:
    made = {"apiGroups": [group], "resources": sorted(resources), "verbs": sorted(verbs)}
    if names_ is not None:
        made["resourceNames"] = sorted(names_)
    return made


OWN_RESOURCES = [
    rule("kglance.io", ["storebackends", "imagelocations"], ["get", "list", "watch", "patch"]),
    rule("kglance.io", ["storebackends/status", "imagelocations/status"], ["patch"]),
    rule("kglance.io", ["storebackends/finalizers", "imagelocations/finalizers"], ["update"]),
    rule("", ["secrets", "configmaps"], ["get", "list", "watch"]),
    # create cannot be limited by name (authorization runs before the name is known)
    rule("", ["secrets"], ["create"]),
    rule("", ["secrets"], ["patch", "delete"], [names.CONFIG_SECRET]),
    rule("", ["events"], ["create"]),
]
CRD_WATCH = rule("apiextensions.k8s.io", ["customresourcedefinitions"], ["list", "watch"])


def test_rbac_cluster_wide_exact_rules(helm: Helm) -> None:
    manifests = helm.template()
    assert rules_of(manifests, "kglance-operator") == OWN_RESOURCES
    assert rules_of(manifests, "kglance-operator-cluster") == [
        CRD_WATCH,
        rule("kopf.dev", ["clusterkopfpeerings"], ["list", "watch"]),
        rule("kopf.dev", ["clusterkopfpeerings"], ["get", "patch"], ["kglance"]),
    ]
    assert rules_of(manifests, "kglance-image-recorder") == [
        rule("kglance.io", ["imagelocations"], ["create", "get", "patch"])
    ]
    bindings = {b["roleRef"]["name"]: b for b in find(manifests, "ClusterRoleBinding")}
    assert sorted(bindings) == ["kglance-operator", "kglance-operator-cluster"]
    for binding in bindings.values():
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "kglance", "namespace": NAMESPACE}
        ]
    assert find(manifests, "RoleBinding") == []
    assert find(manifests, "Role") == []


def test_rbac_watching_namespaces_binds_per_namespace(helm: Helm) -> None:
    manifests = helm.template(*SCENARIOS["watch-namespaces"])
    assert rules_of(manifests, "kglance-operator") == [
        *OWN_RESOURCES,
        rule("kopf.dev", ["kopfpeerings"], ["list", "watch"]),
        rule("kopf.dev", ["kopfpeerings"], ["get", "patch"], ["kglance"]),
    ]
    # cluster-wide: only names of namespaces and CRDs, nothing namespaced
    assert rules_of(manifests, "kglance-operator-cluster") == [
        CRD_WATCH,
        rule("", ["namespaces"], ["list", "watch"]),
    ]
    role_bindings = find(manifests, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in role_bindings) == ["team-a", "team-b"]
    assert {b["roleRef"]["name"] for b in role_bindings} == {"kglance-operator"}
    cluster_bindings = find(manifests, "ClusterRoleBinding")
    assert [b["roleRef"]["name"] for b in cluster_bindings] == ["kglance-operator-cluster"]
    peerings = find(manifests, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["team-a", "team-b"]
    assert find(manifests, "ClusterKopfPeering") == []


@pytest.mark.parametrize("scenario", ["standalone", "standalone-namespaced"])
def test_rbac_standalone_has_no_peering(helm: Helm, scenario: str) -> None:
    manifests = helm.template(*SCENARIOS[scenario])
    for role in find(manifests, "ClusterRole"):
        assert all("kopf.dev" not in r["apiGroups"] for r in role["rules"])
    assert find(manifests, "KopfPeering") == find(manifests, "ClusterKopfPeering") == []
    assert env_of(one(manifests, "Deployment"))["KGLANCE_STANDALONE"] == "true"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rbac_has_no_wildcards_and_writes_secrets_only_by_name(helm: Helm, scenario: str) -> None:
    manifests = helm.template(*SCENARIOS[scenario])
    for role in find(manifests, "ClusterRole") + find(manifests, "Role"):
        for r in role["rules"]:
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in r.get(key, []), (role["metadata"]["name"], r)
            write = set(r["verbs"]) - {"get", "list", "watch"}
            if "secrets" in r["resources"] and write:
                assert write == {"create"} or (
                    write <= {"patch", "delete"} and r["resourceNames"] == [names.CONFIG_SECRET]
                ), r


def test_aggregated_roles(helm: Helm) -> None:
    manifests = helm.template()
    edit = one(manifests, "ClusterRole", "kglance-edit")
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert rules_of(manifests, "kglance-view") == [
        rule("kglance.io", ["storebackends", "imagelocations"], ["get", "list", "watch"])
    ]
    without = helm.template("rbac.aggregateToDefaultRoles=false")
    assert find(without, "ClusterRole", "kglance-view") == []


# --- the operator Deployment ------------------------------------------------------------------


def env_of(deployment: Manifest) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "<from>") for e in container["env"]}


def test_deployment_defaults(helm: Helm) -> None:
    deployment = one(helm.template(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/kglance/kglance:0.1.0"
    assert container["args"] == ["operator"]
    assert deployment["spec"]["replicas"] == 1
    env = env_of(deployment)
    assert env["KGLANCE_SIDECAR_IMAGE"] == container["image"]
    assert env["KGLANCE_NAMESPACES"] == ""
    assert env["KGLANCE_STANDALONE"] == "false"
    assert env["KGLANCE_WEBHOOK_PORT"] == "9443"
    # every KGLANCE_* variable is a settings field, and they parse
    settings_env = {k: v for k, v in env.items() if k.startswith("KGLANCE_") and v != "<from>"}
    settings = OperatorSettings.from_env(settings_env)
    assert settings.webhook_cert_dir == "/etc/kglance/webhook-certs"
    assert settings.liveness_endpoint == "http://0.0.0.0:8080/healthz"
    assert settings.peering == "kglance"
    fields = {"KGLANCE_" + field.upper() for field in OperatorSettings.model_fields}
    assert {k for k in env if k.startswith("KGLANCE_")} <= fields
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"healthz": 8080, "webhook": 9443}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["webhook-certs"] == settings.webhook_cert_dir
    volumes = {v["name"]: v for v in pod["volumes"]}
    items = volumes["webhook-certs"]["secret"]["items"]
    assert sorted(i["path"] for i in items) == ["tls.crt", "tls.key"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsNonRoot"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["resources"]["limits"]["memory"] == "512Mi"


def test_deployment_non_default_values(helm: Helm) -> None:
    manifests = helm.template(*SCENARIOS["everything-set"])
    deployment = one(manifests, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    env = env_of(deployment)
    assert pod["containers"][0]["image"] == "ghcr.io/kglance/kglance:1.2.3"
    assert env["KGLANCE_SIDECAR_IMAGE"] == "registry.example/kglance-sidecar:1.2.3"
    assert env["HTTPS_PROXY"] == "http://proxy:3128"
    assert pod["serviceAccountName"] == "existing"
    assert find(manifests, "ServiceAccount") == []
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert "podAntiAffinity" in pod["affinity"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    template_meta = deployment["spec"]["template"]["metadata"]
    assert template_meta["annotations"] == {"example.com/team": "images"}
    assert template_meta["labels"]["team"] == "images"
    assert {"name": "nfs", "mountPath": "/var/lib/kglance/operator-volumes"} in pod["containers"][
        0
    ]["volumeMounts"]
    webhook = one(manifests, "MutatingWebhookConfiguration")["webhooks"][0]
    assert webhook["failurePolicy"] == "Fail"
    assert webhook["objectSelector"] == {"matchLabels": {"kglance.io/sidecar": "wanted"}}
    expressions = webhook["namespaceSelector"]["matchExpressions"]
    assert expressions[0]["values"] == ["kube-system", NAMESPACE, "monitoring"]
    assert expressions[1] == {"key": "tier", "operator": "NotIn", "values": ["infra"]}


def test_watch_namespaces_and_replicas(helm: Helm) -> None:
    deployment = one(helm.template(*SCENARIOS["watch-namespaces"], "replicaCount=2"), "Deployment")
    assert deployment["spec"]["replicas"] == 2
    settings_env = {k: v for k, v in env_of(deployment).items() if v != "<from>"}
    settings = OperatorSettings.from_env(settings_env)
    assert settings.namespaces == ("team-a", "team-b")
    assert not settings.standalone


def test_webhook_only_in_watched_namespaces(helm: Helm) -> None:
    manifests = helm.template(*SCENARIOS["watch-namespaces"])
    (webhook,) = one(manifests, "MutatingWebhookConfiguration")["webhooks"]
    assert webhook["namespaceSelector"]["matchExpressions"][1] == {
        "key": "kubernetes.io/metadata.name",
        "operator": "In",
        "values": ["team-a", "team-b"],
    }


def test_disruption_budget_only_with_replicas(helm: Helm) -> None:
    assert find(helm.template(), "PodDisruptionBudget") == []
    manifests = helm.template(*SCENARIOS["replicas-2"])
    budget = one(manifests, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    deployment = one(manifests, "Deployment")
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]


def test_webhook_off(helm: Helm) -> None:
    manifests = helm.template(*SCENARIOS["webhook-off"])
    kinds = {m["kind"] for m in manifests}
    assert not kinds & {"MutatingWebhookConfiguration", "Service", "Secret"}
    deployment = one(manifests, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert [p["name"] for p in container["ports"]] == ["healthz"]
    assert "KGLANCE_WEBHOOK_PORT" not in env_of(deployment)
    assert all(m["name"] != "webhook-certs" for m in container["volumeMounts"])


# --- the webhook ------------------------------------------------------------------------------


def test_webhook_configuration(helm: Helm) -> None:
    manifests = helm.template()
    (webhook,) = one(manifests, "MutatingWebhookConfiguration")["webhooks"]
    service = one(manifests, "Service")
    assert webhook["clientConfig"]["service"] == {
        "name": service["metadata"]["name"],
        "namespace": NAMESPACE,
        "path": names.WEBHOOK_PATH,
        "port": 443,
    }
    assert service["spec"]["ports"][0]["targetPort"] == "webhook"
    pod_labels = one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert webhook["sideEffects"] == "None"
    assert webhook["admissionReviewVersions"] == ["v1"]
    assert webhook["failurePolicy"] == "Ignore"
    assert webhook["reinvocationPolicy"] == "Never"
    assert webhook["rules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE"],
            "resources": ["pods"],
            "scope": "Namespaced",
        }
    ]
    assert webhook["namespaceSelector"] == {
        "matchExpressions": [
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": ["kube-system", NAMESPACE],
            }
        ]
    }
    assert "objectSelector" not in webhook


def _openssl(*args: str, stdin: bytes | None = None) -> str:
    result = subprocess.run(["openssl", *args], input=stdin, capture_output=True, timeout=20)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_generated_certificate_serves_the_webhook_service(
    helm: Helm, tmp_path: pathlib.Path
) -> None:
    manifests = helm.template()
    (webhook,) = one(manifests, "MutatingWebhookConfiguration")["webhooks"]
    secret = one(manifests, "Secret")
    deployment = one(manifests, "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["webhook-certs"]["secret"]["secretName"] == secret["metadata"]["name"]
    data = {key: base64.b64decode(value) for key, value in secret["data"].items()}
    assert base64.b64decode(webhook["clientConfig"]["caBundle"]) == data["ca.crt"]
    (tmp_path / "ca.pem").write_bytes(data["ca.crt"])
    (tmp_path / "tls.pem").write_bytes(data["tls.crt"])
    verified = _openssl("verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "tls.pem"))
    assert "OK" in verified
    san = _openssl("x509", "-noout", "-ext", "subjectAltName", "-in", str(tmp_path / "tls.pem"))
    service = one(manifests, "Service")["metadata"]["name"]
    assert f"DNS:{service}.{NAMESPACE}.svc" in san
    # the key belongs to the certificate
    key_pub = _openssl("pkey", "-pubout", stdin=data["tls.key"])
    cert_pub = _openssl("x509", "-noout", "-pubkey", "-in", str(tmp_path / "tls.pem"))
    assert key_pub == cert_pub


def test_cert_manager_certificate(helm: Helm) -> None:
    manifests = helm.template(*SCENARIOS["cert-manager"])
    assert find(manifests, "Secret") == []
    certificate = one(manifests, "Certificate")
    issuer = one(manifests, "Issuer")
    assert issuer["spec"] == {"selfSigned": {}}
    assert certificate["spec"]["issuerRef"] == {
        "name": issuer["metadata"]["name"],
        "kind": "Issuer",
        "group": "cert-manager.io",
    }
    configuration = one(manifests, "MutatingWebhookConfiguration")
    annotation = configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert annotation == f"{NAMESPACE}/{certificate['metadata']['name']}"
    assert "caBundle" not in configuration["webhooks"][0]["clientConfig"]
    deployment = one(manifests, "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["webhook-certs"]["secret"]["secretName"] == certificate["spec"]["secretName"]
    service = one(manifests, "Service")["metadata"]["name"]
    assert f"{service}.{NAMESPACE}.svc" in certificate["spec"]["dnsNames"]

    corp = helm.template(*SCENARIOS["cert-manager-cluster-issuer"])
    assert find(corp, "Issuer") == []
    assert one(corp, "Certificate")["spec"]["issuerRef"] == {
        "name": "corp-ca",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }


# --- CRDs, packaging, the install manifest, NOTES ---------------------------------------------


def test_crds_are_shipped(helm: Helm) -> None:
    crd_files = sorted((ROOT / "crds").glob("*.yaml"))
    expected = {
        crd["metadata"]["name"]
        for path in crd_files
        for crd in yaml.safe_load_all(path.read_text())
        if crd
    }
    assert {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"} <= expected
    rendered = helm.template(include_crds=True)
    assert {m["metadata"]["name"] for m in find(rendered, "CustomResourceDefinition")} == expected
    assert find(helm.template(), "CustomResourceDefinition") == []


def test_package_holds_only_the_chart(helm: Helm, tmp_path: pathlib.Path) -> None:
    helm.run("package", ".", "--destination", str(tmp_path))
    (tarball,) = tmp_path.glob("kglance-*.tgz")
    with tarfile.open(tarball) as archive:
        members = [m.name for m in archive.getmembers() if m.isfile()]
    assert members, "empty chart package"
    outside = [
        m
        for m in members
        if not (
            m in {"kglance/Chart.yaml", "kglance/values.yaml", "kglance/values.schema.json"}
            or m == "kglance/README.md"
            or m.startswith(("kglance/templates/", "kglance/crds/"))
        )
    ]
    assert outside == [], "add these to .helmignore: " + ", ".join(outside)
    templates = {pathlib.PurePosixPath(m).name for m in members if "/templates/" in m}
    on_disk = {p.name for p in (ROOT / "templates").iterdir() if p.is_file()}
    assert templates == on_disk


def test_deploy_manifest_is_current(helm: Helm, tmp_path: pathlib.Path) -> None:
    fresh = tmp_path / "kglance.yaml"
    subprocess.run(
        ["bash", str(ROOT / "scripts/render-deploy.sh"), str(fresh)],
        env={**os.environ, "KGLANCE_HELM": helm.binary},
        check=True,
        capture_output=True,
        timeout=50,
    )
    committed = ROOT / "deploy/kglance.yaml"
    assert committed.exists(), "deploy/kglance.yaml is missing: run scripts/render-deploy.sh"
    assert committed.read_text() == fresh.read_text(), (
        "deploy/kglance.yaml differs from the chart's output: run scripts/render-deploy.sh"
    )
    manifests = [doc for doc in yaml.safe_load_all(fresh.read_text()) if doc]
    assert manifests[0] == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {"app.kubernetes.io/part-of": "kglance"}},
    }
    for manifest in manifests[1:]:
        if "namespace" in manifest["metadata"]:
            assert manifest["metadata"]["namespace"] == NAMESPACE
    assert validation_errors(manifests, KUBE_VERSIONS[-1]) == []
    # no private key in a file every cluster would share: cert-manager issues it
    assert find(manifests, "Secret") == []
    assert one(manifests, "Certificate")


def test_notes(helm: Helm) -> None:
    result = helm.run("install", RELEASE, ".", "--namespace", NAMESPACE, "--dry-run=client")
    notes = result.stdout.split("NOTES:", 1)[1]
    assert f"kubectl -n {NAMESPACE} get deployment kglance" in notes
    assert "--clusterrole=kglance-image-recorder" in notes
    assert "kglance.io/inject" in notes
    off = helm.run(
        "install",
        RELEASE,
        ".",
        "--namespace",
        NAMESPACE,
        "--dry-run=client",
        "--set",
        "webhook.enabled=false",
    )
    assert "The webhook is disabled" in off.stdout
