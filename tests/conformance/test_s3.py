"""The conformance suite against the s3 driver and a real Ceph radosgw.

Every test gets a bucket of its own (created by the driver on its first write, which also
exercises ``s3_store_create_bucket_on_put``), emptied and removed afterwards. Parts are 5 MiB
(S3's minimum) with 2 upload threads and a 5 MiB large-object threshold, so the suite's large
images go multipart and must stay within its memory bound. ``leftovers`` lists the objects
and the multipart uploads still in progress, so a failed write that forgot to abort its
upload is caught.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping

import pytest

from kglance.drivers import backends, locations, registry
from kglance.drivers.s3 import S3Driver
from tests.conformance import suite
from tests.conftest import require_env
from tests.drivers import s3_helpers


def s3_options(bucket: str, **overrides: object) -> Mapping[str, object]:
    return {
        "s3_store_host": require_env("S3_ENDPOINT"),
        "s3_store_access_key": require_env("S3_ACCESS_KEY"),
        "s3_store_secret_key": require_env("S3_SECRET_KEY"),
        "s3_store_region_name": s3_helpers.region(),
        "s3_store_bucket": bucket,
        "s3_store_create_bucket_on_put": True,
        "s3_store_large_object_size": 5,
        "s3_store_large_object_chunk_size": 5,
        "s3_store_thread_pools": 2,
        **overrides,
    }


@pytest.fixture
async def target() -> AsyncIterator[suite.Target]:
    bucket = f"kglance-conformance-{uuid.uuid4().hex[:12]}"
    driver = registry.Registry().build("s3", s3_options(bucket), backend_id="objects")
    assert isinstance(driver, S3Driver)
    backend = backends.Backend(driver, backend_id="objects")

    async def seed(image_id: str, data: bytes) -> locations.Location:
        result = await backend.add(image_id, suite.stream(data), size=len(data))
        return result.location

    async def leftovers() -> list[str]:
        return await s3_helpers.bucket_contents(driver.s3, bucket)

    try:
        yield suite.Target(backend=backend, seed=seed, leftovers=leftovers)
    finally:
        await s3_helpers.remove_bucket(driver.s3, bucket)
        await driver.aclose()


class TestS3Read(suite.ReadConformance):
    pass


class TestS3Write(suite.WriteConformance):
    pass
