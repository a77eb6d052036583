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

from bench import plan
from bench.cases import _kglance_common, swift_server
from bench.core import Job


def _options(job: Job) -> dict[str, object]:
    return {**swift_server.options(), "swift_store_auth_version": "1"}


STORE = _kglance_common.Store(
    "swift", backend_id="swift", options=_options, get_image_id="bench-get-kglance"
)
add = STORE.add
store_for_get = STORE.store_for_get
get = STORE.get
get_by_ranges = STORE.get_by_ranges


def cases(settings: plan.Settings) -> list[plan.Case]:
    if not swift_server.available():
        return []
    server = "Swift AIO"
    return [
        *_kglance_common.add_cases(__name__, store_type="swift", server=server),
        _kglance_common.get_case(
            __name__,
            "kglance.swift.get",
            f"kglance swift Backend.get ({server})",
            store_type="swift",
        ),
        _kglance_common.get_case(
            __name__,
            "kglance.swift.get.ranges",
            f"kglance swift Backend.get in 1 MiB ranged requests, last MiB first ({server})",
            store_type="swift",
            function="get_by_ranges",
        ),
    ]
