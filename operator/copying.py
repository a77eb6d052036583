"""Copying an image's bytes from one backend to another, as Glance's copy-image does.

The copy is a stream: the source backend's ``get`` feeds the target backend's ``add``, so no
temporary file and no whole-image buffer exist, and the target's pipeline applies the same
checks an upload gets. The source ImageLocation's recorded facts are the contract the copy must
meet: its size is the declared size (one byte more or less fails the stream), and its digest
(the multihash when recorded, else the md5) is the expected digest checked when the stream
ends. Because a driver commits only after a clean end of stream, a copy that fails for any
reason, cancellation included, leaves nothing at the target.

A copy may be repeated: the operator can die after the target committed and before the status
said so. The add is create-only, so the second attempt finds the image already stored; it then
reads the stored image back and adopts it only if it hashes to the source's digests, and
otherwise refuses to touch bytes it cannot prove it wrote. Nothing is ever stored twice.

Progress is reported through a callback at most every ``interval`` seconds (and once at the
end), so a caller can patch a Kubernetes status without flooding the API server.
"""

from __future__ import annotations

import dataclasses
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from kglance.drivers import backends, base, errors, locations, pipeline

PROGRESS_INTERVAL = 2.0  # seconds between two progress reports


@dataclasses.dataclass(frozen=True, slots=True)
class Progress:
    bytes_done: int
    bytes_total: int | None

    @property
    def percent(self) -> int:
        """Whole percent done, 100 only when every byte is through (0 of an unknown total)."""
        if not self.bytes_total:
            return 100 if self.bytes_total == 0 else 0
        return min(100, self.bytes_done * 100 // self.bytes_total)

    def as_status(self) -> dict[str, int]:
        shown = {"bytesDone": self.bytes_done, "percent": self.percent}
        if self.bytes_total is not None:
            shown["bytesTotal"] = self.bytes_total
        return shown


ProgressSink = Callable[[Progress], Awaitable[None]]


class ProgressThrottle:
    """Passes byte counts on to a sink at most once per ``interval`` seconds."""

    def __init__(
        self,
        sink: ProgressSink,
        *,
        total: int | None,
        interval: float = PROGRESS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._total = total
        self._interval = interval
        self._clock = clock
        self._last: float | None = None

    async def update(self, done: int) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            return
        self._last = now
        await self._sink(Progress(done, self._total))

    async def finish(self, done: int) -> None:
        self._last = self._clock()
        await self._sink(Progress(done, self._total))


@dataclasses.dataclass(frozen=True, slots=True)
class SourceImage:
    """Where the bytes to copy are, and what the source ImageLocation recorded about them."""

    backend: backends.Backend
    location: locations.Location
    size: int | None = None
    checksum: str | None = None  # md5 hex
    os_hash_algo: str | None = None
    os_hash_value: str | None = None

    def expected_digest(self) -> pipeline.ExpectedDigest | None:
        """The strongest digest on record: the multihash, else the md5."""
        if self.os_hash_algo and self.os_hash_value:
            return pipeline.ExpectedDigest.parse(f"{self.os_hash_algo}:{self.os_hash_value}")
        if self.checksum:
            return pipeline.ExpectedDigest.parse(f"md5:{self.checksum}")
        return None

    @property
    def hash_algo(self) -> str:
        """The copy is hashed with the source's algorithm, so its os_hash_value matches."""
        return (self.os_hash_algo or pipeline.DEFAULT_HASH_ALGORITHM).lower()


async def copy_image(
    source: SourceImage,
    *,
    target: backends.Backend,
    image_id: str,
    report: ProgressSink,
    interval: float = PROGRESS_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
) -> backends.AddResult:
    """Stream the source's bytes into ``target`` as ``image_id``, all checks applied.

    Raises ``SizeMismatch``/``ChecksumMismatch`` when the bytes differ from the source's record
    (nothing is left at the target), ``AlreadyExists`` when the target holds other bytes under
    ``image_id``, and whatever the backends raise otherwise.
    """
    if source.backend is target:
        raise errors.InvalidRequest(
            f"image {image_id} is already in backend {target.id!r}: a copy needs another backend"
        )
    expected = source.expected_digest()
    async with source.backend.get(source.location) as blob:
        size = _declared_size(source, blob)
        throttle = ProgressThrottle(report, total=size, interval=interval, clock=clock)
        await throttle.update(0)
        try:
            result = await target.add(
                image_id,
                _counted(blob, throttle),
                size=size,
                hash_algo=source.hash_algo,
                expected=expected,
                mode="create",
            )
        except errors.AlreadyExists:
            result = await _adopt(source, target=target, image_id=image_id, size=size)
    if source.checksum and not _same(result.checksum, source.checksum):
        # only reachable when the multihash matched and the md5 did not: a broken record
        await target.delete(result.location)
        raise errors.ChecksumMismatch(
            f"md5 of the copied bytes is {result.checksum}, the source records "
            f"{source.checksum}; the copy was removed"
        )
    await throttle.finish(result.size)
    return result


def _declared_size(source: SourceImage, blob: base.Blob) -> int | None:
    if source.size is not None and blob.size is not None and source.size != blob.size:
        raise errors.SizeMismatch(
            f"the source records {source.size} bytes but backend {source.backend.id!r} holds "
            f"{blob.size} at {source.location}",
            expected=source.size,
            received=blob.size,
        )
    return source.size if source.size is not None else blob.size


async def _counted(blob: base.Blob, throttle: ProgressThrottle) -> AsyncIterator[bytes]:
    done = 0
    async for chunk in blob:
        yield chunk
        done += len(chunk)
        await throttle.update(done)


async def _adopt(
    source: SourceImage, *, target: backends.Backend, image_id: str, size: int | None
) -> backends.AddResult:
    """The image an earlier attempt stored, if it hashes to the source's digests."""
    location = await target.locate(image_id)
    expected = source.expected_digest() or await _digest_of(source, size=size)
    checked = pipeline.CheckedStream(
        _whole(target, location), size=size, hash_algo=source.hash_algo, expected=expected
    )
    try:
        await _drain(checked)
    except (errors.SizeMismatch, errors.ChecksumMismatch) as exc:
        raise errors.AlreadyExists(
            f"backend {target.id!r} already holds other bytes for image {image_id} at "
            f"{location} ({exc.message}); they were left untouched"
        ) from exc
    digests = checked.digests
    return backends.AddResult(
        image_id=image_id,
        backend=target.id,
        location=location.without_credentials(),
        size=digests.size,
        checksum=digests.md5,
        os_hash_algo=digests.hash_algo,
        os_hash_value=digests.hash_value,
        metadata={"store": target.id},
    )


async def _digest_of(source: SourceImage, *, size: int | None) -> pipeline.ExpectedDigest:
    """The source's multihash, read from its bytes when its record has no digest."""
    checked = pipeline.CheckedStream(
        _whole(source.backend, source.location), size=size, hash_algo=source.hash_algo
    )
    await _drain(checked)
    return pipeline.ExpectedDigest(checked.hash_algo, checked.digests.hash_value)


async def _drain(stream: pipeline.CheckedStream) -> None:
    async for _ in stream:
        pass


async def _whole(backend: backends.Backend, location: locations.Location) -> AsyncIterator[bytes]:
    async with backend.get(location) as blob:
        async for chunk in blob:
            yield chunk


def _same(left: str, right: str) -> bool:
    return hmac.compare_digest(left.lower(), right.lower())
