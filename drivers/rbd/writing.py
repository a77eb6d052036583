"""Writing one image: create, pipelined aio writes, snapshot, protect.

glance_store wrote an image one synchronous 8 MiB ``image.write`` at a time, waiting for
each. Here an upload:

1. creates the image under its final name with the configured object order and features,
   of the declared size, or empty when the size is unknown. ``RBD.create`` fails atomically
   with ``ImageExists`` if the name is taken, so of two uploads of one id exactly one gets
   to write and the other gets ``AlreadyExists`` at once, before it streams anything. If the
   name is held by the partial image of an upload that died (``uploads``), that image is
   removed and the create retried once. The upload is recorded in the pool's upload registry
   until it is complete;
2. writes the stream with ``aio_write``, keeping up to ``rbd_store_writes_in_flight``
   requests queued in librbd (the chunks stay referenced until librbd has finished with
   them, so memory is bounded by that many chunks). With thin provisioning, all-zero chunks
   (4 MiB, the driver's write chunk; glance's was its 8 MiB chunk) are not written at all:
   the offset advances and the image reads zeros there;
3. of unknown size, grows the image as glance does: the step starts at one chunk
   (``rbd_store_chunk_size``) and doubles before each resize up to 8 GiB, so a 57 MiB
   image with 8 MiB chunks is resized to 16, 48 and 112 MiB and trimmed to 57 MiB at the end;
4. once the stream has ended cleanly: flushes, trims, creates the snapshot ``snap`` and
   protects it (Nova and Cinder clone from it). Locations name that snapshot, so until this
   point no reader can open the image through one (only the old one-component locations
   read the head, and nothing hands those out for new images).

Any failure (the stream raising, which is how size and checksum errors arrive, librbd
failing, ``NoSpace``) or cancellation, even one that lands after the snapshot was protected
but before the caller learned of it, waits for the requests in flight, then removes the
snapshot and the image, after checking by librbd image id that the name is still ours.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import functools
import logging
import threading
from collections.abc import AsyncIterator

import rados
import rbd

from kglance.drivers import _threads, errors
from kglance.drivers.rbd import aio, failures, removal, uploads

logger = logging.getLogger(__name__)

SNAPSHOT = "snap"
MAX_GROWTH = 8 * 1024**3  # glance's cap on one resize step of an image of unknown size
RECLAIM_WAIT = 10.0  # seconds to wait for a concurrent removal of a dead upload's image


class ImageWriter:
    """The blocking side of one upload; every method runs on a worker thread.

    A lock orders the methods, so ``discard`` issued after a cancelled ``create`` or
    ``seal`` waits for that call to return, then undoes whatever it did.
    """

    def __init__(
        self,
        ioctx: rados.Ioctx,
        image_name: str,
        *,
        order: int,
        features: int | None,
        abandoned_after: datetime.timedelta,
    ) -> None:
        self._ioctx = ioctx
        self.image_name = image_name
        self._order = order
        self._features = features
        self._abandoned_after = abandoned_after
        self._lock = threading.Lock()
        self.image: aio.AioImage | None = None
        self.image_id: str | None = None
        self._created = False
        self._registered = False
        self._discarded = False

    def create(self, size: int) -> aio.AioImage:
        """Create and open the image; ``AlreadyExists`` if the name is taken."""
        with self._lock:
            if self._discarded:
                raise errors.BackendError(f"the upload of {self.image_name} was abandoned")
            action = f"cannot create image {self.image_name}"
            try:
                self._create(size)
                self._created = True
                image = rbd.Image(self._ioctx, self.image_name)
                self.image = aio.AioImage(image, name=self.image_name)
                self.image_id = image.id()
                uploads.register(self._ioctx, self.image_name, self.image_id)
                self._registered = True
            except (rados.Error, rbd.Error) as exc:
                raise failures.translate(exc, action=action) from exc
            return self.image

    def _create(self, size: int) -> None:
        for attempt in (1, 2):
            try:
                rbd.RBD().create(
                    self._ioctx,
                    self.image_name,
                    size,
                    order=self._order,
                    old_format=False,
                    features=self._features,
                )
                return
            except rbd.ImageExists as exc:
                if attempt == 1 and self._reclaim():
                    continue
                raise errors.AlreadyExists(f"image {self.image_name} already exists") from exc

    def _reclaim(self) -> bool:
        """Remove the partial image a dead upload left under our name; False if there is none."""
        recorded = uploads.recorded_id(self._ioctx, self.image_name)
        if recorded is None:
            return False
        state = uploads.state(
            self._ioctx,
            self.image_name,
            recorded,
            snapshot=SNAPSHOT,
            min_age=self._abandoned_after,
        )
        if state is not uploads.State.ABANDONED:
            return False
        if removal.remove_abandoned(self._ioctx, self.image_name, image_id=recorded):
            logger.info("removed image %s, left behind by an interrupted upload", self.image_name)
            uploads.unregister(self._ioctx, self.image_name)
        else:  # someone else (a sweep) is removing it: give them time to finish
            removal.wait_until_gone(self._ioctx, self.image_name, timeout=RECLAIM_WAIT)
        return True

    def seal(self, size: int) -> None:
        """Flush, trim to ``size``, create and protect the snapshot: the image is complete."""
        with self._lock:
            if self.image is None or self._discarded:
                raise errors.BackendError(f"the upload of {self.image_name} has no open image")
            self.image.drain()
            self.image.call(functools.partial(_seal, size=size))
            try:
                uploads.unregister(self._ioctx, self.image_name)
                self._registered = False
            except rados.Error as exc:  # the sweep drops the entry of a finished upload
                logger.warning("cannot unregister the upload of %s: %s", self.image_name, exc)

    def finish(self) -> None:
        """Close the image after the upload has succeeded."""
        with self._lock:
            if self.image is not None:
                self.image.close()

    def discard(self) -> None:
        """Remove every trace of this upload; safe at any point, and more than once."""
        with self._lock:
            self._discarded = True
            if self.image is not None:
                try:
                    self.image.close()  # waits for the writes librbd still has in flight
                except (rados.Error, rbd.Error) as exc:
                    logger.warning("closing image %s failed: %s", self.image_name, exc)
            try:
                if self._created:
                    self._created = False
                    removal.remove_abandoned(self._ioctx, self.image_name, image_id=self.image_id)
                if self._registered:
                    self._registered = False
                    uploads.unregister(self._ioctx, self.image_name)
            except (rados.Error, rbd.Error, errors.StoreError) as exc:
                logger.warning("cannot clean up the failed upload of %s: %s", self.image_name, exc)


def _seal(image: rbd.Image, *, size: int) -> None:
    try:
        image.flush()
        if image.size() != size:
            image.resize(size)
        image.create_snap(SNAPSHOT)
        image.protect_snap(SNAPSHOT)
    except (rados.Error, rbd.Error) as exc:
        raise failures.translate(exc, action="cannot snapshot the new image") from exc


def _resize(image: rbd.Image, *, size: int) -> None:
    try:
        image.resize(size)
    except (rados.Error, rbd.Error) as exc:
        raise failures.translate(exc, action=f"cannot grow the new image to {size} bytes") from exc


class Uploader:
    """Feeds a stream into an ``AioImage`` with a bounded number of requests in flight."""

    def __init__(
        self,
        image: aio.AioImage,
        *,
        runner: _threads.BlockingRunner,
        in_flight: int,
        thin: bool,
        zero_chunk: bytes,
        growth_start: int,
    ) -> None:
        self._image = image
        self._runner = runner
        self._limit = in_flight
        self._thin = thin
        self._zero_chunk = zero_chunk
        self._growth = growth_start

    def _is_zero(self, chunk: bytes) -> bool:
        if len(chunk) == len(self._zero_chunk):
            return chunk == self._zero_chunk  # memcmp
        return chunk.count(0) == len(chunk)

    async def write(self, data: AsyncIterator[bytes], *, size: int | None) -> int:
        """Write all of ``data``; the number of bytes received (holes included)."""
        loop = asyncio.get_running_loop()
        pending: collections.deque[tuple[asyncio.Future[None], bytes]] = collections.deque()
        offset = 0
        capacity = 0 if size is None else size
        try:
            async for chunk in data:
                end = offset + len(chunk)
                if end > capacity:
                    if size is not None:
                        raise errors.SizeMismatch(
                            f"size exceeds the declared {size} bytes (received at least {end})",
                            expected=size,
                            received=end,
                        )
                    capacity = await self._grow(capacity, needed=len(chunk))
                if not (self._thin and self._is_zero(chunk)):
                    future = await self._runner.run(self._image.submit_write, loop, chunk, offset)
                    pending.append((future, chunk))  # librbd may still read the chunk
                    if len(pending) >= self._limit:
                        await pending.popleft()[0]
                offset = end
            while pending:
                await pending.popleft()[0]
        finally:
            for future, _ in pending:
                future.cancel()  # nobody will await them; librbd's callback then does nothing
        return offset

    async def _grow(self, capacity: int, *, needed: int) -> int:
        self._growth = min(self._growth * 2, MAX_GROWTH)
        capacity += max(needed, self._growth)
        await self._runner.run(self._image.call, functools.partial(_resize, size=capacity))
        return capacity
