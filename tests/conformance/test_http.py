"""The read conformance suite against the http driver and the real nginx.

``seed`` writes the bytes into nginx's docroot and returns their URL. The suite runs three
times: against plain static files (ranges honoured with 206), through ``/norange/`` where nginx
ignores Range and the driver must skip and cut the body itself, and through a redirect.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import uuid
from collections.abc import AsyncIterator

import pytest

from kglance.drivers import backends, locations, registry
from tests.conformance import suite
from tests.conftest import require_env


@pytest.fixture(params=["", "norange/", "redirect/"], ids=["ranges", "norange", "redirected"])
async def target(request: pytest.FixtureRequest) -> AsyncIterator[suite.Target]:
    base_url = require_env("HTTP_BASE_URL").rstrip("/")
    folder = f"conformance-http-{uuid.uuid4().hex[:12]}"
    directory = pathlib.Path(require_env("HTTP_ROOT")) / folder
    directory.mkdir()
    driver = registry.Registry().build("http", {}, backend_id="web")
    backend = backends.Backend(driver, backend_id="web")

    async def seed(image_id: str, data: bytes) -> locations.Location:
        await asyncio.to_thread((directory / image_id).write_bytes, data)
        return locations.parse(f"{base_url}/{request.param}{folder}/{image_id}")

    async def leftovers() -> list[str]:
        return os.listdir(directory)

    try:
        yield suite.Target(backend=backend, seed=seed, leftovers=leftovers, writable=False)
    finally:
        await driver.aclose()
        shutil.rmtree(directory)


class TestHttpRead(suite.ReadConformance):
    pass
