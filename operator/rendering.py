"""A namespace's StoreBackends rendered into the glance_store configuration its sidecars read.

Pure: bodies, Secret and ConfigMap data in, files out; no API calls, no disk, no kopf. The
operator writes ``files`` into the ``kglance-sidecar-config`` Secret (and into a private
directory for its own probes), ``kglance render`` into a local directory, so one function
decides what every one of them holds.

The output is glance_store's multi-backend INI, read by ``kglance.sidecar.config``:

* Credentials never appear in the conf. Each secret option is a companion file holding just
  the value (``<backend>.<option>``) named by ``<option>_file``, which the sidecar reads
  relative to the conf; CA bundles, ``ceph.conf`` and keyrings are companion files too
  (``<backend>.ca.pem``, ``<backend>.ceph.conf``, ``<backend>.keyring``). Options that take a
  path get ``config_dir``/file, the directory where the files are mounted.
* Every user-provided value is written inside quotes (the reader removes exactly one pair),
  and a value with a line break or another control character is refused: a description of
  ``"x\\n[evil]"`` must not open a section.
* A backend with a problem (an invalid spec, a missing Secret key, a default claimed by an
  older backend too) is left out; the others keep working. Each problem names the condition
  it turns false, a reason and a message that names the Secret and key to fix.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pydantic

from kglance.drivers import errors, registry
from kglance.operator import names, spec

SECRETS_RESOLVED = "SecretsResolved"
DEFAULT_CONFLICT = "DefaultConflict"
SPEC_VALID = "SpecValid"
OPTIONS_VALID = "OptionsValid"

CA_SUFFIX = "ca.pem"
CEPH_CONF_SUFFIX = "ceph.conf"
KEYRING_SUFFIX = "keyring"
FILE_OPTION_SUFFIX = "_file"
# sections the reader gives a meaning of its own; backend names are lower-case DNS names
RESERVED_SECTIONS = frozenset({"kglance", "glance_store", "backend_defaults"})
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    condition: str  # the StoreBackend condition this makes False (DefaultConflict: True)
    reason: str
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class Rendering:
    files: dict[str, bytes]  # CONFIG_KEY and companion files; empty when nothing renders
    default_backend: str | None
    problems: dict[str, list[Problem]]
    included: list[str]
    referenced_secrets: dict[str, set[str]]
    referenced_config_maps: dict[str, set[str]]
    secret_files: frozenset[str] = frozenset()  # companion files holding Secret data


class _Unrenderable(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _ini_value(value: str, *, backend: str, option: str) -> str:
    if _UNSAFE.search(value):
        raise _Unrenderable(
            Problem(
                SPEC_VALID,
                "UnsafeValue",
                f"{option} of backend {backend} contains a line break or control character",
            )
        )
    return f'"{value}"'


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclasses.dataclass
class _Section:
    """One backend's section and companion files while it is rendered."""

    name: str
    config_dir: str
    secrets: Mapping[str, Mapping[str, bytes]]
    config_maps: Mapping[str, Mapping[str, str]]
    lines: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    files: dict[str, bytes] = dataclasses.field(default_factory=dict)
    secret_files: set[str] = dataclasses.field(default_factory=set)
    # what the driver's Options model will see, secrets included, for validation only
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def set(self, option: str, value: Any) -> None:
        text = _text(value)
        if isinstance(value, str):  # text from the user: quoted, and checked
            self.lines.append((option, _ini_value(text, backend=self.name, option=option)))
        else:
            self.lines.append((option, text))
        self.options[option] = text

    def secret_bytes(self, ref: spec.KeyRef) -> bytes:
        data = self.secrets.get(ref.name)
        if data is None:
            raise _Unrenderable(
                Problem(SECRETS_RESOLVED, "SecretNotFound", f"Secret {ref.name} not found")
            )
        if ref.key not in data:
            raise _Unrenderable(
                Problem(
                    SECRETS_RESOLVED,
                    "SecretKeyMissing",
                    f"Secret {ref.name} has no key {ref.key}",
                )
            )
        return data[ref.key]

    def content(self, source: spec.ContentSource) -> tuple[bytes, bool]:
        """The bytes a Secret or ConfigMap key holds, and whether they came from a Secret."""
        if source.secret_key_ref is not None:
            return self.secret_bytes(source.secret_key_ref), True
        ref = source.config_map_key_ref
        assert ref is not None  # the model allows exactly one
        data = self.config_maps.get(ref.name)
        if data is None:
            raise _Unrenderable(
                Problem(SECRETS_RESOLVED, "ConfigMapNotFound", f"ConfigMap {ref.name} not found")
            )
        if ref.key not in data:
            raise _Unrenderable(
                Problem(
                    SECRETS_RESOLVED,
                    "ConfigMapKeyMissing",
                    f"ConfigMap {ref.name} has no key {ref.key}",
                )
            )
        return data[ref.key].encode(), False

    def companion(self, suffix: str, content: bytes, *, secret: bool) -> str:
        """Add ``<backend>.<suffix>``; returns its file name."""
        file_name = f"{self.name}.{suffix}"
        self.files[file_name] = content
        if secret:
            self.secret_files.add(file_name)
        return file_name

    def path_option(self, option: str, suffix: str, content: bytes, *, secret: bool) -> None:
        file_name = self.companion(suffix, content, secret=secret)
        self.set(option, posixpath.join(self.config_dir, file_name))

    def secret_option(self, option: str, ref: spec.SecretKeyRef) -> None:
        raw = self.secret_bytes(ref.secret_key_ref)
        try:
            value = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            key = ref.secret_key_ref
            raise _Unrenderable(
                Problem(
                    SECRETS_RESOLVED,
                    "SecretValueInvalid",
                    f"Secret {key.name} key {key.key} is not UTF-8 text",
                )
            ) from None
        file_name = self.companion(option, value.encode(), secret=True)
        self.lines.append((option + FILE_OPTION_SUFFIX, f'"{file_name}"'))
        self.options[option] = value


