"""The fake Cinder API of ``tests/fakes/cinder_api`` with a cinder backend pointed at it.

``fake_cinder()`` starts the fake on 127.0.0.1 in the test's event loop, with file-backed
volumes (os-brick's LOCAL connector) or, with ``backing="rbd"``, RBD images in the test
Ceph pool (the RBD connector through librbd). ``cinder_backend()`` builds the driver through
the registry with glance's option names, a 1 MiB volume size unit (so growth is cheap to
test) and short poll intervals.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Mapping
from typing import Any

from kglance.drivers import backends, registry
from kglance.drivers.cinder import CinderDriver
from tests.fakes import cinder_api

MiB = 1024 * 1024


@contextlib.asynccontextmanager
async def fake_cinder(
    *, delay: float = 0.02, backing: str = "file", rbd: cinder_api.RbdBacking | None = None
) -> AsyncIterator[cinder_api.FakeCinder]:
    with tempfile.TemporaryDirectory(prefix="kglance-cinder-") as root:
        fake = cinder_api.FakeCinder(
            os.path.join(root, "volumes"), unit=MiB, delay=delay, backing=backing, rbd=rbd
        )
        await fake.start()
        try:
            yield fake
        finally:
            await fake.stop()


def options(fake: cinder_api.FakeCinder, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "cinder_store_auth_address": fake.auth_url,
        "cinder_store_user_name": cinder_api.USER,
        "cinder_store_password": cinder_api.PASSWORD,
        "cinder_store_project_name": "service",
        "cinder_volume_size_unit": MiB,
        "cinder_state_poll_interval": 0.01,
        "cinder_state_transition_timeout": 20,
        "cinder_lock_path": os.path.join(os.path.dirname(fake.root), "locks"),
    }
    settings.update(overrides)
    return settings


@contextlib.asynccontextmanager
async def cinder_backend(
    fake: cinder_api.FakeCinder, **overrides: Any
) -> AsyncIterator[backends.Backend]:
    driver = registry.Registry().build(
        "cinder", options(fake, **overrides), backend_id="cinder-fast"
    )
    assert isinstance(driver, CinderDriver)
    try:
        yield backends.Backend(driver, backend_id="cinder-fast")
    finally:
        await driver.aclose()


def open_volumes(fake: cinder_api.FakeCinder) -> Mapping[str, str]:
    return {v.id: v.status for v in fake.volumes.values()}
