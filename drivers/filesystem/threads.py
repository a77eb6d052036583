"""Running blocking file calls on threads without leaking what they return.

``await asyncio.to_thread(os.open, ...)`` has a hole: when the awaiting task is cancelled,
the thread still runs to the end and the file descriptor it returns is dropped on the floor.
Calls that *acquire* something go through ``acquire``, which hands the result to a release
function if nobody is left to take it; calls that *release* something go through ``release``,
which finishes even if the caller is cancelled again while waiting.

``BoundedCalls`` is glance's "timeout protection" for calls that can hang on a dead network
filesystem (stat, statvfs, unlink, realpath): a pool of ``filesystem_store_thread_pool_size``
threads, a warning when ``filesystem_store_threadpool_threshold`` percent of it is busy, and
``RemoteUnavailable`` after ``filesystem_store_timeout`` seconds. As in glance, a call that
timed out keeps its thread until the kernel returns; the pool bounds how many can pile up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from kglance.drivers import errors

T = TypeVar("T")

logger = logging.getLogger(__name__)


async def run(call: Callable[[], T]) -> T:
    """``call()`` on a worker thread of the default executor."""
    return await asyncio.get_running_loop().run_in_executor(None, call)


async def acquire(call: Callable[[], T], *, release_with: Callable[[T], object]) -> T:
    """``call()`` on a thread; if we are cancelled first, ``release_with`` gets its result."""
    future = asyncio.get_running_loop().run_in_executor(None, call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(functools.partial(_release_orphan, release_with=release_with))
        raise


def _release_orphan(future: asyncio.Future[T], *, release_with: Callable[[T], object]) -> None:
    if future.cancelled() or future.exception() is not None:
        return
    future.get_loop().run_in_executor(None, release_with, future.result())


async def release(call: Callable[[], object]) -> None:
    """``call()`` on a thread, run to completion even if we are cancelled meanwhile."""
    await asyncio.shield(asyncio.get_running_loop().run_in_executor(None, call))


class BoundedCalls:
    """Short filesystem calls on a bounded pool, with glance's optional timeout."""

    def __init__(
        self, *, timeout: float, pool_size: int, threshold_percent: int, name: str
    ) -> None:
        self._timeout = timeout
        self._pool_size = pool_size
        self._threshold = threshold_percent
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=pool_size, thread_name_prefix=name
        )
        self._busy = 0
        self._busy_lock = threading.Lock()

    async def run(self, call: Callable[[], T], *, what: str) -> T:
        future = asyncio.get_running_loop().run_in_executor(
            self._pool, functools.partial(self._counted, call)
        )
        if not self._timeout:
            return await future
        try:
            return await asyncio.wait_for(future, self._timeout)
        except TimeoutError as exc:
            raise errors.RemoteUnavailable(
                f"{what} did not finish within filesystem_store_timeout ({self._timeout} s)"
            ) from exc

    def _counted(self, call: Callable[[], T]) -> T:
        with self._busy_lock:
            self._busy += 1
            busy = self._busy
        if busy * 100 >= self._pool_size * self._threshold > (busy - 1) * 100:
            logger.warning(
                "%d of %d filesystem worker threads are busy (threshold %d%%): "
                "is the storage responding slowly?",
                busy,
                self._pool_size,
                self._threshold,
            )
        try:
            return call()
        finally:
            with self._busy_lock:
                self._busy -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
