"""Cutting an image stream into S3 parts: how large each part is, and filling one at a time.

S3 allows at most 10,000 parts of 5 MiB to 5 GiB each (the last may be smaller), so an
object can hold at most 5 TiB. glance_store uses the configured chunk size for every part, or
``ceil(size / 10000)`` when that is larger, so an image of unknown size larger than 10,000
chunks (98 GiB at the default 10 MiB) fails near its end. Here:

* known size: every part is ``max(chunk, size / 10000)`` rounded up to a whole MiB;
* unknown size: parts start at the chunk size and double every 1,000 parts (capped at 5 GiB),
  so 10,000 parts hold about 1023 x 1000 chunks (about 5 TiB at 5 MiB chunks, S3's limit).
  Memory follows the part size, so it grows only for images beyond 1,000 chunks.

``PartReader`` fills one part at a time into a ``bytearray`` allocated at the part's size
and handed to boto3 as is (boto3 sends a bytearray without copying it; ``bytes`` bodies get
wrapped and read in small pieces), so a part costs its size once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from kglance.drivers import errors

MiB = 1024 * 1024
GiB = 1024 * MiB
MAX_PARTS = 10_000
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB
MAX_OBJECT_SIZE = 5 * 1024 * GiB
GROWTH_INTERVAL = 1000  # parts of unknown-size uploads double in size this often


@dataclasses.dataclass(frozen=True, slots=True)
class PartPlan:
    """The size of every part of one upload."""

    first: int  # bytes in part 1
    grows: bool  # whether later parts grow (unknown total size)

    def size_of(self, number: int) -> int:
        """Bytes in part ``number`` (1-based); ``StorageFull`` past S3's 10,000 parts."""
        if not 1 <= number <= MAX_PARTS:
            raise errors.StorageFull(
                f"the image needs more than {MAX_PARTS} parts, more than one S3 object holds"
            )
        if not self.grows:
            return self.first
        return min(self.first << ((number - 1) // GROWTH_INTERVAL), MAX_PART_SIZE)

    def capacity(self) -> int:
        """The most bytes 10,000 parts of this plan hold."""
        if not self.grows:
            return self.first * MAX_PARTS
        return sum(self.size_of(n) for n in range(1, MAX_PARTS + 1, GROWTH_INTERVAL)) * (
            GROWTH_INTERVAL
        )


def plan_parts(size: int | None, *, chunk_size: int) -> PartPlan:
    """The parts for an image of ``size`` bytes (``None``: unknown) at the configured chunk."""
    if chunk_size < MIN_PART_SIZE or chunk_size > MAX_PART_SIZE:
        raise ValueError(f"S3 parts are {MIN_PART_SIZE} to {MAX_PART_SIZE} bytes, not {chunk_size}")
    if size is None:
        return PartPlan(first=chunk_size, grows=True)
    if size > MAX_OBJECT_SIZE:
        raise errors.StorageFull(f"{size} bytes is more than one S3 object holds (5 TiB)")
    needed = -(-size // MAX_PARTS)  # ceil
    needed = -(-needed // MiB) * MiB  # whole MiB
    return PartPlan(first=min(max(chunk_size, needed), MAX_PART_SIZE), grows=False)


class PartReader:
    """Reads ``chunks`` into parts of the sizes a plan gives, one part at a time."""

    def __init__(self, chunks: AsyncIterator[bytes], plan: PartPlan) -> None:
        self._chunks = chunks
        self._plan = plan
        self._pending = memoryview(b"")  # the rest of a chunk that straddled two parts
        self._unread: bytearray | None = None  # a part given back with ``unread``
        self.parts_read = 0
        self.bytes_read = 0
        self.exhausted = False  # the source ended cleanly (all its checks passed)

    async def next_part(self) -> bytearray | None:
        """The next part, full unless the source ended; ``None`` once nothing is left."""
        if self._unread is not None:
            part, self._unread = self._unread, None
            self.parts_read += 1
            self.bytes_read += len(part)
            return part
        if self.exhausted and not self._pending:
            return None
        capacity = self._plan.size_of(self.parts_read + 1)
        part = bytearray(capacity)
        filled = self._take_pending(part, 0)
        while filled < capacity:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                self.exhausted = True
                break
            self._pending = memoryview(chunk)
            filled = self._take_pending(part, filled)
        if filled == 0:
            return None
        if filled < capacity:
            del part[filled:]
        self.parts_read += 1
        self.bytes_read += filled
        return part

    def _take_pending(self, part: bytearray, filled: int) -> int:
        take = min(len(self._pending), len(part) - filled)
        if take:
            part[filled : filled + take] = self._pending[:take]
            self._pending = self._pending[take:]
        return filled + take

    def unread(self, part: bytearray) -> None:
        """Give the part just read back; the next ``next_part`` returns it again."""
        if self._unread is not None:
            raise RuntimeError("only one part can be given back")
        self._unread = part
        self.parts_read -= 1
        self.bytes_read -= len(part)

    async def confirm_end(self) -> bool:
        """Whether the source ends here; raises what the source raises at its end.

        It reads ahead at most one chunk, which ``next_part`` then uses.
        """
        while not self.exhausted and not self._pending:
            try:
                self._pending = memoryview(await anext(self._chunks))
            except StopAsyncIteration:
                self.exhausted = True
        return not self._pending
