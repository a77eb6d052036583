"""kglance's rbd driver through ``Backend`` on the test Ceph cluster, next to ``glance_rbd``.

Both stores get the same cluster, pool, user and glance's defaults (8 MiB chunks, so 8 MiB
objects; no thin provisioning: the input is random anyway), so the rows differ only by the
driver. The cluster comes from the environment ``scripts/servers/ceph-up.sh`` prints
(``CEPH_CONF``, ``RBD_POOL``); without it these cases are not offered. Cases: known-size and
unknown-size adds (glance grows an image of unknown size with doubling resizes; so does
kglance), a whole get, and the whole image as four concurrent ranged reads (offset and length,
as a parallel or resumed download asks for them; glance_store's rbd store serves no ranges).

The memstore OSD keeps every byte in RAM: a run holds the two get images (kept across runs)
plus the image being added, so ``--size 1G`` needs ``CEPH_MEMSTORE_BYTES`` of at least 4 GiB.
"""

from __future__ import annotations

import asyncio
import os
import uuid

from bench import plan
from bench.cases import glance_rbd, kglance_fs
from bench.core import Job, Stopwatch, Timing
from kglance.drivers import backends, base, errors, locations, registry

BACKEND = "ceph"
GET_IMAGE_ID = "bench-get-kglance"
CHUNK_MIB = 8  # glance_store's default rbd_store_chunk_size


def backend_for() -> backends.Backend:
    options = {
        "rbd_store_ceph_conf": os.environ["CEPH_CONF"],
        "rbd_store_pool": os.environ["RBD_POOL"],
        "rbd_store_user": os.environ.get("CEPH_USER", "admin"),
        "rbd_store_chunk_size": CHUNK_MIB,
    }
    driver = registry.Registry().build("rbd", options, backend_id=BACKEND)
    return backends.Backend(driver, backend_id=BACKEND)


async def _add(backend: backends.Backend, image_id: str, job: Job, *, sized: bool) -> Timing:
    await backend.driver.check()  # connect outside the timed section, as glance's configure
    with Stopwatch() as watch:
        result = await backend.add(
            image_id,
            kglance_fs.read_file(job.input_file, job.block_size),
            size=job.size if sized else None,
            hash_algo="sha512",
        )
    return watch.timing(
        result.size,
        md5=result.checksum,
        sha512=result.os_hash_value,
        location=result.location.uri(),
    )


async def _add_and_delete(job: Job) -> Timing:
    backend = backend_for()
    try:
        timing = await _add(
            backend, f"bench-{uuid.uuid4()}", job, sized=job.params["sized"] == "yes"
        )
        await backend.delete(locations.parse(timing.info["location"]))
        return timing
    finally:
        await backend.driver.aclose()


def add(job: Job) -> Timing:
    return asyncio.run(_add_and_delete(job))


async def _store_for_get(job: Job) -> Timing:
    backend = backend_for()
    try:
        try:
            location = await backend.locate(GET_IMAGE_ID)
            if await backend.size(location) == job.size:
                return Timing(0.0, 0, 0.0, info={"location": location.uri()})
            await backend.delete(location)
        except errors.NotFound:
            pass
        return await _add(backend, GET_IMAGE_ID, job, sized=True)
    finally:
        await backend.driver.aclose()


def store_for_get(job: Job) -> Timing:
    """Store the input once under a fixed id (kept across samples and runs) for the gets."""
    return asyncio.run(_store_for_get(job))


async def _read(
    backend: backends.Backend, location: locations.Location, part: base.ByteRange
) -> int:
    nbytes = 0
    async with backend.get(location, byte_range=part) as blob:
        async for chunk in blob:
            nbytes += len(chunk)
    return nbytes


async def _get(job: Job) -> Timing:
    backend = backend_for()
    location = locations.parse(job.params["location"])
    parts = int(job.params.get("parts", "1"))
    step = -(-job.size // parts)
    ranges = [base.ByteRange(start, step) for start in range(0, job.size, step)]
    try:
        await backend.driver.check()
        with Stopwatch() as watch:
            counts = await asyncio.gather(*(_read(backend, location, r) for r in ranges))
        return watch.timing(sum(counts))
    finally:
        await backend.driver.aclose()


def get(job: Job) -> Timing:
    return asyncio.run(_get(job))


def cases(settings: plan.Settings) -> list[plan.Case]:
    if not glance_rbd.available():
        return []

    def add_case(case_id: str, *, sized: bool) -> plan.PythonCase:
        size = "known size" if sized else "unknown size"
        return plan.PythonCase(
            id=case_id,
            title=f"kglance rbd Backend.add md5 + sha512, {size} (memstore OSD)",
            section="add",
            peer=plan.KGLANCE,
            function=f"{__name__}:add",
            params={"sized": "yes" if sized else "no"},
        )

    def get_case(case_id: str, title: str, **params: str) -> plan.PythonCase:
        return plan.PythonCase(
            id=case_id,
            title=title,
            section="get (warm cache)",
            peer=plan.KGLANCE,
            function=f"{__name__}:get",
            setup=f"{__name__}:store_for_get",
            workdir="kglance.rbd.get",
            params=params,
        )

    return [
        add_case("kglance.rbd.add", sized=True),
        add_case("kglance.rbd.add.unsized", sized=False),
        get_case("kglance.rbd.get", "kglance rbd Backend.get from the snapshot (memstore OSD)"),
        get_case(
            "kglance.rbd.get.ranges",
            "kglance rbd Backend.get as 4 concurrent ranged reads (memstore OSD)",
            parts="4",
        ),
    ]
