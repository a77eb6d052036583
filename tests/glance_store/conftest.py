"""Fixtures for the glance_store compatibility tests.

Every test reaches the API the way Glance does: ``install()``, then the module imported by
its public name ``glance_store`` (``gs`` below), configured with an oslo.config
``ConfigOpts`` read from a real configuration file. The package's state (stores, scheme
tables) is reset after each test, which also stops the stores' event-loop threads.
"""

from __future__ import annotations

import importlib
import pathlib
import textwrap
import types
from collections.abc import Callable, Iterator

import pytest
from oslo_config import cfg as oslo_cfg

from kglance.drivers import glance_store as compat


@pytest.fixture
def gs() -> Iterator[types.ModuleType]:
    compat.install()
    module = importlib.import_module("glance_store")
    try:
        yield module
    finally:
        module.reset()


ConfFactory = Callable[[str], object]


@pytest.fixture
def make_conf(tmp_path: pathlib.Path) -> ConfFactory:
    """A ``ConfigOpts`` loaded from ``text`` (an INI file), with ``enabled_backends``
    registered by the consumer as Glance does."""

    def make(text: str) -> object:
        path = tmp_path / f"glance-api-{len(list(tmp_path.glob('glance-api-*')))}.conf"
        path.write_text(textwrap.dedent(text))
        conf = oslo_cfg.ConfigOpts()
        conf.register_opt(oslo_cfg.DictOpt("enabled_backends"))
        conf(args=["--config-file", str(path)], project="glance", default_config_files=[])
        return conf

    return make


def payload(size: int, *, seed: int = 0) -> bytes:
    return bytes((i * 7 + seed + (i >> 9)) % 253 for i in range(size))
