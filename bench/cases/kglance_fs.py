"""kglance's filesystem driver through ``Backend``: the same add and get as the glance cases.

The input is read by an async generator that does each blocking read on a worker thread, as
the sidecar feeds request bodies; the add runs the full policy pipeline (md5 + sha512, size
check) that ``Backend.add`` wraps around every driver.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import uuid
from collections.abc import AsyncIterator

from bench import plan
from bench.core import Job, Stopwatch, Timing, fresh_dir
from kglance.drivers import backends, errors, locations, registry

BACKEND = "fs"
GET_IMAGE_ID = "bench-get"


def backend_for(job: Job) -> backends.Backend:
    """A ``file`` backend in the workdir; ``params["chunk_size"]`` sets its read chunk size."""
    options: dict[str, object] = {
        "filesystem_store_datadir": fresh_dir(os.path.join(job.workdir, "datadir"))
    }
    if "chunk_size" in job.params:
        options["filesystem_store_chunk_size"] = int(job.params["chunk_size"])
    driver = registry.Registry().build("file", options, backend_id=BACKEND)
    return backends.Backend(driver, backend_id=BACKEND)


async def read_file(path: str, block_size: int) -> AsyncIterator[bytes]:
    """The file in ``block_size`` pieces, each read on a worker thread."""
    f = await asyncio.to_thread(open, path, "rb", buffering=0)
    try:
        while block := await asyncio.to_thread(f.read, block_size):
            yield block
    finally:
        f.close()


async def _add(backend: backends.Backend, image_id: str, job: Job) -> Timing:
    with Stopwatch() as watch:
        result = await backend.add(
            image_id, read_file(job.input_file, job.block_size), size=job.size, hash_algo="sha512"
        )
    return watch.timing(
        result.size,
        md5=result.checksum,
        sha512=result.os_hash_value,
        location=result.location.uri(),
    )


async def add_and_delete(job: Job) -> Timing:
    backend = backend_for(job)
    try:
        timing = await _add(backend, str(uuid.uuid4()), job)
        await backend.delete(locations.parse(timing.info["location"]))
        return timing
    finally:
        await backend.driver.aclose()


def add(job: Job) -> Timing:
    return asyncio.run(add_and_delete(job))


async def _stored_size(backend: backends.Backend, image_id: str) -> int | None:
    try:
        return await backend.size(await backend.locate(image_id))
    except errors.NotFound:
        return None


async def _store_for_get(job: Job) -> Timing:
    backend = backend_for(job)
    try:
        stored = await _stored_size(backend, GET_IMAGE_ID)
        if stored == job.size:
            location = await backend.locate(GET_IMAGE_ID)
            return Timing(seconds=0.0, nbytes=0, cpu_seconds=0.0, info={"location": location.uri()})
        if stored is not None:
            await backend.delete(await backend.locate(GET_IMAGE_ID))
        return await _add(backend, GET_IMAGE_ID, job)
    finally:
        await backend.driver.aclose()


def store_for_get(job: Job) -> Timing:
    """Store the input once under a fixed id (kept across samples) for the get cases."""
    return asyncio.run(_store_for_get(job))


async def get_all(job: Job) -> Timing:
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
    return asyncio.run(get_all(job))


def cases(settings: plan.Settings) -> list[plan.Case]:
    if importlib.util.find_spec("kglance.drivers.filesystem") is None:
        return []  # the driver is not written yet
    reads = f"{settings.block_size // 1024} KiB reads"

    def get_case(case_id: str, section: plan.Section, *, cold: bool) -> plan.PythonCase:
        return plan.PythonCase(
            id=case_id,
            title="kglance file Backend.get",
            section=section,
            peer=plan.KGLANCE,
            function=f"{__name__}:get",
            setup=f"{__name__}:store_for_get",
            workdir="kglance.get",
            cold=cold,
        )

    found: list[plan.Case] = [
        plan.PythonCase(
            id="kglance.add",
            title=f"kglance file Backend.add md5 + sha512 (async {reads})",
            section="add",
            peer=plan.KGLANCE,
            function=f"{__name__}:add",
        ),
        get_case("kglance.get", "get (warm cache)", cold=False),
    ]
    if settings.cold_cache:
        found.append(get_case("kglance.get.cold", "get (cold cache)", cold=True))
    return found
