"""Removing images: glance_store's delete made correct, and the sweep of crashed uploads.

glance_store's delete (``_delete_image``) unprotects and removes the location's snapshot, then
removes the image; an image that still has snapshots goes to the RBD trash and counts as
deleted; clones (``ImageBusy`` on unprotect) are ``InUseByStore``. Its ``HasSnapshot`` branch
could never be reached, and an image open elsewhere lost its snapshot before the remove was
refused. ``remove_image`` here:

1. refuses before changing anything when another client has the image open (``InUse``: it
   has watchers; read-only opens register none, so our own check does not count) or, with
   ``rbd_store_trash_images_with_snapshots`` off, when it has other snapshots
   (``HasSnapshot``). glance removed the snapshot first, so a remove refused afterwards left
   an image whose location no longer worked;
2. unprotects the snapshot (already unprotected is fine) and removes it (already gone is
   fine); clones of it make the unprotect fail with ``ImageBusy``, which is ``InUse``;
3. removes the image; if other snapshots remain it moves the image to the trash as glance
   does, or raises ``HasSnapshot`` when ``rbd_store_trash_images_with_snapshots`` is off;
4. treats a missing image at any step as already deleted (delete is idempotent).

``sweep`` removes the partial images of uploads that died with their process, as recorded in
the pool's upload registry (``uploads``).

Everything here blocks and runs on a worker thread.
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import errno
import logging
import secrets
import time
from collections.abc import Iterator

import rados
import rbd

from kglance.drivers import errors
from kglance.drivers.rbd import failures, uploads

logger = logging.getLogger(__name__)

REMOVAL_LOCK = "kglance.removal"  # librbd's own lock on the header is named rbd_lock
REMOVAL_LOCK_SECONDS = 3600
CONCURRENT_REMOVAL_WAIT = 30.0  # seconds a delete waits for another client's removal


class Outcome(enum.Enum):
    ABSENT = "absent"
    REMOVED = "removed"
    TRASHED = "trashed"


def watchers(ioctx: rados.Ioctx, name: str) -> list[dict[str, object]]:
    """The clients that have image ``name`` open for writing (``ImageNotFound`` if none)."""
    with rbd.Image(ioctx, name, read_only=True) as image:
        return list(image.watchers_list())


def remove_image(
    ioctx: rados.Ioctx, name: str, *, snapshot: str | None, trash_with_snapshots: bool
) -> Outcome:
    """Delete image ``name`` and its snapshot ``snapshot`` with glance_store's semantics."""
    action = f"cannot delete image {name}"
    try:
        with removal_lock(ioctx, name) as locked:
            if not locked:  # another client is removing it: wait for that to finish
                if wait_until_gone(ioctx, name, timeout=CONCURRENT_REMOVAL_WAIT):
                    return Outcome.ABSENT
                raise errors.InUse(f"image {name} is being deleted by another client")
            _refuse_if_open(ioctx, name)
            _release_snapshot(ioctx, name, snapshot, trash_with_snapshots=trash_with_snapshots)
            return _remove(ioctx, name, trash_with_snapshots=trash_with_snapshots)
    except rbd.ImageNotFound:
        return Outcome.ABSENT
    except (rados.Error, rbd.Error) as exc:
        raise failures.translate(exc, action=action) from exc


@contextlib.contextmanager
def removal_lock(ioctx: rados.Ioctx, name: str, *, image_id: str | None = None) -> Iterator[bool]:
    """Hold this process's claim to remove image ``name``; yields False if another holds one.

    Two ``RBD.remove`` calls racing on one image can leave its name in the pool's directory
    with nothing behind it (measured on Pacific: one fails with ``ESTALE``, and the name then
    neither opens nor removes). So every removal first takes an exclusive RADOS lock, under
    its own lock name, on the image's header object; it expires after
    ``REMOVAL_LOCK_SECONDS`` in case its holder dies, and it goes away with the header once
    the image is removed. Raises ``ImageNotFound`` if there is no such image (or, with
    ``image_id``, if the name now belongs to another image).
    """
    with rbd.Image(ioctx, name, read_only=True) as image:
        actual = image.id()
    if image_id is not None and actual != image_id:
        raise rbd.ImageNotFound(f"image {name} is no longer {image_id}", errno=errno.ENOENT)
    header = f"rbd_header.{actual}"
    cookie = secrets.token_hex(8)
    try:
        ioctx.lock_exclusive(
            header, REMOVAL_LOCK, cookie, "kglance: removing the image", REMOVAL_LOCK_SECONDS, 0
        )
    except rados.ObjectBusy:
        yield False
        return
    except rados.ObjectNotFound as exc:
        raise rbd.ImageNotFound(f"image {name} was removed meanwhile", errno=errno.ENOENT) from exc
    try:
        yield True
    finally:
        with contextlib.suppress(rados.Error):  # gone with the header when the image was
            ioctx.unlock(header, REMOVAL_LOCK, cookie)


