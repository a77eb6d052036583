"""Moving bytes to and from an attached volume: bounded concurrent writes, chunked reads.

Writes: each chunk is a positional write (``Device.pwrite``) on a pool thread, with at most
``in_flight`` of them running, so the network or disk is kept busy while the next chunk is
read from the client. ``abandon()`` waits for the writes still running before the device is
closed and detached: a thread cannot be interrupted, and detaching under it would write
into a volume that is about to be deleted, or fail in the middle of a C call.

Reads: the served range in ``READ_CHUNK`` pieces, one read ahead of the consumer.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator

from kglance.drivers import _threads, base, errors
from kglance.drivers.cinder import attach

READ_CHUNK = 1024 * 1024


def translate_os_error(exc: OSError, *, action: str) -> errors.StoreError:
    """glance's mapping: ENOSPC/EFBIG are a full store, EACCES a denied write."""
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return errors.StorageFull(f"{action}: {exc.strerror}")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return errors.WriteDenied(f"{action}: {exc.strerror}")
    return errors.BackendError(f"{action}: {exc}")


class Writes:
    """Concurrent positional writes to one device, at most ``in_flight`` at once."""

    def __init__(
        self, device: attach.Device, *, runner: _threads.BlockingRunner, in_flight: int
    ) -> None:
        self._device = device
        self._runner = runner
        self._in_flight = in_flight
        self._pending: set[asyncio.Future[None]] = set()

    async def submit(self, offset: int, data: bytes) -> None:
        while len(self._pending) >= self._in_flight:
            await self._settle_one()
        self._pending.add(asyncio.ensure_future(self._write(offset, data)))

    async def _write(self, offset: int, data: bytes) -> None:
        try:
            await self._runner.run(self._device.pwrite, offset, data)
        except OSError as exc:
            action = f"cannot write {len(data)} bytes at {offset} to the volume"
            raise translate_os_error(exc, action=action) from exc

    async def _settle_one(self) -> None:
        done, _ = await asyncio.wait(self._pending, return_when=asyncio.FIRST_COMPLETED)
        self._pending -= done
        for future in done:
            future.result()

    async def drain(self) -> None:
        """Wait for every write; the first failure is raised."""
        while self._pending:
            await self._settle_one()
        try:
            await self._runner.run(self._device.flush)
        except OSError as exc:
            raise translate_os_error(exc, action="cannot flush the volume") from exc

    async def abandon(self) -> None:
        """Wait (uninterruptibly) for the writes still running; their errors are dropped."""
        pending, self._pending = self._pending, set()
        if pending:
            await _threads.await_uninterrupted(asyncio.wait(pending))
            for future in pending:
                if not future.cancelled():
                    future.exception()  # retrieved: the error that made us abandon wins


class VolumeBlob(base.Blob):
    """The served range of an attached volume."""

    def __init__(
        self,
        device: attach.Device | None,
        *,
        size: int,
        served: base.ByteRange,
        runner: _threads.BlockingRunner,
    ) -> None:
        super().__init__(size=size, served=served)
        self._device = device
        self._runner = runner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        length = self.served.length or 0
        if self._device is None or length == 0:
            return
        position, end = self.served.offset, self.served.offset + length
        ahead: asyncio.Future[bytes] | None = None
        try:
            while position < end or ahead is not None:
                if ahead is None:
                    ahead = self._read(position, min(READ_CHUNK, end - position))
                    position += min(READ_CHUNK, end - position)
                current, ahead = ahead, None
                if position < end:
                    ahead = self._read(position, min(READ_CHUNK, end - position))
                    position += min(READ_CHUNK, end - position)
                yield await current
        finally:
            if ahead is not None:  # the consumer stopped: let the last read finish first
                await _threads.await_uninterrupted(asyncio.wait([ahead]))
                if not ahead.cancelled():
                    ahead.exception()

    def _read(self, offset: int, length: int) -> asyncio.Future[bytes]:
        device = self._device
        assert device is not None

        async def read() -> bytes:
            try:
                return await self._runner.run(device.pread, offset, length)
            except OSError as exc:
                action = f"cannot read {length} bytes at {offset} from the volume"
                raise translate_os_error(exc, action=action) from exc

        return asyncio.ensure_future(read())
