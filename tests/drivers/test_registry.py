"""Registry: store types to driver classes, missing SDKs, option validation, entry points."""

from __future__ import annotations

import pathlib
import tomllib
import traceback
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Literal

import pydantic
import pytest

from kglance.drivers import base, errors, locations, registry
from kglance.drivers.registry import DriverSpec, Registry

HERE = __name__  # this module doubles as the home of the drivers the specs below point at
SECRET = "hunter2-Sup3rS3cret"


class TinyOptions(base.DriverOptions):
    tiny_store_secret_key: str
    tiny_store_chunk_size: int = pydantic.Field(default=4, ge=1)
    tiny_store_mode: Literal["fast", "safe"] = "safe"


class TinyDriver(base.Driver):
    """A driver that stores nothing; only its construction matters here."""

    Options = TinyOptions
    type_name = "tiny"
    schemes = ("rbd",)

    async def add(
        self,
        image_id: str,
        data: AsyncIterator[bytes],
        *,
        size: int | None,
        mode: base.WriteMode = "create",
    ) -> base.Stored:
        raise errors.Unsupported("tiny stores nothing")

    def get(
        self, location: locations.Location, *, byte_range: base.ByteRange = base.FULL
    ) -> AbstractAsyncContextManager[base.Blob]:
        raise errors.NotFound(str(location))

    async def size(self, location: locations.Location) -> int:
        raise errors.NotFound(str(location))

    async def delete(self, location: locations.Location) -> None:
        return None

    def owns(self, location: locations.Location) -> bool:
        return False


class NotADriver:
    pass


def tiny_registry(**extra: DriverSpec) -> Registry:
    return Registry({"tiny": DriverSpec(f"{HERE}:TinyDriver"), **extra})


# --------------------------------------------------------------------------- the table


def test_builtin_types() -> None:
    assert Registry().types == ("cinder", "file", "http", "rbd", "s3", "swift")


def test_builtin_extras_exist_in_pyproject() -> None:
    pyproject = pathlib.Path(__file__).parents[2] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    for name, spec in registry.BUILTIN.items():
        if spec.requires:
            assert spec.extra in extras, f"{name}: extra {spec.extra!r} is not in pyproject.toml"


def test_unknown_type_lists_the_known_ones() -> None:
    with pytest.raises(errors.ConfigurationError) as caught:
        Registry().driver_class("vmware")
    message = caught.value.message
    assert "'vmware'" in message
    for known in Registry().types:
        assert known in message


def test_registry_is_a_snapshot_of_its_specs() -> None:
    specs = {"tiny": DriverSpec(f"{HERE}:TinyDriver")}
    built = Registry(specs)
    specs["other"] = DriverSpec(f"{HERE}:TinyDriver")
    assert built.types == ("tiny",)


# --------------------------------------------------------------------------- loading


def test_missing_sdk_names_the_extra() -> None:
    spec = DriverSpec(f"{HERE}:TinyDriver", ("kglance_no_such_sdk",), "fancy")
    with pytest.raises(errors.MissingDependency) as caught:
        tiny_registry(fancy=spec).build("fancy", {}, backend_id="b")
    error = caught.value
    assert (error.driver, error.module, error.extra) == ("fancy", "kglance_no_such_sdk", "fancy")
    assert "pip install 'kglance[fancy]'" in error.message
    assert isinstance(error.__cause__, ImportError)
    assert isinstance(error, errors.ConfigurationError)


def test_missing_sdk_without_an_extra_names_the_type() -> None:
    spec = DriverSpec(f"{HERE}:TinyDriver", ("kglance_no_such_sdk",))
    with pytest.raises(errors.MissingDependency, match=r"kglance\[plain\]"):
        tiny_registry(plain=spec).driver_class("plain")


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("kglance_no_such_package.driver:Driver", id="missing-module"),
        pytest.param(f"{HERE}:NoSuchClass", id="missing-class"),
        pytest.param(HERE, id="no-class-named"),
        pytest.param(f"{HERE}:NotADriver", id="not-a-driver"),
        pytest.param(f"{HERE}:SECRET", id="not-a-class"),
    ],
)
def test_bad_targets_are_configuration_errors(target: str) -> None:
    with pytest.raises(errors.ConfigurationError):
        tiny_registry(bad=DriverSpec(target)).driver_class("bad")


def test_build_validates_and_constructs() -> None:
    driver = tiny_registry().build(
        "tiny",
        {"tiny_store_secret_key": SECRET, "tiny_store_chunk_size": "8"},
        backend_id="store-1",
    )
    assert isinstance(driver, TinyDriver)
    assert driver.backend_id == "store-1"
    assert driver.options == TinyOptions(tiny_store_secret_key=SECRET, tiny_store_chunk_size=8)


# --------------------------------------------------------------------------- option errors


@pytest.mark.parametrize(
    ("options", "named"),
    [
        pytest.param(
            {"tiny_store_secret_key": SECRET, "tiny_store_chunk_size": SECRET},
            "tiny_store_chunk_size",
            id="wrong-type",
        ),
        pytest.param(
            {"tiny_store_secret_key": SECRET, "tiny_store_chunk_size": 0},
            "tiny_store_chunk_size",
            id="out-of-range",
        ),
        pytest.param(
            {"tiny_store_secret_key": SECRET, "tiny_store_mode": SECRET},
            "tiny_store_mode",
            id="not-a-choice",
        ),
        pytest.param(
            {"tiny_store_secret_key": SECRET, "tiny_store_secret_kee": SECRET},
            "tiny_store_secret_kee",
            id="unknown-option",
        ),
        pytest.param({"tiny_store_chunk_size": 2}, "tiny_store_secret_key", id="missing"),
        pytest.param({"tiny_store_secret_key": [SECRET]}, "tiny_store_secret_key", id="a-list"),
    ],
)
def test_option_errors_name_option_and_backend_but_not_the_value(
    options: dict[str, object], named: str
) -> None:
    with pytest.raises(errors.ConfigurationError) as caught:
        tiny_registry().build("tiny", options, backend_id="store-1")
    message = caught.value.message
    assert named in message
    assert "'store-1'" in message
    assert "tiny" in message
    # the whole logged traceback, causes included, stays free of option values
    assert SECRET not in "".join(traceback.format_exception(caught.value))
    assert SECRET not in repr(caught.value)


# --------------------------------------------------------------------------- entry points


def test_discover_without_plugins_has_the_builtins() -> None:
    assert set(Registry().types) <= set(Registry.discover().types)


def test_discover_finds_installed_entry_points(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = tmp_path / "kglance_tiny_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: kglance-tiny-plugin\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        f"[{registry.ENTRY_POINT_GROUP}]\n"
        f"tiny = {HERE}:TinyDriver\n"
        "broken = kglance_no_such_plugin.module:Driver\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    discovered = Registry.discover()
    assert {"tiny", "broken", *registry.BUILTIN} <= set(discovered.types)
    assert discovered.driver_class("tiny") is TinyDriver
    with pytest.raises(errors.ConfigurationError, match="broken"):
        discovered.driver_class("broken")
