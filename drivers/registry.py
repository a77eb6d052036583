"""Which class implements which store type, imported only when a backend of that type is built.

A sorted static table names the built-in drivers by import path, with the module each needs and
the pip extra that installs it, so ``import kglance.drivers`` never imports boto3 or librados
and a missing SDK is reported as "install kglance[s3]" instead of an ImportError deep in a
stack. Out-of-tree drivers register under the ``kglance.drivers`` entry-point group
(``mytype = mypackage.module:MyDriver``). A ``Registry`` is an ordinary immutable object made
at start-up and passed to whoever builds backends; there is no module-level mutable state.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
from collections.abc import Mapping
from typing import Any

import pydantic

from kglance.drivers import base, errors


@dataclasses.dataclass(frozen=True, slots=True)
class DriverSpec:
    target: str  # "package.module:Class"
    requires: tuple[str, ...] = ()  # modules the driver imports, checked first for a clear hint
    extra: str | None = None  # pip extra installing them


BUILTIN: Mapping[str, DriverSpec] = {
    "cinder": DriverSpec(
        "kglance.drivers.cinder:CinderDriver", ("cinderclient", "os_brick"), "cinder"
    ),
    "file": DriverSpec("kglance.drivers.filesystem:FilesystemDriver"),
    "http": DriverSpec("kglance.drivers.http:HttpDriver"),
    "rbd": DriverSpec("kglance.drivers.rbd:RbdDriver", ("rados", "rbd"), "rbd"),
    "s3": DriverSpec("kglance.drivers.s3:S3Driver", ("boto3",), "s3"),
    "swift": DriverSpec("kglance.drivers.swift:SwiftDriver", ("swiftclient",), "swift"),
}
assert list(BUILTIN) == sorted(BUILTIN), "keep BUILTIN sorted"

ENTRY_POINT_GROUP = "kglance.drivers"


class Registry:
    """Store types mapped to driver specs: the built-ins plus installed entry points."""

    def __init__(self, specs: Mapping[str, DriverSpec] | None = None) -> None:
        self._specs = dict(BUILTIN if specs is None else specs)

    @classmethod
    def discover(cls) -> Registry:
        specs = dict(BUILTIN)
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            specs.setdefault(entry.name, DriverSpec(entry.value))
        return cls(specs)

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(sorted(self._specs))

    def driver_class(self, type_name: str) -> type[base.Driver]:
        spec = self._specs.get(type_name)
        if spec is None:
            known = ", ".join(self.types)
            raise errors.ConfigurationError(f"unknown store type {type_name!r} (known: {known})")
        for module in spec.requires:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise errors.MissingDependency(
                    driver=type_name, module=module, extra=spec.extra or type_name
                ) from exc
        module_name, _, attr = spec.target.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise errors.ConfigurationError(
                f"cannot load the {type_name!r} driver {spec.target!r}: {exc}"
            ) from exc
        if not (isinstance(cls, type) and issubclass(cls, base.Driver)):
            raise errors.ConfigurationError(f"{spec.target} is not a kglance driver class")
        return cls

    def build(self, type_name: str, options: Mapping[str, Any], *, backend_id: str) -> base.Driver:
        """Validate ``options`` with the driver's model and construct the driver."""
        cls = self.driver_class(type_name)
        try:
            validated = cls.Options.model_validate(dict(options))
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(options)'}: {err['msg']}"
                for err in exc.errors()
            )
            # not chained: pydantic's own message repeats the input values, and options hold
            # secrets that a logged traceback must not show
            raise errors.ConfigurationError(
                f"backend {backend_id!r} ({type_name}): {problems}"
            ) from None
        return cls(validated, backend_id=backend_id)
