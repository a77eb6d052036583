"""glance_store 5.7.0's rbd store on the test Ceph cluster, driven the way Glance drives it.

Runs in the glance venv; glance_store and oslo.config are imported by name at call time, and
nothing of kglance is imported, so this module loads in both venvs. The Ceph bindings are not
on PyPI: the child loads Debian's ``rados``/``rbd`` extension modules (what
``scripts/servers/link-ceph-bindings.sh`` links into a venv) by path when the venv does not
already import them. The store gets its defaults (8 MiB chunks), the same pool as
``kglance_rbd``, and ``rbd_store_user = admin``: its default ``None`` would become the user
``client.None``. An add of unknown size is glance's ``image_size = 0``.
"""

from __future__ import annotations

import glob
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import uuid
from typing import Any

from bench import plan
from bench.core import Job, Stopwatch, Timing

BACKEND = "ceph"
GET_IMAGE_ID = "bench-get-glance"
DEBIAN_BINDINGS = "/usr/lib/python3/dist-packages"
ENVIRONMENT = ("CEPH_CONF", "RBD_POOL")  # as scripts/servers/ceph-up.sh prints them


def available() -> bool:
    """Whether a cluster is configured (this module runs in both venvs: stdlib only)."""
    return all(os.environ.get(name) for name in ENVIRONMENT)


def _load_ceph_bindings() -> None:
    for name in ("rados", "rbd"):  # rbd imports rados, so rados first
        if importlib.util.find_spec(name) is not None:
            continue
        paths = glob.glob(f"{DEBIAN_BINDINGS}/{name}.cpython-311-*.so")
        if not paths:
            raise RuntimeError(f"{name} is not installed: run scripts/servers/install-ceph.sh")
        loader = importlib.machinery.ExtensionFileLoader(name, paths[0])
        spec = importlib.util.spec_from_file_location(name, paths[0], loader=loader)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loader.exec_module(module)


def _configure() -> Any:
    """A configured ``glance_store.multi_backend`` with one ``rbd`` backend."""
    _load_ceph_bindings()
    cfg = importlib.import_module("oslo_config.cfg")
    multi_backend = importlib.import_module("glance_store.multi_backend")
    conf = cfg.CONF  # multi_backend reads the global CONF in get()
    conf.register_opt(cfg.DictOpt("enabled_backends"))  # Glance registers this, not the library
    conf([], project="kglance-bench", default_config_files=[], default_config_dirs=[])
    conf.set_override("enabled_backends", {BACKEND: "rbd"})
    multi_backend.register_store_opts(conf)
    conf.set_override("default_backend", BACKEND, group="glance_store")
    settings = {
        "rbd_store_ceph_conf": os.environ["CEPH_CONF"],
        "rbd_store_pool": os.environ["RBD_POOL"],
        "rbd_store_user": os.environ.get("CEPH_USER", "admin"),
    }
    for name, value in settings.items():
        conf.set_override(name, value, group=BACKEND)
    multi_backend.create_multi_stores(conf)
    multi_backend.verify_store()
    return multi_backend


def _add(multi_backend: Any, image_id: str, size: int, job: Job) -> tuple[Stopwatch, Any]:
    conf = importlib.import_module("oslo_config.cfg").CONF
    with open(job.input_file, "rb") as image_file, Stopwatch() as watch:
        result = multi_backend.add_with_multihash(
            conf, image_id, image_file, size, BACKEND, "sha512"
        )
    return watch, tuple(result)


def add(job: Job) -> Timing:
    multi_backend = _configure()
    size = job.size if job.params["sized"] == "yes" else 0  # glance's "unknown"
    watch, (url, written, checksum, multihash, _meta) = _add(
        multi_backend, f"bench-{uuid.uuid4()}", size, job
    )
    multi_backend.delete(url, BACKEND)
    return watch.timing(written, md5=checksum, sha512=multihash)


def store_for_get(job: Job) -> Timing:
    """Store the input once under a fixed id (kept across samples and runs) for the get."""
    multi_backend = _configure()
    exceptions = importlib.import_module("glance_store.exceptions")
    store = multi_backend.get_store_from_store_identifier(BACKEND)
    url = f"{store.url_prefix}{GET_IMAGE_ID}/snap"
    try:
        if multi_backend.get_size_from_uri_and_backend(url, BACKEND) == job.size:
            return Timing(0.0, 0, 0.0, info={"location": url})
        multi_backend.delete(url, BACKEND)
    except exceptions.NotFound:
        pass
    watch, (url, *_rest) = _add(multi_backend, GET_IMAGE_ID, job.size, job)
    return watch.timing(job.size, location=url)


def get(job: Job) -> Timing:
    multi_backend = _configure()
    nbytes = 0
    with Stopwatch() as watch:
        chunks, _size = multi_backend.get(job.params["location"], BACKEND)
        for chunk in chunks:
            nbytes += len(chunk)
    return watch.timing(nbytes)


def cases(settings: plan.Settings) -> list[plan.Case]:
    if not available():
        return []

    def add_case(case_id: str, *, sized: bool) -> plan.PythonCase:
        size = "known size" if sized else "unknown size (image_size 0)"
        return plan.PythonCase(
            id=case_id,
            title=f"glance_store 5.7.0 rbd add_with_multihash sha512, {size} (memstore OSD)",
            section="add",
            peer=plan.GLANCE,
            function=f"{__name__}:add",
            params={"sized": "yes" if sized else "no"},
        )

    return [
        add_case("glance.rbd.add", sized=True),
        add_case("glance.rbd.add.unsized", sized=False),
        plan.PythonCase(
            id="glance.rbd.get",
            title="glance_store 5.7.0 rbd get (memstore OSD)",
            section="get (warm cache)",
            peer=plan.GLANCE,
            function=f"{__name__}:get",
            setup=f"{__name__}:store_for_get",
            workdir="glance.rbd.get",
        ),
    ]