# ----------------------------------------------------------------- per store type


def _generic(section: _Section, block: pydantic.BaseModel, *, skip: Iterable[str] = ()) -> None:
    """Fields whose value is the option's value: plain values, Secret keys, CA bundles."""
    skipped = set(skip)
    model = type(block)
    for field_name in model.model_fields:
        if field_name in skipped:
            continue
        value = getattr(block, field_name)
        if value is None:
            continue
        option = spec.glance_option(model, field_name)
        if isinstance(value, spec.SecretKeyRef):
            section.secret_option(option, value)
        elif isinstance(value, spec.ContentSource):
            content, secret = section.content(value)
            section.path_option(option, CA_SUFFIX, content, secret=secret)
        elif isinstance(value, tuple):
            if value:  # empty: the option's default, nothing to write
                section.set(option, ",".join(value))
        else:
            section.set(option, value)


def _file(section: _Section, block: spec.FileBlock, *, volume_root: str) -> None:
    section.set("filesystem_store_datadir", posixpath.join(volume_root, section.name))
    _generic(section, block, skip=("claim_name", "sub_path"))


def _http(section: _Section, block: spec.HttpBlock, *, volume_root: str) -> None:
    _generic(section, block, skip=("proxies",))
    if block.proxies is not None:
        proxies = [
            f"{scheme}:{url}"
            for scheme, url in (("http", block.proxies.http), ("https", block.proxies.https))
            if url
        ]
        if proxies:
            section.set("http_proxy_information", ",".join(proxies))


