"""glance_store's multi-backend configuration, read into typed backend specs.

The sidecar reads the file a Glance operator already has (seed 002, glance_store.md §1.3-1.4)::

    [DEFAULT]
    enabled_backends = fast:file, web:http
    [glance_store]
    default_backend = fast
    [fast]
    store_description = "Local disks"
    weight = 100
    filesystem_store_datadir = /var/lib/glance/images
    [backend_defaults]
    https_insecure = false

Rules, decided once here:

* Only ``[DEFAULT] enabled_backends``, ``[glance_store] default_backend``, the backend sections,
  ``[backend_defaults]`` and ``[kglance]`` are read; everything else belongs to Glance
  (``[database]``, ``[keystone_authtoken]``, other ``[DEFAULT]`` keys, ...) and is ignored.
* A backend's options are the fields of its driver's ``Options`` model (named like
  glance_store's options), plus ``store_description`` and ``weight``. An unknown key in the
  backend's own section is a warning naming section and key (a typo guard); an option missing
  from the section is taken from ``[backend_defaults]`` when set there. Values are validated
  by the driver's model when the backend is built, and errors name section and option.
* A field typed as a sequence (``filesystem_store_datadirs``, an oslo MultiStr) receives a list:
  one item per line, from every repetition of the key. Other fields receive the last value as
  a string. Drivers whose sequence options follow oslo's comma-separated ListOpt split the items
  themselves.
* Secrets can live in files, so the file itself can be a ConfigMap: ``X_file = /path`` reads
  option ``X`` from a file (relative paths are relative to the config file), and
  ``[kglance] secrets_dir = DIR`` reads option ``X`` of backend ``B`` from ``DIR/B/X`` when that
  file exists (a Secret mounted per backend). Trailing newlines are stripped. Giving one option
  in two ways is an error. Each file read is watched for hot reload.
* Store types are not special-cased: whatever the driver registry knows works here unchanged.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pydantic

from kglance.drivers import backends, errors, registry
from kglance.sidecar import ini

ENABLED_BACKENDS = "enabled_backends"
STORE_SECTION = "glance_store"
DEFAULTS_SECTION = "backend_defaults"
KGLANCE_SECTION = "kglance"
MULTI_BACKEND_OPTIONS = ("store_description", "weight")
FILE_SUFFIX = "_file"
_SEQUENCE_ORIGINS = (list, tuple, set, frozenset, Sequence, Iterable)
# what building a driver raises when its configuration or its environment is wrong
_BUILD_ERRORS = (errors.StoreError, OSError, ImportError)


class ConfigError(errors.ConfigurationError):
    """The configuration cannot be used; the message names the file, section and option."""


@dataclasses.dataclass(frozen=True, slots=True)
class BackendSpec:
    id: str
    type: str
    description: str | None
    weight: int
    options: Mapping[str, Any] = dataclasses.field(repr=False)  # may hold secrets


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceConfig:
    source: str
    backends: tuple[BackendSpec, ...]
    default_backend: str
    warnings: tuple[str, ...] = ()
    watched: tuple[str, ...] = ()  # files whose change means the configuration changed


def embedded_default(datadir: str) -> str:
    """``kglance serve`` without ``--config``: one filesystem backend under ``datadir``."""
    return (
        "[DEFAULT]\n"
        "enabled_backends = local:file\n"
        "[glance_store]\n"
        "default_backend = local\n"
        "[local]\n"
        f"store_description = Local filesystem store in {datadir}\n"
        f"filesystem_store_datadir = {datadir}\n"
    )


def read(path: str, *, drivers: registry.Registry) -> ServiceConfig:
    """Read and check the configuration file at ``path`` (no driver is constructed yet)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from exc
    return parse(text, source=path, drivers=drivers)


def parse(text: str, *, source: str, drivers: registry.Registry) -> ServiceConfig:
    sections = ini.parse(text.splitlines(), source=source)
    reader = _Reader(sections, source=source, drivers=drivers)
    return reader.service_config()


