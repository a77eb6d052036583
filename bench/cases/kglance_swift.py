"""kglance's swift driver through ``Backend`` on the test Swift, next to ``glance_swift``.

Both stores get the same server, account, container and glance's default large-object options
(see ``swift_server``); kglance authenticates with auth v1 (``swift_store_auth_version = 1``),
which the test Swift's tempauth speaks. Cases: a known-size add (one PUT below 5120 "MB"), an
unknown-size add (a static large object of 200 "MB" segments, up to four in flight; glance_store
writes the segments of a dynamic large object one after another), a whole get, and the image
read in 1 MiB ranged requests from the end backwards (glance_store has no ranged reads; the
sample's ``last_mib_ms`` is the time of the first request, the last MiB).
"""

from __future__ import annotations

import asyncio
import time
import uuid

from bench import plan
from bench.cases import kglance_fs, swift_server
from bench.core import Job, MiB, Stopwatch, Timing
from kglance.drivers import backends, base, errors, locations, registry

BACKEND = "swift"
GET_IMAGE_ID = "bench-get-kglance"


def backend_for(job: Job) -> backends.Backend:
    options = {**swift_server.options(), "swift_store_auth_version": "1"}
    driver = registry.Registry().build("swift", options, backend_id=BACKEND)
    return backends.Backend(driver, backend_id=BACKEND)


async def _add(backend: backends.Backend, image_id: str, job: Job, *, sized: bool) -> Timing:
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
    backend = backend_for(job)
    try:
        timing = await _add(backend, str(uuid.uuid4()), job, sized=job.params["sized"] == "yes")
        await backend.delete(locations.parse(timing.info["location"]))
        return timing
    finally:
        await backend.driver.aclose()


def add(job: Job) -> Timing:
    return asyncio.run(_add_and_delete(job))


async def _store_for_get(job: Job) -> Timing:
    backend = backend_for(job)
    try:
        location = await backend.locate(GET_IMAGE_ID)
        try:
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


async def _get(job: Job) -> Timing:
    backend = backend_for(job)
    location = locations.parse(job.params["location"])
    nbytes = 0
    try:
        with Stopwatch() as watch:
            async with backend.get(location) as blob:
                async for chunk in blob:
                    nbytes += len(chunk)
        return watch.timing(nbytes)
    finally:
        await backend.driver.aclose()


def get(job: Job) -> Timing:
    return asyncio.run(_get(job))


async def _get_by_ranges(job: Job) -> Timing:
    """The image in 1 MiB ranged requests from the end backwards; the first is the last MiB."""
    backend = backend_for(job)
    location = locations.parse(job.params["location"])
    nbytes = 0
    first_seconds = 0.0
    try:
        with Stopwatch() as watch:
            for end in range(job.size, 0, -MiB):
                started = time.perf_counter()
                byte_range = base.ByteRange(max(end - MiB, 0), min(MiB, end))
                async with backend.get(location, byte_range=byte_range) as blob:
                    async for chunk in blob:
                        nbytes += len(chunk)
                first_seconds = first_seconds or time.perf_counter() - started
        return watch.timing(nbytes, last_mib_ms=f"{first_seconds * 1000:.1f}")
    finally:
        await backend.driver.aclose()


def get_by_ranges(job: Job) -> Timing:
    return asyncio.run(_get_by_ranges(job))


def cases(settings: plan.Settings) -> list[plan.Case]:
    if not swift_server.available():
        return []

    def add_case(case_id: str, *, sized: bool) -> plan.PythonCase:
        size = "known size" if sized else "unknown size"
        return plan.PythonCase(
            id=case_id,
            title=f"kglance swift Backend.add md5 + sha512, {size} (Swift AIO)",
            section="add",
            peer=plan.KGLANCE,
            function=f"{__name__}:add",
            params={"sized": "yes" if sized else "no"},
        )

    def get_case(case_id: str, title: str, function: str) -> plan.PythonCase:
        return plan.PythonCase(
            id=case_id,
            title=title,
            section="get (warm cache)",
            peer=plan.KGLANCE,
            function=f"{__name__}:{function}",
            setup=f"{__name__}:store_for_get",
            workdir="kglance.swift.get",
        )

    return [
        add_case("kglance.swift.add", sized=True),
        add_case("kglance.swift.add.unsized", sized=False),
        get_case("kglance.swift.get", "kglance swift Backend.get (Swift AIO)", "get"),
        get_case(
            "kglance.swift.get.ranges",
            "kglance swift Backend.get in 1 MiB ranged requests, last MiB first (Swift AIO)",
            "get_by_ranges",
        ),
    ]