def _rbd(section: _Section, block: spec.RbdBlock, *, volume_root: str) -> None:
    _generic(section, block, skip=("monitors", "ceph_config", "keyring"))
    if block.monitors is not None:
        conf = f"[global]\nmon_host = {','.join(block.monitors)}\n".encode()
        section.path_option("rbd_store_ceph_conf", CEPH_CONF_SUFFIX, conf, secret=False)
    elif block.ceph_config is not None:
        conf, secret = section.content(block.ceph_config)
        section.path_option("rbd_store_ceph_conf", CEPH_CONF_SUFFIX, conf, secret=secret)
    if block.keyring is not None:
        keyring = section.secret_bytes(block.keyring.secret_key_ref)
        if b"[" not in keyring:  # a bare key, as Rook and `ceph auth get-key` give it
            user = (block.user or "admin").removeprefix("client.")
            keyring = b"[client." + user.encode() + b"]\n\tkey = " + keyring.strip() + b"\n"
        section.path_option("rbd_store_keyring", KEYRING_SUFFIX, keyring, secret=True)


def _plain(section: _Section, block: pydantic.BaseModel, *, volume_root: str) -> None:
    _generic(section, block)


_RENDERERS: Mapping[str, Callable[..., None]] = {
    "file": _file,
    "http": _http,
    "rbd": _rbd,
    "s3": _plain,
    "swift": _plain,
    "cinder": _plain,
}


# ----------------------------------------------------------------- the namespace