async def build(config: ServiceConfig, *, drivers: registry.Registry) -> backends.Backends:
    """Construct every backend; on any failure close those already built and raise."""
    built: list[backends.Backend] = []
    try:
        built.extend(
            _build_backend(spec, drivers=drivers, source=config.source) for spec in config.backends
        )
        return backends.Backends(built, default=config.default_backend)
    except BaseException:
        for backend in built:
            await backend.driver.aclose()
        raise


def _build_backend(
    spec: BackendSpec, *, drivers: registry.Registry, source: str
) -> backends.Backend:
    try:
        _validate(spec, drivers=drivers, source=source)
        driver = drivers.build(spec.type, spec.options, backend_id=spec.id)
    except _BUILD_ERRORS as exc:
        if isinstance(exc, ConfigError):
            raise
        message = exc.message if isinstance(exc, errors.StoreError) else str(exc)
        raise ConfigError(f"{source}: [{spec.id}] {message}") from exc
    return backends.Backend(
        driver, backend_id=spec.id, description=spec.description, weight=spec.weight
    )


def _validate(spec: BackendSpec, *, drivers: registry.Registry, source: str) -> None:
    """Validate the options first, so errors read ``[section] option: problem``."""
    model = drivers.driver_class(spec.type).Options
    try:
        model.model_validate(dict(spec.options))
    except pydantic.ValidationError as exc:
        # not chained and no input values: options may hold secrets
        problems = "; ".join(
            f"[{spec.id}] {'.'.join(str(p) for p in err['loc']) or '(options)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from None


def _wants_many(annotation: Any) -> bool:
    """Whether a pydantic field's type is a sequence (possibly optional)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_wants_many(arg) for arg in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _wants_many(typing.get_args(annotation)[0])
    return origin in _SEQUENCE_ORIGINS or annotation in _SEQUENCE_ORIGINS


def _as_value(values: list[str], *, many: bool) -> Any:
    if many:
        return [line.strip() for value in values for line in value.splitlines() if line.strip()]
    return values[-1]


class _Reader:
    def __init__(self, sections: ini.Sections, *, source: str, drivers: registry.Registry) -> None:
        self._sections = sections
        self._source = source
        self._base_dir = os.path.dirname(os.path.abspath(source)) if source else os.getcwd()
        self._drivers = drivers
        self._warnings: list[str] = []
        self._watched: list[str] = []
        kglance = sections.get(KGLANCE_SECTION, {})
        secrets_dir = kglance.get("secrets_dir")
        self._secrets_dir = self._path(secrets_dir[-1]) if secrets_dir else None

    def _error(self, section: str, option: str, message: str) -> ConfigError:
        return ConfigError(f"{self._source}: [{section}] {option}: {message}")

    def _path(self, value: str) -> str:
        return os.path.join(self._base_dir, os.path.expanduser(value.strip()))

    def service_config(self) -> ServiceConfig:
        enabled = self._enabled_backends()
        default = self._default_backend(enabled)
        specs = tuple(
            self._backend_spec(backend_id, type_name) for backend_id, type_name in enabled
        )
        return ServiceConfig(
            source=self._source,
            backends=specs,
            default_backend=default,
            warnings=tuple(self._warnings),
            watched=tuple(dict.fromkeys(self._watched)),
        )

    def _enabled_backends(self) -> list[tuple[str, str]]:
        values = self._sections.get(ini.DEFAULT_SECTION, {}).get(ENABLED_BACKENDS)
        if not values or not values[-1].strip():
            raise self._error(ini.DEFAULT_SECTION, ENABLED_BACKENDS, "no backend is enabled")
        enabled: dict[str, str] = {}
        for item in values[-1].replace("\n", ",").split(","):
            if not item.strip():
                continue
            backend_id, sep, type_name = (part.strip() for part in item.partition(":"))
            if not sep or not backend_id or not type_name:
                raise self._error(
                    ini.DEFAULT_SECTION,
                    ENABLED_BACKENDS,
                    f"expected 'id:type', got {item.strip()!r}",
                )
            if backend_id in enabled:
                raise self._error(
                    ini.DEFAULT_SECTION, ENABLED_BACKENDS, f"backend {backend_id!r} is listed twice"
                )
            enabled[backend_id] = type_name
        return list(enabled.items())

    def _default_backend(self, enabled: list[tuple[str, str]]) -> str:
        values = self._sections.get(STORE_SECTION, {}).get("default_backend")
        ids = [backend_id for backend_id, _ in enabled]
        if not values or not values[-1].strip():
            raise self._error(STORE_SECTION, "default_backend", "not set")
        default = values[-1].strip()
        if default not in ids:
            raise self._error(
                STORE_SECTION, "default_backend", f"{default!r} is not in enabled_backends"
            )
        return default

    def _backend_spec(self, backend_id: str, type_name: str) -> BackendSpec:
        try:
            options_model = self._drivers.driver_class(type_name).Options
        except (errors.ConfigurationError, ImportError) as exc:
            message = exc.message if isinstance(exc, errors.StoreError) else str(exc)
            raise self._error(
                ini.DEFAULT_SECTION, ENABLED_BACKENDS, f"backend {backend_id!r}: {message}"
            ) from exc
        fields = options_model.model_fields
        section_name = ini.normalize_section(backend_id)
        section = self._sections.get(section_name, {})
        defaults = self._sections.get(DEFAULTS_SECTION, {})
        raw: dict[str, list[str]] = {}
        for key, values in section.items():
            if key in fields or key in MULTI_BACKEND_OPTIONS:
                raw[key] = values
            elif key.endswith(FILE_SUFFIX) and key[: -len(FILE_SUFFIX)] in fields:
                self._from_file(raw, section_name, key, values[-1])
            else:
                self._warnings.append(
                    f"{self._source}: [{section_name}] {key}: unknown option for a "
                    f"{type_name!r} backend, ignored"
                )
        self._from_secrets_dir(raw, section_name, fields)
        for key, values in defaults.items():
            if key in fields and key not in raw:
                raw[key] = values
        options = {
            key: _as_value(values, many=_wants_many(fields[key].annotation))
            for key, values in raw.items()
            if key in fields
        }
        return BackendSpec(
            id=backend_id,
            type=type_name,
            description=raw["store_description"][-1] if "store_description" in raw else None,
            weight=self._weight(section_name, raw.get("weight")),
            options=options,
        )

    def _weight(self, section: str, values: list[str] | None) -> int:
        if not values:
            return 0
        try:
            return int(values[-1].strip())
        except ValueError:
            raise self._error(section, "weight", f"{values[-1]!r} is not an integer") from None

    def _read_secret(self, section: str, key: str, path: str) -> str:
        try:
            with open(path, encoding="utf-8") as f:
                value = f.read()
        except OSError as exc:
            raise self._error(section, key, f"cannot read {path}: {exc.strerror}") from exc
        self._watched.append(path)
        return value.rstrip("\r\n")

    def _from_file(self, raw: dict[str, list[str]], section: str, key: str, value: str) -> None:
        option = key[: -len(FILE_SUFFIX)]
        if option in raw:
            raise self._error(section, key, f"{option} is also set; give it one way only")
        raw[option] = [self._read_secret(section, key, self._path(value))]

    def _from_secrets_dir(
        self, raw: dict[str, list[str]], section: str, fields: Mapping[str, Any]
    ) -> None:
        if self._secrets_dir is None:
            return
        directory = os.path.join(self._secrets_dir, section)
        self._watched.append(directory)
        if not os.path.isdir(directory):
            return
        for option in fields:
            path = os.path.join(directory, option)
            if not os.path.isfile(path):
                continue
            if option in raw:
                raise self._error(section, option, f"also given by {path}; give it one way only")
            raw[option] = [self._read_secret(section, option, path)]