def _refuse_if_open(ioctx: rados.Ioctx, name: str) -> None:
    found = watchers(ioctx, name)
    if found:
        clients = ", ".join(f"client.{w['id']} at {w['addr']}" for w in found)
        raise errors.InUse(f"image {name} is open by {clients}")


def _release_snapshot(
    ioctx: rados.Ioctx, name: str, snapshot: str | None, *, trash_with_snapshots: bool
) -> None:
    """Unprotect and remove ``snapshot``, after checking that the delete can go through."""
    with rbd.Image(ioctx, name) as image:
        others = [s["name"] for s in image.list_snaps() if s["name"] != snapshot]
        if others and not trash_with_snapshots:
            raise errors.HasSnapshot(
                f"image {name} has snapshots {', '.join(others)}; delete them first, or set "
                "rbd_store_trash_images_with_snapshots to move such images to the trash"
            )
        if snapshot is None:
            return
        try:
            image.unprotect_snap(snapshot)
        except rbd.InvalidArgument:
            pass  # not protected
        except rbd.ImageNotFound:
            return  # no such snapshot: removed by an earlier, interrupted delete
        except rbd.ImageBusy as exc:
            raise errors.InUse(
                f"image {name} cannot be deleted: snapshot {snapshot} has clones "
                "(flatten or delete them first)"
            ) from exc
        with contextlib.suppress(rbd.ImageNotFound):  # gone meanwhile
            image.remove_snap(snapshot)


def _remove(ioctx: rados.Ioctx, name: str, *, trash_with_snapshots: bool) -> Outcome:
    try:
        rbd.RBD().remove(ioctx, name)
    except rbd.ImageHasSnapshots as exc:
        if not trash_with_snapshots:
            raise errors.HasSnapshot(f"image {name} has snapshots (taken meanwhile?)") from exc
        try:
            rbd.RBD().trash_move(ioctx, name)
        except rbd.ImageBusy as busy:
            raise errors.InUse(f"image {name} is in use and cannot be moved to the trash") from busy
        logger.info("image %s still has snapshots: moved it to the RBD trash", name)
        return Outcome.TRASHED
    except rbd.ImageBusy as exc:
        raise errors.InUse(f"image {name} is open by another client") from exc
    return Outcome.REMOVED


def remove_abandoned(ioctx: rados.Ioctx, name: str, *, image_id: str | None = None) -> bool:
    """Remove image ``name`` and all its snapshots (if its id is ``image_id``, when given).

    For images no one else knows about: our own failed uploads and crash leftovers. False
    when the image is gone already, is not the one meant, is being removed by someone else,
    or turned out to be in use.
    """
    try:
        with removal_lock(ioctx, name, image_id=image_id) as locked:
            if not locked:
                return False
            with rbd.Image(ioctx, name) as image:
                for snap in list(image.list_snaps()):
                    if image.is_protected_snap(snap["name"]):
                        image.unprotect_snap(snap["name"])
                    image.remove_snap(snap["name"])
            rbd.RBD().remove(ioctx, name)
    except rbd.ImageNotFound:
        return False
    except rbd.ImageBusy as exc:
        logger.warning("cannot remove image %s: it is in use (%s)", name, exc)
        return False
    return True


def wait_until_gone(ioctx: rados.Ioctx, name: str, *, timeout: float) -> bool:
    """Poll until image ``name`` no longer exists; False if it still does after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            rbd.Image(ioctx, name, read_only=True).close()
        except rbd.ImageNotFound:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def sweep(ioctx: rados.Ioctx, *, snapshot: str, min_age: datetime.timedelta) -> list[str]:
    """Remove the partial images of dead uploads (``uploads``); their names."""
    removed: list[str] = []
    for name, image_id in uploads.entries(ioctx).items():
        try:
            state = uploads.state(ioctx, name, image_id, snapshot=snapshot, min_age=min_age)
            if state is uploads.State.LIVE:
                continue
            if state is uploads.State.ABANDONED and remove_abandoned(
                ioctx, name, image_id=image_id
            ):
                logger.info("removed image %s, left behind by an interrupted upload", name)
                removed.append(name)
            uploads.unregister(ioctx, name)
        except (rados.Error, rbd.Error) as exc:
            logger.warning("cannot check or remove the interrupted upload %s: %s", name, exc)
    return removed
