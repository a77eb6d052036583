"""Large images as static large objects: segments uploaded concurrently, in bounded memory.

glance_store writes dynamic large objects (DLO): segments PUT one after another, then a
zero-byte manifest naming a prefix, whose listing Swift resolves at read time (eventually
consistent, no per-segment check). kglance writes static large objects (SLO): the manifest
lists every segment with its ETag and size, Swift checks them when the manifest is PUT, and
the manifest is the single, last request that makes the image visible.

The image stream is cut into segments of ``swift_store_large_object_chunk_size`` (glance "MB").
Up to ``swift_store_upload_concurrency`` segment PUTs are in flight at once; each one streams
its body from a ``BodyPipe`` of ``depth`` chunks, so memory stays at about
``concurrency x (depth + 1)`` chunks whatever the segment size (segments are 200 "MB" by
default: buffering whole segments, as glance's ``swift_buffer_on_upload`` does on disk, is not
needed). The stream itself is sequential, so concurrency overlaps the end of one segment (Swift
fsyncs and updates the container) with the start of the next.

A segment's size is exact when the image size is known, otherwise it is sent with chunked
transfer encoding. If anything fails (the source raising a size or checksum error, a segment
PUT failing, cancellation), every request still sending is aborted and every thread waited
for; the driver then deletes every segment that was started (``started``).

Swift limits a manifest to ``max_manifest_segments`` entries (1000 by default). Beyond that the
segments are grouped under sub-manifests and the image's manifest lists those (nested SLO), so
image size is not capped at 1000 segments.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import AsyncIterator, Callable

from kglance.drivers._threads import BlockingRunner
from kglance.drivers.swift import naming
from kglance.drivers.swift.bodies import BodyAborted, BodyPipe
from kglance.drivers.swift.transfers import Transfer, settle

# send(segment name, pipe, content length or None for chunked) -> ETag; blocking
SendSegment = Callable[[str, BodyPipe, int | None], str]


@dataclasses.dataclass
class Segment:
    name: str
    size: int = 0
    etag: str | None = None


class SegmentedUpload:
    def __init__(
        self,
        *,
        runner: BlockingRunner,
        send: SendSegment,
        prefix: str,
        segment_size: int,
        concurrency: int,
        total_size: int | None,
        depth: int = 2,
    ) -> None:
        self._runner = runner
        self._send = send
        self.prefix = prefix
        self._segment_size = segment_size
        self._total = total_size
        self._depth = depth
        self._slots = asyncio.Semaphore(concurrency)
        self._transfers: list[Transfer] = []
        self._failure: BaseException | None = None
        self.segments: list[Segment] = []

    @property
    def started(self) -> list[str]:
        """Names of every segment whose PUT was started (each may exist in Swift)."""
        return [s.name for s in self.segments]

    @property
    def size(self) -> int:
        return sum(s.size for s in self.segments)

    async def run(self, data: AsyncIterator[bytes]) -> list[Segment]:
        """Upload all of ``data``; the segments with their ETags, in order."""
        current: Transfer | None = None
        try:
            async for chunk in data:
                self._raise_failure()
                while chunk:
                    if current is None:
                        current = await self._start()
                    room = self._segment_size - current.pipe.fed
                    piece, chunk = chunk[:room], chunk[room:]
                    await current.pipe.put(piece)
                    if current.pipe.fed == self._segment_size:
                        self._close(current)
                        current = None
            if current is not None:
                self._close(current)
                current = None
            await settle([t.task for t in self._transfers])
            self._raise_failure()
            for segment, transfer in zip(self.segments, self._transfers, strict=True):
                segment.etag = await transfer.result()
            return self.segments
        except BaseException as exc:
            await self.abandon()
            if isinstance(exc, BodyAborted) and self._failure is not None:
                raise self._failure from None  # the segment's own error says why
            raise

    async def abandon(self) -> None:
        """Abort every request still sending and wait until all their threads are over."""
        await asyncio.gather(*(t.abandon() for t in self._transfers))

    def _close(self, transfer: Transfer) -> None:
        self.segments[-1].size = transfer.pipe.fed  # the transfer being fed is the last one
        transfer.pipe.close()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _on_done(self, task: asyncio.Future[str]) -> None:
        self._slots.release()
        if self._failure is None and not task.cancelled() and task.exception() is not None:
            self._failure = task.exception()

    async def _start(self) -> Transfer:
        await self._slots.acquire()
        try:
            self._raise_failure()
        except BaseException:
            self._slots.release()
            raise
        index = len(self.segments)
        segment = Segment(name=naming.segment_name(self.prefix, index + 1))
        length: int | None = None
        if self._total is not None and self._total > index * self._segment_size:
            length = min(self._segment_size, self._total - index * self._segment_size)
        send = functools.partial(self._send, segment.name)
        transfer = Transfer(self._runner, lambda pipe: send(pipe, length), depth=self._depth)
        transfer.task.add_done_callback(self._on_done)
        self.segments.append(segment)
        self._transfers.append(transfer)
        return transfer


def manifest_entries(container: str, segments: list[Segment]) -> list[dict[str, object]]:
    """SLO manifest entries: path, ETag and size of each segment, in order."""
    entries: list[dict[str, object]] = []
    for segment in segments:
        if segment.etag is None:
            raise ValueError(f"segment {segment.name} has no ETag")
        entries.append(
            {
                "path": f"/{container}/{segment.name}",
                "etag": segment.etag,
                "size_bytes": segment.size,
            }
        )
    return entries


def groups(segments: list[Segment], *, limit: int) -> list[list[Segment]]:
    """Segments cut into runs of at most ``limit`` (one run when they fit one manifest)."""
    return [segments[i : i + limit] for i in range(0, len(segments), limit)] or [[]]
