"""glance_store 5.7.0's swift store on the test Swift, driven the way Glance drives it.

Runs in the glance venv (``peers.py`` installs python-swiftclient there); glance_store and
oslo.config are imported by name at call time, so this module stays importable in the
project's venv. The store gets its default options and the same server, account and container
as ``kglance_swift`` (see ``swift_server``).

glance_store 5.7.0 authenticates with Keystone v3 only, and the test Swift has tempauth, so
``SingleTenantStore.get_connection`` and ``get_manager`` are replaced, in the child process
only, by ones that hand glance's code a ``swiftclient.Connection`` authenticated with auth v1.
Everything that moves bytes stays glance's: ``ChunkReader``, the single PUT, the sequential
DLO segment loop for unknown sizes (``image_size = 0``), the GET iterator and the delete.
"""

from __future__ import annotations

import importlib
import uuid
from typing import Any

from bench import plan
from bench.cases import swift_server
from bench.core import Job, Stopwatch, Timing

BACKEND = "swift"
GET_IMAGE_ID = "bench-get-glance"


class _V1Manager:
    """Stands in for glance's connection manager: one v1-authenticated connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._connection: Any = None

    def get_connection(self) -> Any:
        if self._connection is None:
            self._connection = _v1_connection()
        return self._connection

    def __enter__(self) -> _V1Manager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


def _v1_connection(*args: Any, **kwargs: Any) -> Any:
    swiftclient = importlib.import_module("swiftclient")
    auth_url, user, key = swift_server.credentials()
    return swiftclient.Connection(authurl=auth_url, user=user, key=key, auth_version="1")


def _configure(job: Job) -> Any:
    """A configured ``glance_store.multi_backend`` with one ``swift`` backend."""
    cfg = importlib.import_module("oslo_config.cfg")
    multi_backend = importlib.import_module("glance_store.multi_backend")
    store_module = importlib.import_module("glance_store._drivers.swift.store")
    store_module.SingleTenantStore.get_connection = lambda self, location, context=None: (
        _v1_connection()
    )
    store_module.SingleTenantStore.get_manager = lambda self, *a, **kw: _V1Manager()
    conf = cfg.CONF  # multi_backend reads the global CONF in get()
    conf.register_opt(cfg.DictOpt("enabled_backends"))  # Glance registers this, not the library
    conf([], project="kglance-bench", default_config_files=[], default_config_dirs=[])
    conf.set_override("enabled_backends", {BACKEND: "swift"})
    multi_backend.register_store_opts(conf)
    conf.set_override("default_backend", BACKEND, group="glance_store")
    for name, value in swift_server.options().items():
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
    multi_backend = _configure(job)
    size = job.size if job.params["sized"] == "yes" else 0  # glance's "unknown"
    watch, (url, written, checksum, multihash, _meta) = _add(
        multi_backend, str(uuid.uuid4()), size, job
    )
    multi_backend.delete(url, BACKEND)
    return watch.timing(written, md5=checksum, sha512=multihash)


def store_for_get(job: Job) -> Timing:
    """Store the input once under a fixed id (kept across samples and runs) for the get."""
    multi_backend = _configure(job)
    connection = _v1_connection()
    container = swift_server.CONTAINER
    try:
        headers = connection.head_object(container, GET_IMAGE_ID)
    except Exception:  # missing, or the container is
        headers = {}
    store = multi_backend.get_store_from_store_identifier(BACKEND)
    url = store.create_location(GET_IMAGE_ID).get_uri()
    if int(headers.get("content-length", -1)) == job.size:
        return Timing(0.0, 0, 0.0, info={"location": url})
    if headers:
        multi_backend.delete(url, BACKEND)
    watch, (url, *_rest) = _add(multi_backend, GET_IMAGE_ID, job.size, job)
    return watch.timing(job.size, location=url)


def get(job: Job) -> Timing:
    multi_backend = _configure(job)
    nbytes = 0
    with Stopwatch() as watch:
        chunks, _size = multi_backend.get(job.params["location"], BACKEND)
        for chunk in chunks:
            nbytes += len(chunk)
    return watch.timing(nbytes)


def cases(settings: plan.Settings) -> list[plan.Case]:
    if not swift_server.available():
        return []

    def add_case(case_id: str, *, sized: bool) -> plan.PythonCase:
        size = "known size" if sized else "unknown size (image_size 0)"
        return plan.PythonCase(
            id=case_id,
            title=f"glance_store 5.7.0 swift add_with_multihash sha512, {size} (Swift AIO)",
            section="add",
            peer=plan.GLANCE,
            function=f"{__name__}:add",
            params={"sized": "yes" if sized else "no"},
        )

    return [
        add_case("glance.swift.add", sized=True),
        add_case("glance.swift.add.unsized", sized=False),
        plan.PythonCase(
            id="glance.swift.get",
            title="glance_store 5.7.0 swift get (Swift AIO)",
            section="get (warm cache)",
            peer=plan.GLANCE,
            function=f"{__name__}:get",
            setup=f"{__name__}:store_for_get",
            workdir="glance.swift.get",
        ),
    ]
