"""What every kglance case does the same way, whatever the driver behind ``Backend``.

The kglance cases differ only by the store type, its options and the server they talk to; the
reader, the timed add and get loops and the stored-once image for the gets are one thing, so a
change to how kglance is measured lands in every row at once. Runs in the project's venv only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping

from bench import plan
from bench.core import Job, MiB, Stopwatch, Timing
from kglance.drivers import backends, base, errors, locations, registry


async def read_file(path: str, block_size: int) -> AsyncIterator[bytes]:
    """The file in ``block_size`` pieces, each read on a worker thread (as the sidecar reads)."""
    f = await asyncio.to_thread(open, path, "rb", buffering=0)
    try:
        while block := await asyncio.to_thread(f.read, block_size):
            yield block
    finally:
        f.close()


@dataclasses.dataclass(frozen=True, slots=True)
class Store:
    """One kglance backend under test; its bound methods are the case functions.

    ``options(job)`` gives the driver's options (glance_store's names); ``connect_first``
    connects (``driver.check()``) before the stopwatch starts, as glance's configure does.
    """

    store_type: str
    _: dataclasses.KW_ONLY
    backend_id: str
    options: Callable[[Job], Mapping[str, object]]
    get_image_id: str  # the image the get cases read, kept across samples
    id_prefix: str = ""  # before the random image id of an add
    connect_first: bool = False

    def backend(self, job: Job) -> backends.Backend:
        driver = registry.Registry().build(
            self.store_type, self.options(job), backend_id=self.backend_id
        )
        return backends.Backend(driver, backend_id=self.backend_id)

    async def timed_add(
        self, backend: backends.Backend, image_id: str, job: Job, *, sized: bool
    ) -> Timing:
        if self.connect_first:
            await backend.driver.check()
        with Stopwatch() as watch:
            result = await backend.add(
                image_id,
                read_file(job.input_file, job.block_size),
                size=job.size if sized else None,
                hash_algo="sha512",
            )
        return watch.timing(
            result.size,
            md5=result.checksum,
            sha512=result.os_hash_value,
            location=result.location.uri(),
        )

    async def add_and_delete(self, job: Job) -> Timing:
        """Add under a fresh id (known size unless ``params["sized"]`` is ``no``), then delete."""
        backend = self.backend(job)
        try:
            sized = job.params.get("sized", "yes") == "yes"
            image_id = f"{self.id_prefix}{uuid.uuid4()}"
            timing = await self.timed_add(backend, image_id, job, sized=sized)
            await backend.delete(locations.parse(timing.info["location"]))
            return timing
        finally:
            await backend.driver.aclose()

    def add(self, job: Job) -> Timing:
        return asyncio.run(self.add_and_delete(job))

    async def _store_for_get(self, job: Job) -> Timing:
        backend = self.backend(job)
        try:
            try:
                location = await backend.locate(self.get_image_id)
                if await backend.size(location) == job.size:
                    return Timing(0.0, 0, 0.0, info={"location": location.uri()})
                await backend.delete(location)
            except errors.NotFound:
                pass
            return await self.timed_add(backend, self.get_image_id, job, sized=True)
        finally:
            await backend.driver.aclose()

    def store_for_get(self, job: Job) -> Timing:
        """Store the input once under a fixed id (kept across samples and runs) for the gets."""
        return asyncio.run(self._store_for_get(job))

    async def _get(self, job: Job) -> Timing:
        backend = self.backend(job)
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

    def get(self, job: Job) -> Timing:
        """The whole stored image, every chunk consumed."""
        return asyncio.run(self._get(job))

    async def _get_by_ranges(self, job: Job) -> Timing:
        backend = self.backend(job)
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

    def get_by_ranges(self, job: Job) -> Timing:
        """The image in 1 MiB ranged requests from the end backwards; the first is the last MiB."""
        return asyncio.run(self._get_by_ranges(job))


def add_cases(module: str, *, store_type: str, server: str) -> list[plan.Case]:
    """``kglance.<type>.add`` (known size) and ``.add.unsized``, run by ``module:add``."""

    def add_case(case_id: str, *, sized: bool) -> plan.PythonCase:
        size = "known size" if sized else "unknown size"
        return plan.PythonCase(
            id=case_id,
            title=f"kglance {store_type} Backend.add md5 + sha512, {size} ({server})",
            section="add",
            peer=plan.KGLANCE,
            function=f"{module}:add",
            params={"sized": "yes" if sized else "no"},
        )

    return [
        add_case(f"kglance.{store_type}.add", sized=True),
        add_case(f"kglance.{store_type}.add.unsized", sized=False),
    ]


def get_case(
    module: str, case_id: str, title: str, *, store_type: str, function: str = "get", **params: str
) -> plan.PythonCase:
    """A warm get of the image ``module:store_for_get`` keeps in ``kglance.<type>.get``."""
    return plan.PythonCase(
        id=case_id,
        title=title,
        section="get (warm cache)",
        peer=plan.KGLANCE,
        function=f"{module}:{function}",
        setup=f"{module}:store_for_get",
        workdir=f"kglance.{store_type}.get",
        params=params,
    )
