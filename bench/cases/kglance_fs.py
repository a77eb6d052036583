"""kglance's filesystem driver through ``Backend``: the same add and get as the glance cases.

The input is read by an async generator that does each blocking read on a worker thread, as
the sidecar feeds request bodies; the add runs the full policy pipeline (md5 + sha512, size
check) that ``Backend.add`` wraps around every driver.
"""

from __future__ import annotations

import importlib.util
import os

from bench import plan
from bench.cases import _kglance_common
from bench.core import Job, fresh_dir


def _options(job: Job) -> dict[str, object]:
    """A datadir in the workdir; ``params["chunk_size"]`` sets the read chunk size."""
    options: dict[str, object] = {
        "filesystem_store_datadir": fresh_dir(os.path.join(job.workdir, "datadir"))
    }
    if "chunk_size" in job.params:
        options["filesystem_store_chunk_size"] = int(job.params["chunk_size"])
    return options


STORE = _kglance_common.Store("file", backend_id="fs", options=_options, get_image_id="bench-get")
add = STORE.add
store_for_get = STORE.store_for_get
get = STORE.get


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
