"""kglance's rbd driver through ``Backend`` on the test Ceph cluster, next to ``glance_rbd``.

Both stores get the same cluster, pool, user and glance's defaults (8 MiB chunks, so 8 MiB
objects; no thin provisioning: the input is random anyway), so the rows differ only by the
driver. The cluster comes from the environment ``scripts/servers/ceph-up.sh`` prints
(``CEPH_CONF``, ``RBD_POOL``; see ``ceph_server``); without it these cases are not offered.
Cases: known-size and unknown-size adds (glance grows an image of unknown size with doubling
resizes; so does kglance), a whole get, and the whole image as four concurrent ranged reads
(offset and length, as a parallel or resumed download asks for them; glance_store's rbd store
serves no ranges).

The memstore OSD keeps every byte in RAM: a run holds the two get images (kept across runs)
plus the image being added, so ``--size 1G`` needs ``CEPH_MEMSTORE_BYTES`` of at least 4 GiB.
"""

from __future__ import annotations

import asyncio

from bench import plan
from bench.cases import _kglance_common, ceph_server
from bench.core import Job, Stopwatch, Timing
from kglance.drivers import backends, base, locations

CHUNK_MIB = 8  # glance_store's default rbd_store_chunk_size


def _options(job: Job) -> dict[str, object]:
    return {**ceph_server.options(), "rbd_store_chunk_size": CHUNK_MIB}


STORE = _kglance_common.Store(
    "rbd",
    backend_id="ceph",
    options=_options,
    get_image_id="bench-get-kglance",
    id_prefix="bench-",
    connect_first=True,  # connect outside the timed section, as glance's configure
)
add = STORE.add
store_for_get = STORE.store_for_get


async def _read(
    backend: backends.Backend, location: locations.Location, part: base.ByteRange
) -> int:
    nbytes = 0
    async with backend.get(location, byte_range=part) as blob:
        async for chunk in blob:
            nbytes += len(chunk)
    return nbytes


async def _get(job: Job) -> Timing:
    backend = STORE.backend(job)
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
    """The whole image as ``params["parts"]`` concurrent ranged reads (default one)."""
    return asyncio.run(_get(job))


def cases(settings: plan.Settings) -> list[plan.Case]:
    if not ceph_server.available():
        return []
    server = "memstore OSD"
    return [
        *_kglance_common.add_cases(__name__, store_type="rbd", server=server),
        _kglance_common.get_case(
            __name__,
            "kglance.rbd.get",
            f"kglance rbd Backend.get from the snapshot ({server})",
            store_type="rbd",
        ),
        _kglance_common.get_case(
            __name__,
            "kglance.rbd.get.ranges",
            f"kglance rbd Backend.get as 4 concurrent ranged reads ({server})",
            store_type="rbd",
            parts="4",
        ),
    ]
