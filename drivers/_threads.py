"""Blocking SDK calls (boto3, swiftclient) run off the event loop on a bounded, private pool.

The object-store SDKs are synchronous. Running them on the loop's default executor would let
one busy backend starve every other user of ``asyncio.to_thread`` (hashing in the pipeline,
other backends), and an unbounded number of concurrent calls would open as many connections.
A ``BlockingRunner`` owns a ``ThreadPoolExecutor`` of ``max_workers`` threads, so the
concurrency of one backend's SDK calls is exactly what its configuration says.

A thread cannot be interrupted: when the awaiting task is cancelled, ``run`` returns at once
but the call keeps going on its thread. Cleanup that must not be abandoned halfway (aborting
a multipart upload, deleting segments) goes through ``run_to_completion``, which finishes the
call even if the caller is cancelled while waiting; ``await_uninterrupted`` does the same for a
whole cleanup coroutine. A call that *acquires* something (an open response body) goes through
``acquire``, which hands the result to a release function if its caller is gone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Generic, ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


class _Once(Generic[T]):
    """A call that lets go of its arguments as soon as it returns.

    The pool's work item keeps the callable until the worker thread loops around, which can
    be after the awaiting task has resumed; a large argument (a multipart part) would then
    outlive its call and briefly double what the caller believes is in memory.
    """

    __slots__ = ("_call",)

    def __init__(self, call: Callable[[], T]) -> None:
        self._call: Callable[[], T] | None = call

    def __call__(self) -> T:
        call, self._call = self._call, None
        if call is None:
            raise RuntimeError("a call wrapped in _Once ran twice")
        return call()


class BlockingRunner:
    """A private thread pool for one backend's blocking calls."""

    def __init__(self, max_workers: int, *, name: str) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.max_workers = max_workers
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix=name
        )

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on a pool thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, _Once(functools.partial(fn, *args, **kwargs)))

    async def run_to_completion(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Like ``run``, but a cancelled caller still waits for the call to finish.

        Cancellation is re-raised once the call is over, so cleanup code in ``finally`` or
        ``except CancelledError`` blocks can rely on it having happened.
        """
        loop = asyncio.get_running_loop()
        return await await_uninterrupted(
            loop.run_in_executor(self._pool, _Once(functools.partial(fn, *args, **kwargs)))
        )

    async def acquire(self, call: Callable[[], T], *, release_with: Callable[[T], object]) -> T:
        """``call()`` on a pool thread; if the caller is cancelled first, the result it would
        have received is passed to ``release_with`` (on a pool thread) instead of leaking."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, _Once(call))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            future.add_done_callback(functools.partial(self._release_orphan, release_with))
            raise

    def _release_orphan(
        self, release_with: Callable[[T], object], future: asyncio.Future[T]
    ) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        with contextlib.suppress(RuntimeError):  # the pool or the loop is shutting down
            future.get_loop().run_in_executor(self._pool, release_with, future.result())

    def close(self) -> None:
        """Stop accepting calls; calls already running finish on their threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)


async def await_uninterrupted(awaitable: Awaitable[T]) -> T:
    """Wait for ``awaitable`` to finish even if the caller is cancelled meanwhile.

    The work is never cancelled; a cancellation that arrived while waiting is re-raised once
    it is over, so cleanup in ``finally`` or ``except`` blocks is never abandoned halfway.
    """
    future = asyncio.ensure_future(awaitable)
    cancelled = False
    while not future.done():
        try:
            await asyncio.wait([future])  # never cancels ``future`` itself
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return future.result()
