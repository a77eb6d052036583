"""glance_store 5.7.0's filesystem store, driven the way Glance drives it (multi-backend API).

These functions run in the glance venv (``peers.py``), where kglance is not installed; glance_store
and oslo.config are imported by name at call time, so this module stays importable (and
type-checked) in the project's venv, where the runner reads ``cases()``.
"""

from __future__ import annotations

import importlib
import os
import uuid
from typing import Any

from bench import plan
from bench.core import Job, Stopwatch, Timing, fresh_dir

BACKEND = "fs"
GET_IMAGE_ID = "bench-get"


def _configure(job: Job) -> Any:
    """A configured ``glance_store.multi_backend`` with one ``file`` backend in the workdir."""
    cfg = importlib.import_module("oslo_config.cfg")
    multi_backend = importlib.import_module("glance_store.multi_backend")
    # multi_backend reads the global CONF in get/get_store_from_store_identifier, so use it
    conf = cfg.CONF
    conf.register_opt(cfg.DictOpt("enabled_backends"))  # Glance registers this, not the library
    conf([], project="kglance-bench", default_config_files=[], default_config_dirs=[])
    conf.set_override("enabled_backends", {BACKEND: "file"})
    multi_backend.register_store_opts(conf)
    conf.set_override("default_backend", BACKEND, group="glance_store")
    datadir = fresh_dir(os.path.join(job.workdir, "datadir"))
    conf.set_override("filesystem_store_datadir", datadir, group=BACKEND)
    chunk_size = int(job.params["chunk_size"])
    conf.set_override("filesystem_store_chunk_size", chunk_size, group=BACKEND)
    multi_backend.create_multi_stores(conf)
    multi_backend.verify_store()
    return multi_backend


def _add(multi_backend: Any, image_id: str, job: Job) -> tuple[Stopwatch, tuple[Any, ...]]:
    conf = importlib.import_module("oslo_config.cfg").CONF
    with open(job.input_file, "rb") as image_file, Stopwatch() as watch:
        result = multi_backend.add_with_multihash(
            conf, image_id, image_file, job.size, BACKEND, "sha512"
        )
    return watch, tuple(result)


def add(job: Job) -> Timing:
    multi_backend = _configure(job)
    watch, (url, written, checksum, multihash, _meta) = _add(multi_backend, str(uuid.uuid4()), job)
    multi_backend.delete(url, BACKEND)
    return watch.timing(written, md5=checksum, sha512=multihash)


def store_for_get(job: Job) -> Timing:
    """Store the input once under a fixed id (kept across samples) for the get cases."""
    multi_backend = _configure(job)
    path = os.path.join(job.workdir, "datadir", GET_IMAGE_ID)
    if os.path.exists(path) and os.path.getsize(path) != job.size:
        os.unlink(path)
    if not os.path.exists(path):
        watch, (url, *_rest) = _add(multi_backend, GET_IMAGE_ID, job)
        return watch.timing(job.size, location=url)
    return Timing(seconds=0.0, nbytes=0, cpu_seconds=0.0, info={"location": f"file://{path}"})


def get(job: Job) -> Timing:
    multi_backend = _configure(job)
    nbytes = 0
    with Stopwatch() as watch:
        chunks, _size = multi_backend.get(job.params["location"], BACKEND)
        for chunk in chunks:
            nbytes += len(chunk)
    return watch.timing(nbytes)


def cases(settings: plan.Settings) -> list[plan.Case]:
    chunk = {"chunk_size": str(settings.glance_chunk_size)}
    chunk_note = f"filesystem_store_chunk_size {settings.glance_chunk_size // 1024} KiB"

    def get_case(case_id: str, section: plan.Section, *, cold: bool) -> plan.PythonCase:
        return plan.PythonCase(
            id=case_id,
            title=f"glance_store 5.7.0 file get ({chunk_note})",
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
            title=f"glance_store 5.7.0 file add_with_multihash sha512 ({chunk_note})",
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
