"""Running kglance's async backends from glance_store's synchronous API.

Glance calls ``store.add``/``get``/``delete`` from plain threads (and sometimes from a thread
that already runs an event loop, e.g. an aiohttp handler calling through ``to_thread``, or
directly). Each compatibility store therefore owns a private event loop running in a daemon
thread of its own (``LoopRunner``): the kglance driver lives on that loop for its whole life,
which matters because drivers keep loop-bound state (the http driver's aiohttp session cannot
move between loops). ``asyncio.run`` per call was measured and rejected: it costs a new loop,
a new session and a new connection pool for every call, and it cannot be called from a
thread whose loop is running.

Bytes cross between the caller's thread and the store's loop through a ``Channel``: a small
bounded FIFO with a blocking end for the thread and an awaiting end for the loop, so a
slow consumer holds the producer back (memory stays at ``maxsize`` chunks) and either end can
close it to make the other stop.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class LoopRunner:
    """A private event loop on a daemon thread, started on first use."""

    def __init__(self, *, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the event loop of {self._name} is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; the caller waits on the returned future."""
        loop = self.loop
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(f"{self._name}: a store call cannot be made from its own loop")
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and block the calling thread until it is done."""
        return self.submit(coro).result()

    def close(self, final: Coroutine[Any, Any, object] | None = None) -> None:
        """Cancel what still runs, run ``final`` (the driver's ``aclose``), stop the thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._closed = True
        if loop is None or thread is None or threading.current_thread() is thread:
            if final is not None:
                final.close()
            if loop is not None:
                loop.call_soon_threadsafe(loop.stop)
            return
        with contextlib.suppress(Exception):  # closing must not fail (often a finalizer)
            asyncio.run_coroutine_threadsafe(_drain(final), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        if not thread.is_alive():
            loop.close()


async def _drain(final: Coroutine[Any, Any, object] | None) -> None:
    """Cancel every other task of the loop (open image streams), then run ``final``."""
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if final is not None:
        await final
    await asyncio.get_running_loop().shutdown_asyncgens()


class ChannelClosed(Exception):
    """The other end closed the channel."""


class Channel(Generic[T]):
    """A bounded FIFO between one thread and one event loop.

    Either end may be the producer. The thread side blocks on a condition variable; the loop
    side awaits an ``asyncio.Event`` that every state change sets through
    ``call_soon_threadsafe``. ``finish`` ends the stream (optionally with an error for the
    consumer); ``close`` abandons it from either side and wakes everybody.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, *, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self._loop = loop
        self._maxsize = maxsize
        self._items: collections.deque[T] = collections.deque()
        self._cond = threading.Condition()
        self._changed = asyncio.Event()
        self._finished = False
        self._error: BaseException | None = None
        self._closed = False

    def _notify(self) -> None:
        """Wake both sides; called with the condition held."""
        self._cond.notify_all()
        if not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._changed.set)

    @property
    def closed(self) -> bool:
        return self._closed

    # ----------------------------------------------------------------- thread side

    def put_sync(self, item: T) -> bool:
        """Block until there is room; False once the channel is closed."""
        with self._cond:
            while len(self._items) >= self._maxsize and not self._closed:
                self._cond.wait()
            if self._closed:
                return False
            self._items.append(item)
            self._notify()
            return True

    def get_sync(self) -> T | None:
        """The next item, ``None`` at the end; raises the producer's error or ChannelClosed."""
        with self._cond:
            while not self._items and not self._finished and not self._closed:
                self._cond.wait()
            if self._items:
                item = self._items.popleft()
                self._notify()
                return item
            if self._closed:
                raise ChannelClosed
            if self._error is not None:
                raise self._error
            return None

    # ----------------------------------------------------------------- loop side

    async def put_async(self, item: T) -> bool:
        """Wait until there is room; False once the channel is closed."""
        while True:
            self._changed.clear()
            with self._cond:
                if self._closed:
                    return False
                if len(self._items) < self._maxsize:
                    self._items.append(item)
                    self._cond.notify_all()
                    return True
            await self._changed.wait()

    async def receive(self) -> AsyncIterator[T]:
        """Every item until the producer finishes; its error, if any, is raised at the end."""
        while True:
            self._changed.clear()
            with self._cond:
                ready = bool(self._items)
                if ready:
                    item = self._items.popleft()
                    self._cond.notify_all()
                elif self._closed:
                    raise ChannelClosed
                elif self._finished:
                    if self._error is not None:
                        raise self._error
                    return
            if ready:
                yield item
            else:
                await self._changed.wait()

    # ----------------------------------------------------------------- either side

    def finish(self, error: BaseException | None = None) -> None:
        """No more items will come; the consumer sees ``error`` after the last one."""
        with self._cond:
            self._finished = True
            self._error = error
            self._notify()

    def close(self) -> None:
        """Abandon the stream: drop what is queued and make both ends stop."""
        with self._cond:
            self._closed = True
            self._items.clear()
            self._notify()
