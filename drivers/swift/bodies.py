"""Request bodies that stream from the event loop into the thread sending them.

requests sends a body that is an iterable of chunks from the thread making the request. A
``BodyPipe`` feeds such a body: the event loop ``put``s chunks, the sending thread iterates
them and hands each one to the socket whole. The queue between them is bounded (``depth``
chunks), so an upload holds at most ``depth + 1`` chunks per request in memory however large
the image is, and a slow Swift slows the producer down instead of filling memory.

Ending a body is explicit: ``close()`` ends it cleanly (the request completes), ``abort()``
makes the iteration raise ``BodyAborted`` inside requests, so the request fails and Swift
discards the partial object (a short ``Content-Length`` body or an unterminated chunked body
is never committed). When the thread's request ends first, for whatever reason, ``put`` raises
``BodyAborted`` instead of waiting forever for room.

requests decides between ``Content-Length`` and chunked transfer encoding from the body's
``len()``: ``body(length)`` gives a ``SizedBody`` for a known length and a plain ``Body``
otherwise. (swiftclient's ``put_object`` cannot stream an iterable with a length: it wraps it
in a generator and sends both ``Content-Length`` and chunked framing, which Swift times out on;
file-like bodies work but go out in 16 KiB reads with a copy each.)
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
from collections.abc import Iterator


class BodyAborted(Exception):
    """The upload was abandoned; raised into requests, or to a producer whose request ended."""


class _End:
    pass


class _Abort:
    pass


_END = _End()
_ABORT = _Abort()


class BodyPipe:
    """A bounded byte stream from coroutines (``put``) to one reading thread (``read``)."""

    def __init__(self, *, depth: int = 2) -> None:
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self._loop = asyncio.get_running_loop()
        self._depth = depth
        self._slots = asyncio.Semaphore(depth)
        self._queue: queue.SimpleQueue[bytes | _End | _Abort] = queue.SimpleQueue()
        self._sender_gone = False
        self.fed = 0  # bytes put (loop side)
        self.sent = 0  # bytes handed to the sender (thread side)
        self.finished = False  # the sender read the clean end of the body

    # ------------------------------------------------------------------ event loop side

    async def put(self, data: bytes) -> None:
        if not data:
            return
        await self._slots.acquire()
        if self._sender_gone:
            raise BodyAborted("the request ended before its body was sent")
        self._queue.put(data)
        self.fed += len(data)

    def close(self) -> None:
        """End the body cleanly: the request may complete."""
        self._queue.put(_END)

    def abort(self) -> None:
        """Make the sending thread fail its request."""
        self._queue.put(_ABORT)

    def _on_sender_gone(self) -> None:
        self._sender_gone = True
        for _ in range(self._depth + 1):  # wake a producer waiting for room
            self._slots.release()

    # ------------------------------------------------------------------ sending thread side

    def chunks(self) -> Iterator[bytes]:
        """The chunks as they are put, until ``close`` (or ``BodyAborted`` after ``abort``)."""
        while True:
            item = self._queue.get()
            if isinstance(item, _End):
                self.finished = True
                return
            if isinstance(item, _Abort):
                self._queue.put(item)  # every later read fails too
                raise BodyAborted("the upload was abandoned")
            self._loop.call_soon_threadsafe(self._slots.release)
            self.sent += len(item)
            yield item

    def body(self, length: int | None) -> Body:
        """What requests sends: with ``Content-Length`` when ``length`` is known (and not 0),
        else with chunked transfer encoding."""
        return Body(self) if length is None else SizedBody(self, length)

    def sender_done(self) -> None:
        """Called by the sending thread when its request is over, however it ended."""
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self._loop.call_soon_threadsafe(self._on_sender_gone)


class Body:
    """A request body requests streams chunk by chunk; without a length it goes chunked."""

    def __init__(self, pipe: BodyPipe) -> None:
        self._pipe = pipe

    def __iter__(self) -> Iterator[bytes]:
        return self._pipe.chunks()


class SizedBody(Body):
    """A body of known length: requests sends ``Content-Length`` and the chunks as they come."""

    def __init__(self, pipe: BodyPipe, length: int) -> None:
        super().__init__(pipe)
        self._length = length

    def __len__(self) -> int:
        return self._length
