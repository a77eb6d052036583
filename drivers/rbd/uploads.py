"""The pool's record of uploads in progress, so the ones a crash interrupted can be removed.

An upload writes its image under the final name (``RBD.create`` is the one atomic
"create if absent" librbd has; ``RBD.rename`` is not safe when two renames race, measured on
Pacific: all of them report success and the names end up crossed). Readers cannot see it
half-written through its location, which names the snapshot ``snap`` that only exists once
the data is complete. But a process that dies mid-upload leaves a partial image that looks
like any other, and its name stays taken.

So each upload records itself, from just after the create until the snapshot is protected,
as a key of the omap of one RADOS object in the pool (``kglance_uploads``): the image name,
with the librbd image id as the value. An entry whose image

* still has that id (the name was not reused since),
* has no watchers (a live writer keeps its image open, which registers a watch; a dead
  one's watch expires within ``osd_client_watch_timeout``, 30 s),
* is at least ``ABANDONED_AFTER`` old (covers the instant between create and open), and
* has no protected ``snap`` (that upload finished; only its entry removal was lost)

belongs to a dead upload, and its image can be removed. Nothing else is ever removed on the
strength of this record: images that kglance did not create are not in it.

Everything here blocks and runs on a worker thread.
"""

from __future__ import annotations

import datetime
import enum

import rados
import rbd

REGISTRY = "kglance_uploads"
ABANDONED_AFTER = datetime.timedelta(minutes=2)
_PAGE = 1000


def register(ioctx: rados.Ioctx, name: str, image_id: str) -> None:
    with rados.WriteOpCtx() as op:
        ioctx.set_omap(op, (name,), (image_id.encode(),))
        ioctx.operate_write_op(op, REGISTRY)


def unregister(ioctx: rados.Ioctx, name: str) -> None:
    with rados.WriteOpCtx() as op:
        ioctx.remove_omap_keys(op, (name,))
        ioctx.operate_write_op(op, REGISTRY)


def recorded_id(ioctx: rados.Ioctx, name: str) -> str | None:
    """The image id an upload in progress recorded for ``name``, if any."""
    with rados.ReadOpCtx() as op:
        entries, _ = ioctx.get_omap_vals_by_keys(op, (name,))
        try:
            ioctx.operate_read_op(op, REGISTRY)
        except rados.ObjectNotFound:
            return None
        found = dict(entries)
    value = found.get(name)
    return None if value is None else value.decode()


def entries(ioctx: rados.Ioctx) -> dict[str, str]:
    """Every recorded upload: image name -> image id."""
    found: dict[str, str] = {}
    start = ""
    while True:
        with rados.ReadOpCtx() as op:
            page, _ = ioctx.get_omap_vals(op, start, "", _PAGE)
            try:
                ioctx.operate_read_op(op, REGISTRY)
            except rados.ObjectNotFound:
                return found
            batch = [(key, value.decode()) for key, value in page]
        found.update(batch)
        if len(batch) < _PAGE:
            return found
        start = batch[-1][0]


class State(enum.Enum):
    LIVE = "live"  # a writer may still be at work: leave it
    FINISHED = "finished"  # the image is complete, gone or replaced: only the entry is stale
    ABANDONED = "abandoned"  # a dead upload's partial image: remove it


def state(
    ioctx: rados.Ioctx,
    name: str,
    image_id: str,
    *,
    snapshot: str,
    min_age: datetime.timedelta = ABANDONED_AFTER,
) -> State:
    """What the recorded upload of ``name`` (image ``image_id``) is now (see the module doc)."""
    try:
        with rbd.Image(ioctx, name, read_only=True) as image:
            if image.id() != image_id:
                return State.FINISHED
            snaps = {s["name"] for s in image.list_snaps()}
            if snapshot in snaps and image.is_protected_snap(snapshot):
                return State.FINISHED
            now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
            if now - image.create_timestamp() < min_age:  # naive UTC
                return State.LIVE
            if list(image.watchers_list()):
                return State.LIVE
            return State.ABANDONED
    except rbd.ImageNotFound:
        return State.FINISHED
