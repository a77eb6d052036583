"""The conformance suite against the swift driver and the real Swift (tempauth, auth v1).

Two variants: ``single-put``, with glance's thresholds (every image of the suite is below
5120 "MB", so images are single PUTs; unknown sizes are SLOs), and ``slo``, where the
large-object threshold is 1 "MB" (1,024,000 bytes) and segments are 2 "MB", so everything of a
megabyte or more is a static large object of concurrently uploaded segments.

Each test gets its own container; ``leftovers`` lists every object in it, which is where SLO
segments live too (``<image id>/<upload id>/<n>``), so a failed write that left a segment or a
manifest shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kglance.drivers import locations
from tests.conformance import suite
from tests.drivers import swift_support

VARIANTS = {
    "single-put": {},
    "slo": {
        "swift_store_large_object_size": 1,
        # 2,048,000-byte segments: Swift's SLO throttles segments under 1 MiB after the 10th
        "swift_store_large_object_chunk_size": 2,
    },
}


@pytest.fixture(params=sorted(VARIANTS))
async def target(request: pytest.FixtureRequest) -> AsyncIterator[suite.Target]:
    server = swift_support.SwiftServer.from_env()
    container = swift_support.unique("kg-conformance")
    driver = swift_support.build(
        server.options(swift_store_container=container, **VARIANTS[request.param])
    )
    backend = swift_support.backend(driver)
    conn = server.connection()

    async def seed(image_id: str, data: bytes) -> locations.Location:
        result = await backend.add(image_id, suite.stream(data), size=len(data))
        return result.location

    async def leftovers() -> list[str]:
        return await asyncio.to_thread(swift_support.listing, conn, container)

    try:
        yield suite.Target(backend=backend, seed=seed, leftovers=leftovers)
    finally:
        await driver.aclose()
        await asyncio.to_thread(swift_support.wipe, conn, container)
        conn.close()


class TestSwiftRead(suite.ReadConformance):
    pass


class TestSwiftWrite(suite.WriteConformance):
    pass
