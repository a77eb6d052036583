"""glance_store 5.7.0's filesystem store, driven the way Glance drives it (multi-backend API).

These functions run in the glance venv (``peers.py``), where kglance is not installed; see
``_glance_common`` for how this module stays importable in both venvs.
"""

from __future__ import annotations

import os

from bench import plan
from bench.cases import _glance_common
from bench.core import Job, Timing, fresh_dir

GET_IMAGE_ID = "bench-get"


def _options(job: Job) -> dict[str, object]:
    """A datadir in the workdir and ``params["chunk_size"]`` as the read chunk size."""
    return {
        "filesystem_store_datadir": fresh_dir(os.path.join(job.workdir, "datadir")),
        "filesystem_store_chunk_size": int(job.params["chunk_size"]),
    }


STORE = _glance_common.Store("file", backend_id="fs", options=_options)
add = STORE.add
get = STORE.get


def store_for_get(job: Job) -> Timing:
    """Store the input once under a fixed id (kept across samples) for the get cases."""
    multi_backend = STORE.configure(job)
    path = os.path.join(job.workdir, "datadir", GET_IMAGE_ID)
    if os.path.exists(path) and os.path.getsize(path) != job.size:
        os.unlink(path)
    if not os.path.exists(path):
        return STORE.add_for_get(multi_backend, GET_IMAGE_ID, job)
    return Timing(seconds=0.0, nbytes=0, cpu_seconds=0.0, info={"location": f"file://{path}"})


def cases(settings: plan.Settings) -> list[plan.Case]:
    chunk = {"chunk_size": str(settings.glance_chunk_size)}
    chunk_note = f"filesystem_store_chunk_size {settings.glance_chunk_size // 1024} KiB"

    def get_case(case_id: str, section: plan.Section, *, cold: bool) -> plan.PythonCase:
        return plan.PythonCase(
            id=case_id,
            title=f"{_glance_common.TITLE} file get ({chunk_note})",
            section=section,
            peer=plan.GLANCE,
            function=f"{__name__}:get",
            setup=f"{__name__}:store_for_get",
            workdir="glance.get",
            cold=cold,
            params=chunk,
        )

    found: list[plan.Case] = [
        plan.PythonCase(
            id="glance.add",
            title=f"{_glance_common.TITLE} file add_with_multihash sha512 ({chunk_note})",
            section="add",
            peer=plan.GLANCE,
            function=f"{__name__}:add",
            params=chunk,
        ),
        get_case("glance.get", "get (warm cache)", cold=False),
    ]
    if settings.cold_cache:
        found.append(get_case("glance.get.cold", "get (cold cache)", cold=True))
    return found
