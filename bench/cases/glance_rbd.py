"""glance_store 5.7.0's rbd store on the test Ceph cluster, driven the way Glance drives it.

Runs in the glance venv and imports nothing of kglance (see ``_glance_common``). The Ceph
bindings are not on PyPI: the child loads Debian's ``rados``/``rbd`` extension modules (what
``scripts/servers/link-ceph-bindings.sh`` links into a venv) by path when the venv does not
already import them. The store gets its defaults (8 MiB chunks) and the same pool and user as
``kglance_rbd`` (see ``ceph_server``). An add of unknown size is glance's ``image_size = 0``.
"""

from __future__ import annotations

import glob
import importlib.machinery
import importlib.util
import sys

from bench import plan
from bench.cases import _glance_common, ceph_server
from bench.core import Job, Timing

GET_IMAGE_ID = "bench-get-glance"
DEBIAN_BINDINGS = "/usr/lib/python3/dist-packages"


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


def _options(job: Job) -> dict[str, object]:
    return ceph_server.options()


STORE = _glance_common.Store(
    "rbd",
    backend_id="ceph",
    options=_options,
    prepare=_load_ceph_bindings,  # before glance_store's rbd driver tries to import them
    id_prefix="bench-",
)
add = STORE.add
get = STORE.get


def store_for_get(job: Job) -> Timing:
    """Store the input once under a fixed id (kept across samples and runs) for the get."""
    multi_backend = STORE.configure(job)
    store = multi_backend.get_store_from_store_identifier(STORE.backend_id)
    url = f"{store.url_prefix}{GET_IMAGE_ID}/snap"
    return STORE.store_once(multi_backend, job, image_id=GET_IMAGE_ID, url=url)


def cases(settings: plan.Settings) -> list[plan.Case]:
    if not ceph_server.available():
        return []
    return _glance_common.server_cases(__name__, store_type="rbd", server="memstore OSD")
