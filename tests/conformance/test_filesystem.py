"""The conformance suite against the filesystem driver on real temporary directories.

Two datadirs with different priorities, thin provisioning on (the suite's payloads have
zero-filled halves, so the hole path is exercised), and leftovers that list every entry of
both directories, hidden temporary files included.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import AsyncIterator

import pytest

from kglance.drivers import backends, locations, registry
from tests.conformance import suite


@pytest.fixture
async def target(tmp_path: pathlib.Path) -> AsyncIterator[suite.Target]:
    primary, secondary = tmp_path / "primary", tmp_path / "secondary"
    driver = registry.Registry().build(
        "file",
        {
            "filesystem_store_datadirs": [f"{primary}:200", f"{secondary}:100"],
            "filesystem_thin_provisioning": True,
            "filesystem_store_file_perm": 640,
        },
        backend_id="fs",
    )
    backend = backends.Backend(driver, backend_id="fs")

    async def seed(image_id: str, data: bytes) -> locations.Location:
        result = await backend.add(image_id, suite.stream(data), size=len(data))
        return result.location

    async def leftovers() -> list[str]:
        return [f"{d.name}/{name}" for d in (primary, secondary) for name in os.listdir(d)]

    yield suite.Target(backend=backend, seed=seed, leftovers=leftovers)
    await driver.aclose()


class TestFilesystemRead(suite.ReadConformance):
    pass


class TestFilesystemWrite(suite.WriteConformance):
    pass
