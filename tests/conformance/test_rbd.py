"""The conformance suite against the rbd driver on the real Ceph cluster (``ceph-up.sh``).

Thin provisioning is on (the suite's payloads have zero-filled halves, so the skipped-chunk
path is exercised) and the object size is 1 MiB, so the suite's few-MiB images span several
objects. ``leftovers()`` lists every image of the pool, the hidden ones of uploads in
progress included, and every trash entry, through the test's own admin connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kglance.drivers import backends, locations, registry
from tests.conformance import suite
from tests.drivers import rbd_helpers


@pytest.fixture
async def target() -> AsyncIterator[suite.Target]:
    async with rbd_helpers.pool_admin() as admin:
        driver = registry.Registry().build(
            "rbd",
            {
                "rbd_store_ceph_conf": admin.conf,
                "rbd_store_pool": admin.pool,
                "rbd_store_chunk_size": 1,
                "rbd_thin_provisioning": True,
            },
            backend_id="ceph",
        )
        backend = backends.Backend(driver, backend_id="ceph")

        async def seed(image_id: str, data: bytes) -> locations.Location:
            result = await backend.add(image_id, suite.stream(data), size=len(data))
            return result.location

        async def leftovers() -> list[str]:
            return await admin.run(admin.contents)

        try:
            yield suite.Target(backend=backend, seed=seed, leftovers=leftovers)
        finally:
            await driver.aclose()


class TestRbdRead(suite.ReadConformance):
    pass


class TestRbdWrite(suite.WriteConformance):
    pass
