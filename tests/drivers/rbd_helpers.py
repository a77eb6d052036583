"""An administrator's view of the test pool, for the rbd tests to inspect and clean up.

The tests check what the driver left in Ceph (images, snapshots, protection, the trash,
allocated extents) through their own librados connection, as the admin user of
``scripts/servers/ceph-up.sh``'s cluster, never through the driver under test. Every test
takes a ``PoolAdmin`` that remembers what the pool held when it started and removes what
was added since (images with their snapshots, trash entries) when it ends, so the tests
share the pool without seeing each other's images.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import rados
import rbd

from tests.conftest import require_env

T = TypeVar("T")
KiB = 1024
MiB = 1024 * KiB


class PoolAdmin:
    """Blocking admin operations on the test pool; call them through ``run``."""

    def __init__(self, conf: str, pool: str) -> None:
        self.conf = conf
        self.pool = pool
        self.cluster = rados.Rados(conffile=conf)
        self.cluster.connect(timeout=30)
        self.ioctx = self.cluster.open_ioctx(pool)
        self.fsid: str = self.cluster.get_fsid()
        self._before = set(self.contents())

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(function, *args, **kwargs)

    # ------------------------------------------------------------- what is there

    def images(self) -> list[str]:
        return sorted(rbd.RBD().list(self.ioctx))

    def trash(self) -> list[dict[str, Any]]:
        return list(rbd.RBD().trash_list(self.ioctx))

    def contents(self) -> list[str]:
        """Every image, hidden ones included, and every trash entry (as ``trash:<name>``)."""
        return self.images() + [f"trash:{entry['name']}" for entry in self.trash()]

    def snapshots(self, name: str) -> dict[str, bool]:
        """The snapshots of image ``name`` and whether each is protected."""
        with rbd.Image(self.ioctx, name, read_only=True) as image:
            return {s["name"]: image.is_protected_snap(s["name"]) for s in image.list_snaps()}

    def size(self, name: str, snapshot: str | None = None) -> int:
        with rbd.Image(self.ioctx, name, snapshot=snapshot, read_only=True) as image:
            return int(image.size())

    def read(self, name: str, snapshot: str | None = None) -> bytes:
        with rbd.Image(self.ioctx, name, snapshot=snapshot, read_only=True) as image:
            return bytes(image.read(0, image.size())) if image.size() else b""

    def order(self, name: str) -> int:
        with rbd.Image(self.ioctx, name, read_only=True) as image:
            return int(image.stat()["order"])

    def features(self, name: str) -> int:
        with rbd.Image(self.ioctx, name, read_only=True) as image:
            return int(image.features())

    def image_id(self, name: str) -> str:
        with rbd.Image(self.ioctx, name, read_only=True) as image:
            return str(image.id())

    def allocated(self, name: str, snapshot: str | None = None) -> list[tuple[int, int]]:
        """``(offset, length)`` of the extents that hold data (``diff_iterate`` from zero)."""
        extents: list[tuple[int, int]] = []

        def seen(offset: int, length: int, exists: bool) -> None:
            if exists:
                extents.append((offset, length))

        with rbd.Image(self.ioctx, name, snapshot=snapshot, read_only=True) as image:
            image.diff_iterate(0, image.size(), None, seen)
        return extents

    # ------------------------------------------------------------- changing things

    def create(self, name: str, data: bytes, *, order: int = 20) -> None:
        rbd.RBD().create(self.ioctx, name, len(data), order=order, old_format=False)
        with rbd.Image(self.ioctx, name) as image:
            if data:
                image.write(data, 0)

    def write(self, name: str, data: bytes, offset: int) -> None:
        with rbd.Image(self.ioctx, name) as image:
            image.write(data, offset)

    def snapshot(self, name: str, snapshot: str, *, protect: bool = False) -> None:
        with rbd.Image(self.ioctx, name) as image:
            image.create_snap(snapshot)
            if protect:
                image.protect_snap(snapshot)

    def clone(self, parent: str, snapshot: str, child: str) -> None:
        rbd.RBD().clone(self.ioctx, parent, snapshot, self.ioctx, child)

    def remove(self, name: str) -> None:
        """Remove an image and all its snapshots (unprotecting them)."""
        with contextlib.suppress(rbd.ImageNotFound):
            with rbd.Image(self.ioctx, name) as image:
                for snap in list(image.list_snaps()):
                    if image.is_protected_snap(snap["name"]):
                        image.unprotect_snap(snap["name"])
                    image.remove_snap(snap["name"])
            rbd.RBD().remove(self.ioctx, name)

    def purge_trash_entry(self, entry: dict[str, Any]) -> None:
        """Remove a trash entry, restoring it first if it still has snapshots."""
        try:
            rbd.RBD().trash_remove(self.ioctx, entry["id"], force=True)
        except rbd.ImageHasSnapshots:
            restored = f"restored-{entry['id']}"
            rbd.RBD().trash_restore(self.ioctx, entry["id"], restored)
            self.remove(restored)

    def clean_up(self) -> None:
        """Remove what was added since this admin was made; children before parents."""
        for _ in range(3):  # a clone blocks its parent until it is gone
            for name in self.images():
                if name not in self._before:
                    with contextlib.suppress(rbd.ImageBusy, rbd.ImageHasSnapshots):
                        self.remove(name)
            for entry in self.trash():
                if f"trash:{entry['name']}" not in self._before:
                    with contextlib.suppress(rbd.ImageBusy):
                        self.purge_trash_entry(entry)

    def blocklist(self, address: str) -> None:
        """Evict a client, as an operator does with ``ceph osd blocklist add``."""
        self._blocklist("add", address)

    def unblocklist(self, address: str) -> None:
        self._blocklist("rm", address)

    def _blocklist(self, operation: str, address: str) -> None:
        command = {"prefix": "osd blocklist", "blocklistop": operation, "addr": address}
        code, _, message = self.cluster.mon_command(json.dumps(command), b"")
        assert code == 0, message

    def close(self) -> None:
        self.ioctx.close()
        self.cluster.shutdown()


@contextlib.asynccontextmanager
async def pool_admin() -> AsyncIterator[PoolAdmin]:
    """A ``PoolAdmin`` on ``$CEPH_CONF``/``$RBD_POOL`` that cleans up when the test ends."""
    conf, pool = require_env("CEPH_CONF"), require_env("RBD_POOL")
    admin = await asyncio.to_thread(PoolAdmin, conf, pool)
    try:
        yield admin
    finally:
        await asyncio.to_thread(admin.clean_up)
        await asyncio.to_thread(admin.close)
