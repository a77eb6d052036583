"""The CRDs: structural, fully described, in step with the spec models, and their rules hold.

No apiserver runs here, so the checks an apiserver would make are made piecewise:
``kubernetes-validate`` checks each CRD object against Kubernetes' own schema; a walk checks the
structural-schema rules and that every property has a ``description`` (what ``kubectl explain``
shows); ``jsonschema`` validates the examples in ``deploy/examples`` and some invalid objects
against each ``openAPIV3Schema`` (objects closed with ``additionalProperties: false``, since
the apiserver would silently prune a misspelt field); and ``cel-python`` evaluates every
``x-kubernetes-validations`` rule against good and bad objects, including the transition rules
(``oldSelf``) that keep ``imageId`` and ``backend`` immutable.
"""

from __future__ import annotations

import copy
import pathlib
from collections.abc import Iterator, Mapping
from typing import Any

import celpy
import celpy.adapter
import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pydantic
import pytest
import yaml

from kglance.operator import names, spec

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_FILES = {
    "StoreBackend": ROOT / "crds" / "storebackends.kglance.io.yaml",
    "ImageLocation": ROOT / "crds" / "imagelocations.kglance.io.yaml",
}
EXAMPLES = ROOT / "deploy" / "examples"
CHECKED_KINDS: dict[str, type[pydantic.BaseModel]] = {
    "StoreBackend": spec.StoreBackendSpec,
    "ImageLocation": spec.ImageLocationSpec,
}
Schema = dict[str, Any]


def load_crd(kind: str) -> dict[str, Any]:
    [crd] = [d for d in yaml.safe_load_all(CRD_FILES[kind].read_text()) if d]
    assert isinstance(crd, dict)
    return crd


def schema_of(kind: str) -> Schema:
    [version] = load_crd(kind)["spec"]["versions"]
    result: Schema = version["schema"]["openAPIV3Schema"]
    return result


def example_documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc)
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def custom_examples() -> list[tuple[str, dict[str, Any]]]:
    return [(n, d) for n, d in example_documents() if d.get("apiVersion") == names.API_VERSION]


