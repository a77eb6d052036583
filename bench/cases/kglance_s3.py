"""kglance's s3 driver through ``Backend`` on the test radosgw, next to ``glance_s3``.

Both stores get the same server, bucket and default options (parts of 10 MiB, 10 threads,
100 MiB single-PUT limit), so the rows differ only by the driver. The server comes from the
environment ``scripts/servers/ceph-up.sh`` prints (see ``s3_server``); without it these cases
are not offered. Cases: known-size and unknown-size adds (the unknown one is where glance_store
holds the whole image in memory; compare the peak RSS column), a whole get, and the image
read in 1 MiB ranged requests from the end backwards (glance_store has no ranged reads; the
sample's ``last_mib_ms`` is the time of the first request, the last MiB).
"""

from __future__ import annotations

from bench import plan
from bench.cases import _kglance_common, s3_server
from bench.core import Job


def _options(job: Job) -> dict[str, object]:
    return s3_server.options()


STORE = _kglance_common.Store(
    "s3", backend_id="s3", options=_options, get_image_id="bench-get-kglance"
)
add = STORE.add
store_for_get = STORE.store_for_get
get = STORE.get
get_by_ranges = STORE.get_by_ranges


def cases(settings: plan.Settings) -> list[plan.Case]:
    if not s3_server.available():
        return []
    server = "radosgw"
    return [
        *_kglance_common.add_cases(__name__, store_type="s3", server=server),
        _kglance_common.get_case(
            __name__, "kglance.s3.get", f"kglance s3 Backend.get ({server})", store_type="s3"
        ),
        _kglance_common.get_case(
            __name__,
            "kglance.s3.get.ranges",
            f"kglance s3 Backend.get in 1 MiB ranged requests, last MiB first ({server})",
            store_type="s3",
            function="get_by_ranges",
        ),
    ]