def _meta(body: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = body.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _references(value: Any, kind: str) -> set[str]:
    """Names under ``kind`` (secretKeyRef / configMapKeyRef) anywhere in a raw spec."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == kind and isinstance(item, Mapping) and isinstance(item.get("name"), str):
                found.add(item["name"])
            else:
                found |= _references(item, kind)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= _references(item, kind)
    return found


def _validation_message(exc: pydantic.ValidationError, *, prefix: str) -> str:
    """Where and what, never the input (it may be a credential)."""
    return "; ".join(
        f"{prefix}{'.'.join(str(p) for p in err['loc']) or '(spec)'}: {err['msg']}"
        for err in exc.errors()
    )


def _check_options(section: _Section, type_name: str, drivers: registry.Registry) -> None:
    try:
        model = drivers.driver_class(type_name).Options
    except errors.MissingDependency:
        return  # this process lacks the SDK; the sidecar's image has it and validates there
    try:
        model.model_validate(section.options)
    except pydantic.ValidationError as exc:
        message = _validation_message(exc, prefix=f"[{section.name}] ")
        raise _Unrenderable(Problem(OPTIONS_VALID, "InvalidOptions", message)) from None


@dataclasses.dataclass(frozen=True, slots=True)
class _Rendered:
    name: str
    type: str
    parsed: spec.StoreBackendSpec
    section: _Section


def _render_backend(
    body: Mapping[str, Any],
    *,
    secrets: Mapping[str, Mapping[str, bytes]],
    config_maps: Mapping[str, Mapping[str, str]],
    volume_root: str,
    config_dir: str,
    drivers: registry.Registry,
) -> _Rendered:
    name = str(_meta(body).get("name") or "")
    if not name or name in RESERVED_SECTIONS or not re.fullmatch(r"[a-z0-9][-a-z0-9.]*", name):
        raise _Unrenderable(
            Problem(SPEC_VALID, "InvalidName", f"{name!r} cannot name a backend section")
        )
    try:
        parsed = spec.StoreBackendSpec.model_validate(body.get("spec") or {})
    except pydantic.ValidationError as exc:
        message = _validation_message(exc, prefix="spec.")
        raise _Unrenderable(Problem(SPEC_VALID, "InvalidSpec", message)) from None
    section = _Section(name, config_dir, secrets, config_maps)
    if parsed.description is not None:
        section.lines.append(
            (
                "store_description",
                _ini_value(parsed.description, backend=name, option="description"),
            )
        )
    section.lines.append(("weight", str(parsed.weight)))
    _RENDERERS[parsed.type](section, parsed.block, volume_root=volume_root)
    _check_options(section, parsed.type, drivers)
    return _Rendered(name, parsed.type, parsed, section)


def _default_claims(backends: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names of the backends claiming ``default: true``, oldest first (then by name).

    Every claim counts, even of a backend left out for another problem, so which backends
    conflict never depends on whether some Secret exists right now.
    """
    claims: dict[str, str] = {}
    for body in backends:
        name = str(_meta(body).get("name") or "")
        body_spec = body.get("spec")
        if name and isinstance(body_spec, Mapping) and body_spec.get("default") is True:
            created = str(_meta(body).get("creationTimestamp") or "")
            claims.setdefault(name, created)
    return sorted(claims, key=lambda name: (claims[name], name))


def _choose_default(
    claims: Sequence[str], rendered: Sequence[_Rendered], problems: dict[str, list[Problem]]
) -> str | None:
    """Mark the losing claims with DefaultConflict; the default among the problem-free."""
    for loser in claims[1:]:
        problems.setdefault(loser, []).append(
            Problem(
                DEFAULT_CONFLICT,
                "DefaultConflict",
                f"backend {claims[0]} is the default of this namespace (claimed earlier)",
            )
        )
    candidates = [r for r in rendered if r.name not in problems]
    if not candidates:
        return None
    if claims and claims[0] in {r.name for r in candidates}:
        return claims[0]
    if len(candidates) == 1:
        return candidates[0].name
    return min(candidates, key=lambda r: (-r.parsed.weight, r.name)).name


def _conf(included: Sequence[_Rendered], default: str) -> bytes:
    lines = [
        "# Rendered by the kglance operator from the namespace's StoreBackends; do not edit.",
        "[DEFAULT]",
        "enabled_backends = " + ", ".join(f"{r.name}:{r.type}" for r in included),
        "",
        "[glance_store]",
        f"default_backend = {default}",
    ]
    for rendered in included:
        lines += ["", f"[{rendered.name}]"]
        lines += [f"{option} = {value}" for option, value in rendered.section.lines]
    return ("\n".join(lines) + "\n").encode()


def render_namespace(
    backends: Sequence[Mapping[str, Any]],
    *,
    secrets: Mapping[str, Mapping[str, bytes]],
    config_maps: Mapping[str, Mapping[str, str]],
    volume_root: str,
    config_dir: str = names.SIDECAR_CONFIG_DIR,
    drivers: registry.Registry | None = None,
) -> Rendering:
    """Render the StoreBackend ``backends`` of one namespace.

    ``secrets`` maps a Secret's name to its decoded data, ``config_maps`` a ConfigMap's name to
    its data. A file backend ``<name>`` is at ``<volume_root>/<name>``; companion files are
    referred to as ``<config_dir>/<file>`` by options that take a path.
    """
    drivers = drivers or registry.Registry()
    problems: dict[str, list[Problem]] = {}
    referenced_secrets: dict[str, set[str]] = {}
    referenced_config_maps: dict[str, set[str]] = {}
    rendered: list[_Rendered] = []
    seen: set[str] = set()
    for body in sorted(backends, key=lambda b: str(_meta(b).get("name") or "")):
        name = str(_meta(body).get("name") or "")
        referenced_secrets[name] = _references(body.get("spec"), "secretKeyRef")
        referenced_config_maps[name] = _references(body.get("spec"), "configMapKeyRef")
        if name in seen:
            problems.setdefault(name, []).append(
                Problem(SPEC_VALID, "DuplicateName", f"backend {name} is given twice")
            )
            continue
        seen.add(name)
        try:
            rendered.append(
                _render_backend(
                    body,
                    secrets=secrets,
                    config_maps=config_maps,
                    volume_root=volume_root,
                    config_dir=config_dir,
                    drivers=drivers,
                )
            )
        except _Unrenderable as exc:
            problems.setdefault(name, []).append(exc.problem)
    default = _choose_default(_default_claims(backends), rendered, problems)
    included = [r for r in rendered if r.name not in problems]
    files: dict[str, bytes] = {}
    secret_files: set[str] = set()
    if default is not None:
        files[names.CONFIG_KEY] = _conf(included, default)
        for r in included:
            files.update(r.section.files)
            secret_files |= r.section.secret_files
    return Rendering(
        files=files,
        default_backend=default,
        problems=problems,
        included=[r.name for r in included],
        referenced_secrets=referenced_secrets,
        referenced_config_maps=referenced_config_maps,
        secret_files=frozenset(secret_files),
    )