def walk(schema: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    yield path, schema
    for name, child in (schema.get("properties") or {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def closed_jsonschema(schema: Schema) -> Schema:
    """The schema as jsonschema reads it, with every object closed to unknown fields."""
    result = copy.deepcopy(schema)
    for path, node in walk(result):
        for key in [k for k in node if k.startswith("x-kubernetes-")]:
            del node[key]
        if "properties" in node and "additionalProperties" not in node and path != ".metadata":
            node["additionalProperties"] = False
    return result


def schema_errors(kind: str, document: Mapping[str, Any]) -> list[str]:
    validator = jsonschema.Draft4Validator(closed_jsonschema(schema_of(kind)))
    return [
        f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(document)
    ]


# ------------------------------------------------------------------ CEL


def _cel_value(value: Any) -> Any:
    return celpy.adapter.json_to_cel(value)


def cel_failures(
    kind: str, document: Mapping[str, Any], old: Mapping[str, Any] | None = None
) -> list[str]:
    """Messages of the ``x-kubernetes-validations`` rules ``document`` breaks."""
    environment = celpy.Environment()
    failures: list[str] = []

    def visit(schema: Schema, value: Any, old_value: Any, path: str) -> None:
        if value is None:
            return
        for rule in schema.get("x-kubernetes-validations") or ():
            transition = "oldSelf" in rule["rule"]
            if transition and old_value is None:
                continue  # the apiserver runs transition rules on updates only
            program = environment.program(environment.compile(rule["rule"]))
            activation = {"self": _cel_value(value)}
            if transition:
                activation["oldSelf"] = _cel_value(old_value)
            result = program.evaluate(activation)
            if not isinstance(result, celpy.celtypes.BoolType):
                raise AssertionError(f"{path}: rule {rule['rule']!r} gave {result!r}")
            if not result:
                failures.append(f"{path}: {rule['message']}")
        for name, child in (schema.get("properties") or {}).items():
            if isinstance(value, Mapping) and name in value:
                old_child = old_value.get(name) if isinstance(old_value, Mapping) else None
                visit(child, value[name], old_child, f"{path}.{name}")
        if isinstance(schema.get("items"), dict) and isinstance(value, list):
            for index, item in enumerate(value):
                visit(schema["items"], item, None, f"{path}[{index}]")

    visit(schema_of(kind), document, old, "")
    return failures


# ------------------------------------------------------------------ the CRDs themselves


@pytest.mark.parametrize("kind", sorted(CRD_FILES))
def test_crd_is_a_valid_kubernetes_object(kind: str) -> None:
    crd = load_crd(kind)
    kubernetes_validate.validate(crd, kubernetes_validate.latest_version(), strict=True)
    assert crd["metadata"]["name"] == f"{crd['spec']['names']['plural']}.{names.GROUP}"
    assert crd["spec"]["group"] == names.GROUP
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["kind"] == kind
    assert crd["spec"]["names"]["categories"] == ["kglance"]
    [version] = crd["spec"]["versions"]
    assert version["name"] == names.VERSION
    assert version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def test_names_short_names_and_printer_columns() -> None:
    sb = load_crd("StoreBackend")["spec"]
    il = load_crd("ImageLocation")["spec"]
    assert sb["names"]["plural"] == names.STOREBACKENDS
    assert il["names"]["plural"] == names.IMAGELOCATIONS
    assert sb["names"]["shortNames"] == ["sb", "storebackend"]
    assert il["names"]["shortNames"] == ["il", "imgloc"]
    columns = {
        kind: [c["name"] for c in crd["versions"][0]["additionalPrinterColumns"]]
        for kind, crd in (("sb", sb), ("il", il))
    }
    assert columns == {
        "sb": ["Type", "Default", "Ready", "Reason", "Age"],
        "il": ["Image", "Backend", "Size", "Phase", "Age"],
    }


@pytest.mark.parametrize("kind", sorted(CRD_FILES))
def test_schema_is_structural_and_every_property_is_described(kind: str) -> None:
    for path, node in walk(schema_of(kind)):
        assert "type" in node, f"{kind}{path}: no type"
        assert node.get("description"), f"{kind}{path}: no description"
        assert "x-kubernetes-preserve-unknown-fields" not in node, f"{kind}{path}"
        if node["type"] == "array":
            assert isinstance(node.get("items"), dict), f"{kind}{path}: array without items"
        if node["type"] == "object" and path != ".metadata":
            assert "properties" in node or "additionalProperties" in node, f"{kind}{path}"
        for required in node.get("required") or ():
            assert required in node["properties"], f"{kind}{path}: {required} not a property"


def test_image_location_size_is_int64() -> None:
    size = schema_of("ImageLocation")["properties"]["spec"]["properties"]["size"]
    assert (size["type"], size["format"], size["minimum"]) == ("integer", "int64", 0)


# ------------------------------------------------------------------ in step with spec.py

Model = type[pydantic.BaseModel]


def _model_of(annotation: Any) -> Model | None:
    """The pydantic model inside ``X | None`` (or ``X``), if any."""
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, pydantic.BaseModel):
            return candidate
    return None


def _pairs(model: Model, schema: Schema, path: str) -> Iterator[tuple[str, Model, Schema]]:
    yield path, model, schema
    for field in model.model_fields.values():
        child = _model_of(field.annotation)
        alias = field.alias
        assert alias is not None
        if child is not None and alias in schema.get("properties", {}):
            yield from _pairs(child, schema["properties"][alias], f"{path}.{alias}")


def model_schema_pairs() -> list[tuple[str, Model, Schema]]:
    return [
        *_pairs(spec.StoreBackendSpec, schema_of("StoreBackend")["properties"]["spec"], "sb.spec"),
        *_pairs(
            spec.ImageLocationSpec, schema_of("ImageLocation")["properties"]["spec"], "il.spec"
        ),
    ]


def test_every_block_is_compared() -> None:
    paths = {path for path, _, _ in model_schema_pairs()}
    for store_type in spec.STORE_TYPES:
        assert f"sb.spec.{store_type}" in paths
    assert {
        "sb.spec.s3.accessKey",
        "sb.spec.s3.caBundle",
        "il.spec.acls",
        "il.spec.source",
    } <= paths
    assert len(paths) >= 20


@pytest.mark.parametrize(
    ("path", "model", "schema"), model_schema_pairs(), ids=[p for p, _, _ in model_schema_pairs()]
)
def test_crd_properties_are_the_model_fields(path: str, model: Model, schema: Schema) -> None:
    aliases = {f.alias for f in model.model_fields.values()}
    assert aliases == set(schema["properties"]), path
    required = {f.alias for f in model.model_fields.values() if f.is_required()}
    assert required == set(schema.get("required") or ()), path
    for field in model.model_fields.values():
        crd_default = schema["properties"][field.alias].get("default")
        if field.is_required() or field.default is None or field.default_factory is not None:
            assert crd_default is None or crd_default == [], (path, field.alias)
        else:
            default = list(field.default) if isinstance(field.default, tuple) else field.default
            if default == []:  # an empty list: absent and [] mean the same
                assert crd_default in (None, []), (path, field.alias)
            else:
                assert crd_default == default, (path, field.alias)


# ------------------------------------------------------------------ examples


def test_examples_cover_every_store_type_and_both_image_locations() -> None:
    docs = [d for _, d in custom_examples()]
    types = sorted(d["spec"]["type"] for d in docs if d["kind"] == "StoreBackend")
    assert types == sorted(spec.STORE_TYPES)
    locations = [d for d in docs if d["kind"] == "ImageLocation"]
    assert any("source" in d["spec"] for d in locations)
    assert any("location" in d["spec"] for d in locations)


@pytest.mark.parametrize(
    ("name", "document"), custom_examples(), ids=[n for n, _ in custom_examples()]
)
def test_example_is_valid(name: str, document: dict[str, Any]) -> None:
    assert schema_errors(document["kind"], document) == [], name
    assert cel_failures(document["kind"], document) == [], name
    CHECKED_KINDS[document["kind"]].model_validate(document["spec"])


@pytest.mark.parametrize(
    ("name", "document"), example_documents(), ids=[n for n, _ in example_documents()]
)
def test_example_built_in_objects_are_valid(name: str, document: dict[str, Any]) -> None:
    if document.get("apiVersion") == names.API_VERSION:
        return
    kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


def _example(kind: str, name: str) -> dict[str, Any]:
    [document] = [
        d for _, d in custom_examples() if d["kind"] == kind and d["metadata"]["name"] == name
    ]
    return copy.deepcopy(document)


def _set(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    node = document
    for key in parents:
        node = node.setdefault(key, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return document


@pytest.mark.parametrize(
    ("kind", "name", "path", "value", "message"),
    [
        ("StoreBackend", "objects", "spec.type", "nfs", "'nfs' is not one of"),
        ("StoreBackend", "objects", "spec.s3.bucketUrlFormat", "dns", "'dns' is not one of"),
        ("StoreBackend", "objects", "spec.s3.largeObjectChunkSizeMiB", 4, "less than the minimum"),
        ("StoreBackend", "objects", "spec.s3.accessKey", "AKIDINLINE", "is not of type 'object'"),
        (
            "StoreBackend",
            "objects",
            "spec.s3.secretKey",
            None,
            "'secretKey' is a required property",
        ),
        ("StoreBackend", "objects", "spec.s3.bukcet", "typo", "'bukcet' was unexpected"),
        ("StoreBackend", "fast", "spec.description", "a\n[evil]", "does not match"),
        ("StoreBackend", "fast", "spec.file.claimName", None, "'claimName' is a required"),
        ("ImageLocation", "cirros-fast", "spec.size", -1, "less than the minimum of 0"),
        ("ImageLocation", "cirros-fast", "spec.imageId", ".hidden", "does not match"),
        ("ImageLocation", "cirros-fast", "spec.reclaimPolicy", "Keep", "'Keep' is not one of"),
        ("ImageLocation", "cirros-fast", "spec.checksum", "XYZ", "does not match"),
        ("ImageLocation", "cirros-fast", "spec.backend", "Fast", "does not match"),
        (
            "StoreBackend",
            "objects",
            "spec.s3.accessKey.secretKeyRef.name",
            "S3_Creds",
            "does not match",
        ),
    ],
)
def test_invalid_objects_fail_the_schema(
    kind: str, name: str, path: str, value: Any, message: str
) -> None:
    errors = schema_errors(kind, _set(_example(kind, name), path, value))
    assert any(message in error for error in errors), errors


# ------------------------------------------------------------------ CEL rules


def test_the_cross_field_rules_exist() -> None:
    rules = {
        kind: [
            r["rule"]
            for _, node in walk(schema_of(kind))
            for r in node.get("x-kubernetes-validations") or ()
        ]
        for kind in CRD_FILES
    }
    sb, il = " ".join(rules["StoreBackend"]), " ".join(rules["ImageLocation"])
    assert "has(self.secretKeyRef) != has(self.configMapKeyRef)" in sb
    assert "has(self.monitors) != has(self.cephConfig)" in sb
    assert "self.type == 'cinder' && has(self.cinder)" in sb
    assert "has(self.location) || has(self.source)" in il
    assert "self.spec.source.name != self.metadata.name" in il
    assert il.count("self == oldSelf") == 2  # imageId, backend


@pytest.mark.parametrize(
    ("kind", "name", "path", "value", "message"),
    [
        ("StoreBackend", "objects", "spec.type", "swift", "set the store block named by spec.type"),
        (
            "StoreBackend",
            "objects",
            "spec.file",
            {"claimName": "pvc"},
            "set only the store block named by spec.type",
        ),
        (
            "StoreBackend",
            "objects",
            "spec.s3.caBundle",
            {
                "secretKeyRef": {"name": "a", "key": "b"},
                "configMapKeyRef": {"name": "a", "key": "b"},
            },
            "set exactly one of secretKeyRef and configMapKeyRef",
        ),
        (
            "StoreBackend",
            "web",
            "spec.http.caBundle",
            {},
            "set exactly one of secretKeyRef and configMapKeyRef",
        ),
        (
            "StoreBackend",
            "ceph",
            "spec.rbd.cephConfig",
            {"configMapKeyRef": {"name": "ceph", "key": "ceph.conf"}},
            "set exactly one of monitors and cephConfig",
        ),
        (
            "StoreBackend",
            "ceph",
            "spec.rbd.monitors",
            None,
            "set exactly one of monitors and cephConfig",
        ),
        ("StoreBackend", "fast", "spec.file.subPath", "../other", "must not contain '..'"),
        ("StoreBackend", "fast", "spec.file.subPath", "/abs", "must be relative"),
        ("ImageLocation", "cirros-fast", "spec.location", None, "set location, or source"),
        ("ImageLocation", "cirros-ceph", "spec.source.name", "cirros-ceph", "its own source"),
        ("ImageLocation", "cirros-fast", "spec.osHashValue", None, "osHashAlgo and osHashValue"),
    ],
)
def test_cel_rules_refuse_bad_objects(
    kind: str, name: str, path: str, value: Any, message: str
) -> None:
    document = _set(_example(kind, name), path, value)
    failures = cel_failures(kind, document)
    assert any(message in failure for failure in failures), failures


@pytest.mark.parametrize("field", ["imageId", "backend"])
def test_image_id_and_backend_are_immutable(field: str) -> None:
    old = _example("ImageLocation", "cirros-fast")
    assert cel_failures("ImageLocation", copy.deepcopy(old), old) == []
    new = _set(copy.deepcopy(old), f"spec.{field}", "changed")
    assert cel_failures("ImageLocation", new, old) == [f".spec.{field}: {field} is immutable"]
    changed_size = _set(copy.deepcopy(old), "spec.size", 1)
    assert cel_failures("ImageLocation", changed_size, old) == []
