"""The conformance suite against the cinder driver, through the wire-level fake Cinder API.

Volumes are sparse files that os-brick's LOCAL connector really attaches; the volume size
unit is 1 MiB so the suite's unknown-size uploads really extend their volumes. ``leftovers()``
is what the fake holds: volumes (with their status), open attachments and backing files.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from kglance.drivers import locations
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
    async def test_delete_of_a_volume_that_never_existed(self, target: suite.Target) -> None:
        missing = locations.CinderLocation(volume_id=str(uuid.uuid4()), store="cinder-fast")
        await target.backend.delete(missing)
