"""The conformance suite against the cinder driver, through the wire-level fake Cinder API.

Volumes are sparse files that os-brick's LOCAL connector really attaches; the volume size
unit is 1 MiB so the suite's unknown-size uploads really extend their volumes. ``leftovers()``
is what the fake holds: volumes (with their status), open attachments and backing files.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from kglance.drivers import errors, locations
from tests.conformance import suite
from tests.drivers import cinder_helpers


@pytest.fixture
async def target() -> AsyncIterator[suite.Target]:
    async with (
        cinder_helpers.fake_cinder() as fake,
        cinder_helpers.cinder_backend(fake) as backend,
    ):

        async def seed(image_id: str, data: bytes) -> locations.Location:
            result = await backend.add(image_id, suite.stream(data), size=len(data))
            return result.location

        async def leftovers() -> list[str]:
            return fake.leftovers()

        yield suite.Target(backend=backend, seed=seed, leftovers=leftovers)
        assert not fake.attachments, "an attachment was left open"


class TestCinderRead(suite.ReadConformance):
    pass


class TestCinderWrite(suite.WriteConformance):
    async def test_delete_is_idempotent(self, target: suite.Target) -> None:
        # the suite's version names a missing sibling "never-existed", which is not a volume
        # id (cinder locations must end in a UUID); this is the same test with a UUID
        result = await target.backend.add("del", suite.stream(b"abc"), size=3)
        await target.backend.delete(result.location)
        await target.backend.delete(result.location)
        with pytest.raises(errors.NotFound):
            await target.backend.size(await target.backend.locate("del"))
        missing = locations.CinderLocation(volume_id=str(uuid.uuid4()), store="cinder-fast")
        await target.backend.delete(missing)
