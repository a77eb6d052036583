"""librbd's asynchronous I/O, awaited from asyncio, with every request accounted for.

``image.aio_write``/``aio_read`` queue a request in librbd and return at once; librbd calls
back from its own thread when the OSDs answer. Keeping several requests queued is what makes
a transfer stream instead of paying one round trip per chunk (glance_store wrote and read
one 8 MiB chunk at a time and waited for each).

An ``AioImage`` wraps one open ``rbd.Image``:

* ``submit_write``/``submit_read`` (called on a worker thread, since queueing can block on
  librbd's throttles) return an asyncio future that the librbd callback completes through
  ``call_soon_threadsafe``;
* it counts the requests librbd has not finished, so ``drain()`` and ``close()`` wait for
  all of them before the image is closed or removed. That holds even for requests whose
  awaiting task was cancelled: librbd may still be writing into the image (or into the read
  buffer), and closing under it would be a use-after-free in C.

All methods run on worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import rbd

from kglance.drivers import errors
from kglance.drivers.rbd import failures

T = TypeVar("T")


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the awaiting side gave up (cancelled)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _deliver(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    """Hand a result to the event loop from a librbd thread; a closed loop has nobody left."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_settle, future, result, error)


class AioImage:
    """An open image plus the number of aio requests in flight on it.

    Two locks: ``_use`` serializes the calls that use the image (queueing a request, resize,
    snapshot, close), so a clean-up that runs after a cancelled call waits for that call to
    return instead of closing the image under it; ``_count`` guards only the in-flight count
    and is the one librbd's callbacks take, so a call holding ``_use`` that waits for librbd
    (a flush, a resize) can never wait for a callback that waits for it.
    """

    def __init__(self, image: rbd.Image, *, name: str) -> None:
        self.image = image
        self.name = name
        self._use = threading.Lock()
        self._count = threading.Lock()
        self._idle = threading.Condition(self._count)
        self._in_flight = 0
        self._closed = False

    def _start_request(self) -> None:
        if self._closed:
            raise errors.BackendError(f"image {self.name} is already closed")
        with self._count:
            self._in_flight += 1

    def _end_request(self) -> None:
        with self._count:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.notify_all()

    def submit_write(
        self, loop: asyncio.AbstractEventLoop, data: bytes, offset: int
    ) -> asyncio.Future[None]:
        """Queue ``data`` for ``offset``; the future fails with our error if librbd does."""
        future: asyncio.Future[None] = loop.create_future()
        action = f"cannot write {len(data)} bytes at {offset} to image {self.name}"

        def done(completion: Any) -> None:
            code = completion.get_return_value()
            error = failures.from_errno(code, action=action) if code < 0 else None
            self._end_request()
            _deliver(loop, future, None, error)

        with self._use:
            self._start_request()
            try:
                self.image.aio_write(data, offset, done)
            except rbd.Error as exc:
                self._end_request()
                raise failures.translate(exc, action=action) from exc
        return future

    def submit_read(
        self, loop: asyncio.AbstractEventLoop, offset: int, length: int
    ) -> asyncio.Future[bytes]:
        """Queue a read of ``length`` bytes at ``offset``; short reads are errors."""
        future: asyncio.Future[bytes] = loop.create_future()
        action = f"cannot read {length} bytes at {offset} from image {self.name}"

        def done(completion: Any, data: bytes | None) -> None:
            code = completion.get_return_value()
            error: errors.StoreError | None = None
            if code < 0:
                error = failures.from_errno(code, action=action)
            elif data is None or len(data) != length:
                got = 0 if data is None else len(data)
                error = errors.BackendError(f"{action}: librbd returned {got} bytes")
            self._end_request()
            _deliver(loop, future, data, error)

        with self._use:
            self._start_request()
            try:
                self.image.aio_read(offset, length, done)
            except rbd.Error as exc:
                self._end_request()
                raise failures.translate(exc, action=action) from exc
        return future

    def call(self, function: Callable[[rbd.Image], T]) -> T:
        """``function(image)``, serialized with every other use of the image."""
        with self._use:
            if self._closed:
                raise errors.BackendError(f"image {self.name} is already closed")
            return function(self.image)

    def drain(self) -> None:
        """Wait until librbd has finished every request queued on this image."""
        with self._count:
            while self._in_flight:
                self._idle.wait()

    def close(self) -> None:
        """Wait for the requests in flight, then close the image; safe to call again."""
        with self._use:
            self.drain()
            if self._closed:
                return
            self._closed = True
            self.image.close()
