"""glance_store 5.7.0's swift store on the test Swift, driven the way Glance drives it.

Runs in the glance venv (``peers.py`` installs python-swiftclient there) and imports nothing of
kglance (see ``_glance_common``). The store gets its default options and the same server,
account and container as ``kglance_swift`` (see ``swift_server``).

glance_store 5.7.0 authenticates with Keystone v3 only, and the test Swift has tempauth, so
``SingleTenantStore.get_connection`` and ``get_manager`` are replaced, in the child process
only, by ones that hand glance's code a ``swiftclient.Connection`` authenticated with auth v1.
Everything that moves bytes stays glance's: ``ChunkReader``, the single PUT, the sequential
DLO segment loop for unknown sizes (``image_size = 0``), the GET iterator and the delete.
"""

from __future__ import annotations

import importlib
from typing import Any

from bench import plan
from bench.cases import _glance_common, swift_server
from bench.core import Job, Timing

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


def _authenticate_with_v1() -> None:
    store_module = importlib.import_module("glance_store._drivers.swift.store")
    store_module.SingleTenantStore.get_connection = lambda self, location, context=None: (
        _v1_connection()
    )
    store_module.SingleTenantStore.get_manager = lambda self, *a, **kw: _V1Manager()


def _options(job: Job) -> dict[str, object]:
    return swift_server.options()


STORE = _glance_common.Store(
    "swift", backend_id="swift", options=_options, prepare=_authenticate_with_v1
)
add = STORE.add
get = STORE.get


def store_for_get(job: Job) -> Timing:
    """Store the input once under a fixed id (kept across samples and runs) for the get."""
    multi_backend = STORE.configure(job)
    connection = _v1_connection()
    try:
        headers = connection.head_object(swift_server.CONTAINER, GET_IMAGE_ID)
    except Exception:  # missing, or the container is
        headers = {}
    store = multi_backend.get_store_from_store_identifier(STORE.backend_id)
    url = store.create_location(GET_IMAGE_ID).get_uri()
    if int(headers.get("content-length", -1)) == job.size:
        return Timing(0.0, 0, 0.0, info={"location": url})
    if headers:
        multi_backend.delete(url, STORE.backend_id)
    return STORE.add_for_get(multi_backend, GET_IMAGE_ID, job)


def cases(settings: plan.Settings) -> list[plan.Case]:
    if not swift_server.available():
        return []
    return _glance_common.server_cases(__name__, store_type="swift", server="Swift AIO")
