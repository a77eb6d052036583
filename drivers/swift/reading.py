"""Reading an object: ranged GETs, and resuming a download that broke in the middle.

A ``ResumingReader`` (blocking) holds one GET response. When the body fails or ends before the
range it promised, it asks again with ``Range: bytes=<first byte not yet delivered>-<end>`` up
to ``swift_store_retry_get_count`` times, checking that the answer is a 206 starting at that
byte and that the object's ETag has not changed; when the retries are used up it raises
``RemoteUnavailable``. It never ends short: glance_store's ``swift_retry_iter`` ended the stream
silently and let the caller find out from the size.

Every 206 is checked against the range that was asked (``Content-Range``). Old dynamic large
objects (``X-Object-Manifest``) and static ones are read the same way: Swift serves the
concatenation.

``SwiftBlob`` hands the reads to a thread one chunk at a time and starts reading the next chunk
while the consumer handles the current one (one chunk of read-ahead). No thread is held while
the consumer is slow, so stalled downloads cannot exhaust the driver's threads.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

import urllib3.exceptions

from kglance.drivers import base, errors
from kglance.drivers._threads import BlockingRunner
from kglance.drivers.swift import connections
from kglance.drivers.swift.locating import Target
from kglance.drivers.swift.transfers import settle

logger = logging.getLogger(__name__)

READ_CHUNK = 1024 * 1024


def _content_range(value: str | None, *, what: str) -> tuple[int, int, int | None]:
    """``bytes first-last/total`` as (first, last, total or None for ``*``)."""
    unit, _, spec = (value or "").strip().partition(" ")
    span, _, total = spec.partition("/")
    first, _, last = span.partition("-")
    valid = unit == "bytes" and first.isdigit() and last.isdigit() and int(last) >= int(first)
    if not valid or not (total == "*" or (total.isdigit() and int(total) > int(last))):
        raise errors.BackendError(f"{what}: 206 with an invalid Content-Range {value!r}")
    return int(first), int(last), None if total == "*" else int(total)


def _length(headers: dict[str, str], *, what: str) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    if not value.strip().isdigit():
        raise errors.BackendError(f"{what}: invalid Content-Length {value!r}")
    return int(value)


class ResumingReader:
    """One object's bytes in a range, read on threads; thread-safe between read and close."""

    def __init__(self, client: connections.SwiftClient, target: Target, *, retries: int) -> None:
        self._client = client
        self._target = target
        self._retries = retries
        self._retries_left = retries
        self._what = f"GET {target}"
        self._lock = threading.Lock()
        self._body: Any = None
        self._lease: connections.Lease | None = None
        self._closed = False
        self._skip = 0  # leading bytes of the body before the range (a 200 to a ranged GET)
        self.size: int | None = None
        self.served = base.FULL
        self.position = 0  # absolute offset of the next byte to deliver
        self._end: int | None = None  # absolute end (exclusive) when known
        self._etag: str | None = None
        self._failure: BaseException | None = None  # met after bytes still to deliver
        self._careful = False  # read one system call at a time (after a failure)

    # ---------------------------------------------------------------- opening

    def _get(self, headers: dict[str, str]) -> tuple[dict[str, str], Any, int]:
        import swiftclient.client

        def request(url: str, token: str, conn: connections.HttpConn) -> tuple[Any, Any]:
            response: tuple[Any, Any] = swiftclient.client.get_object(
                url,
                token,
                self._target.container,
                self._target.obj,
                http_conn=conn,
                resp_chunk_size=READ_CHUNK,
                headers=headers,
            )
            return response

        try:
            (response_headers, body), lease = self._client.open(
                request, what=self._what, url=self._target.url
            )
        except Exception as exc:
            raise connections.translate(exc, what=self._what) from exc
        self._body, self._lease = body, lease
        return response_headers, body, int(body.resp.status)

    def open(self, byte_range: base.ByteRange) -> None:
        with self._lock:
            headers = {} if byte_range.is_full else {"Range": byte_range.header_value()}
            response_headers, _, status = self._get(headers)
            self._etag = response_headers.get("etag")
            if status == 206:
                first, last, total = _content_range(
                    response_headers.get("content-range"), what=self._what
                )
                served = base.ByteRange(first, last - first + 1)
                expected = byte_range.resolve(total) if total is not None else served
                if served != expected or first != byte_range.offset:
                    raise errors.BackendError(
                        f"{self._what}: asked for bytes {byte_range}, got {served}"
                    )
                self.size = total
            elif status == 200:
                self.size = _length(response_headers, what=self._what)
                served = byte_range if self.size is None else byte_range.resolve(self.size)
                self._skip = byte_range.offset
            else:
                raise errors.BackendError(f"{self._what}: unexpected HTTP {status}")
            self.served = served
            self.position = served.offset
            self._end = served.end

    # ---------------------------------------------------------------- reading

    def read(self, limit: int = READ_CHUNK) -> bytes:
        """Up to ``limit`` bytes of the range; b"" only once the whole range was delivered."""
        with self._lock:
            if self._closed:
                raise errors.BackendError(f"{self._what}: read after close")
            while True:
                if self._end is not None and self.position >= self._end:
                    return b""
                failure, self._failure = self._failure, None
                data = b""
                if failure is None:
                    want = limit if self._end is None else min(limit, self._end - self.position)
                    try:
                        data = self._read_body(want)
                    except (OSError, urllib3.exceptions.HTTPError) as exc:
                        failure = exc
                if data:
                    self.position += len(data)
                    return data
                if failure is None and self._end is None:
                    return b""  # the natural end of a body of unknown length
                self._recover(failure)

    def _read_body(self, want: int) -> bytes:
        """Up to ``want`` bytes of the body.

        Whole-chunk reads are the fastest, but a connection that breaks in the middle of one
        loses what that read had received. So once a read has failed, the rest of the stream
        is read one system call at a time (``read1``): bytes that arrived before a break are
        delivered and count as progress (a failure after some bytes is kept for the next
        call), so even a connection that breaks every few hundred kilobytes gets through.
        """
        raw = self._body.resp.raw
        while self._skip:
            skipped = raw.read1(min(self._skip, READ_CHUNK))
            if not skipped:
                return b""
            self._skip -= len(skipped)
        if not self._careful:
            data: bytes = raw.read(want)
            return data
        parts: list[bytes] = []
        got = 0
        while got < want:
            try:
                piece = raw.read1(want - got)
            except (OSError, urllib3.exceptions.HTTPError) as exc:
                if not parts:
                    raise
                self._failure = exc
                break
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _recover(self, failure: BaseException | None) -> None:
        """Re-request the rest of the range, or raise when no retry is left."""
        reason = type(failure).__name__ if failure is not None else "the body ended early"
        self._careful = True
        self._drop()
        if self._retries_left <= 0:
            shown = f"{self._end}" if self._end is not None else "the end"
            message = (
                f"{self._what}: the download broke at byte {self.position} of {shown} ({reason})"
            )
            if self._retries:
                message += f"; {self._retries} resume attempts (swift_store_retry_get_count) used"
            raise errors.RemoteUnavailable(message) from failure
        self._retries_left -= 1
        logger.warning(
            "%s: the download broke at byte %d (%s); resuming (%d of %d)",
            self._what,
            self.position,
            reason,
            self._retries - self._retries_left,
            self._retries,
        )
        asked = base.ByteRange(
            self.position, None if self._end is None else self._end - self.position
        )
        response_headers, _, status = self._get({"Range": asked.header_value()})
        if status != 206:
            raise errors.BackendError(f"{self._what}: resuming got HTTP {status}, not 206")
        first, last, _ = _content_range(response_headers.get("content-range"), what=self._what)
        if first != self.position or (self._end is not None and last != self._end - 1):
            raise errors.BackendError(
                f"{self._what}: resuming asked for bytes {asked}, got {first}-{last}"
            )
        etag = response_headers.get("etag")
        if self._etag and etag and etag != self._etag:
            raise errors.BackendError(f"{self._what}: the object changed while it was read")

    def _drop(self, *, reusable: bool = False) -> None:
        body, lease = self._body, self._lease
        self._body = self._lease = None
        if body is not None:
            try:
                body.close()
            except Exception:  # the connection is already broken
                logger.debug("%s: closing a response failed", self._what, exc_info=True)
        if lease is not None:
            lease.healthy = reusable
            self._client.release(lease)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                # a connection whose body was read to the end goes back to the pool
                self._drop(reusable=self._end is not None and self.position >= self._end)


class SwiftBlob(base.Blob):
    def __init__(self, reader: ResumingReader, runner: BlockingRunner) -> None:
        super().__init__(size=reader.size, served=reader.served)
        self._reader = reader
        self._runner = runner
        self._pending: asyncio.Task[bytes] | None = None

    def _prefetch(self) -> None:
        self._pending = asyncio.ensure_future(self._runner.run(self._reader.read, READ_CHUNK))

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._pending is None:
            self._prefetch()
        while True:
            pending = self._pending
            assert pending is not None
            chunk = await asyncio.shield(pending)
            if not chunk:
                return
            self._prefetch()  # the next read overlaps the consumer's work on this chunk
            yield chunk

    async def close(self) -> None:
        """Wait for a read in flight, then release the response (on a thread)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            await settle([pending])
            if not pending.cancelled():
                pending.exception()  # retrieved; a failure was already raised or is moot
        await self._runner.run_to_completion(self._reader.close)
