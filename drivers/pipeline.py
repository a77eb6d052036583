"""The policy wrapped once around every image stream on its way into a driver.

glance_store copied md5 + multihash + verifier + size checks into six drivers, inline with the
I/O on one thread. Here a ``CheckedStream`` sits between the caller's bytes and the driver:

* it re-chunks the input to the driver's preferred write size (fewer, larger writes; large
  buffers also let ``hashlib`` release the GIL);
* it hashes every chunk with md5 (glance's ``checksum``) and the chosen multihash algorithm on
  worker threads, the two in parallel, while the driver writes that same chunk: hashing of chunk
  N overlaps the write of chunk N and is awaited before chunk N+1 is handed over, so memory stays
  at about two chunks per stream;
* it feeds an optional verifier (``update(bytes)``, glance's signature-verifier hook) in order;
* it enforces the declared size: one byte too many fails at once, before that chunk reaches the
  driver; too few fails at the end of the stream;
* it checks an optional expected digest at the end of the stream.

Every failure is raised *from the iterator the driver is consuming*, before it signals the end of
the stream. A driver commits only once the iterator is exhausted cleanly, so a bad stream can
never become a visible image.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import hashlib
import hmac
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, Protocol

from kglance.drivers import errors

DEFAULT_HASH_ALGORITHM = "sha512"


class Verifier(Protocol):
    """glance_store's verifier hook: sees every byte, in order; the caller calls verify()."""

    def update(self, data: bytes) -> Any: ...


def new_hasher(algorithm: str) -> Any:
    """A fresh hashlib object; ``UnknownHashAlgorithm`` for names hashlib does not have."""
    name = algorithm.lower()
    if name not in hashlib.algorithms_available or name.startswith("shake"):
        # shake_* need a digest length, which a multihash cannot carry
        raise errors.UnknownHashAlgorithm(f"unknown hashing algorithm identifier: {algorithm}")
    if name == "md5":
        return hashlib.md5(usedforsecurity=False)
    return hashlib.new(name)


@dataclasses.dataclass(frozen=True, slots=True)
class ExpectedDigest:
    """A digest the caller promises, as ``<algorithm>:<hex>``."""

    algorithm: str
    hexdigest: str

    @classmethod
    def parse(cls, value: str) -> ExpectedDigest:
        algorithm, sep, hexdigest = value.strip().partition(":")
        if not sep or not algorithm or not hexdigest:
            raise errors.InvalidRequest(f"expected '<algorithm>:<hex>', got {value!r}")
        try:
            bytes.fromhex(hexdigest)
        except ValueError:
            raise errors.InvalidRequest(f"checksum {hexdigest!r} is not hexadecimal") from None
        digits = 2 * new_hasher(algorithm).digest_size  # also validates the name
        if len(hexdigest) != digits:
            # refused now rather than after the whole image has been streamed
            raise errors.InvalidRequest(
                f"a {algorithm} checksum has {digits} hex digits, got {len(hexdigest)}"
            )
        return cls(algorithm=algorithm.lower(), hexdigest=hexdigest.lower())


@dataclasses.dataclass(frozen=True, slots=True)
class Digests:
    size: int
    md5: str
    hash_algo: str
    hash_value: str


def _update_all(hashers: tuple[Any, ...], chunk: bytes) -> None:
    for hasher in hashers:
        hasher.update(chunk)


class _HashLane:
    """Hashers fed in order on their own worker thread, at most ``lag`` chunks behind.

    md5 and the multihash run at different speeds; each gets a lane so the faster one never
    waits for the slower one after every chunk, and neither waits for the driver's write.
    """

    def __init__(self, hashers: tuple[Any, ...], *, lag: int) -> None:
        self._hashers = hashers
        self._lag = lag
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="kglance-hash"
        )
        self._pending: collections.deque[asyncio.Future[None]] = collections.deque()

    async def feed(self, chunk: bytes) -> None:
        while len(self._pending) > self._lag:
            await self._pending.popleft()
        loop = asyncio.get_running_loop()
        self._pending.append(loop.run_in_executor(self._thread, _update_all, self._hashers, chunk))

    async def drain(self) -> None:
        while self._pending:
            await self._pending.popleft()

    async def close(self) -> None:
        """Wait for every update still running, errors ignored, and let the thread go."""
        pending, self._pending = list(self._pending), collections.deque()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self._thread.shutdown(wait=False)


class CheckedStream:
    """An async iterator of re-chunked bytes that hashes, counts and verifies what passes."""

    def __init__(
        self,
        source: AsyncIterable[bytes],
        *,
        size: int | None,
        hash_algo: str = DEFAULT_HASH_ALGORITHM,
        chunk_size: int = 1024 * 1024,
        verifier: Verifier | None = None,
        expected: ExpectedDigest | None = None,
    ) -> None:
        if size is not None and size < 0:
            raise errors.InvalidRequest(f"declared size must be >= 0, got {size}")
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self._source = source
        self._declared = size
        self._chunk_size = chunk_size
        self._verifier = verifier
        self._expected = expected
        self.hash_algo = hash_algo.lower()
        self._md5 = new_hasher("md5")
        self._multihash = new_hasher(self.hash_algo)
        self._extra: Any = None
        if expected is not None and expected.algorithm not in ("md5", self.hash_algo):
            self._extra = new_hasher(expected.algorithm)
        self.bytes_read = 0
        first: tuple[Any, ...] = (self._md5, verifier) if verifier is not None else (self._md5,)
        second: tuple[Any, ...] = (self._multihash,)
        if self._extra is not None:
            second += (self._extra,)
        # one chunk of lag: the lanes may still hash chunk N-1 while chunk N is written
        self._lanes = (_HashLane(first, lag=1), _HashLane(second, lag=1))
        self._digests: Digests | None = None

    @property
    def digests(self) -> Digests:
        if self._digests is None:
            raise RuntimeError("the stream has not been consumed to the end")
        return self._digests

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._run()

    async def _run(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._rechunked():
                self._count(len(chunk))
                await self._hash(chunk)
                yield chunk
            await self._settle()
        finally:
            await self._abandon()
        self._finish()

    async def _rechunked(self) -> AsyncIterator[bytes]:
        """The source cut into chunks of exactly ``chunk_size`` bytes, the last one shorter."""
        target = self._chunk_size
        buffer = bytearray()
        async for piece in self._source:
            start = 0
            if buffer:
                start = target - len(buffer)
                buffer += piece[:start]
                if len(buffer) < target:
                    continue
                chunk = bytes(buffer)
                buffer.clear()  # before the yield: the driver holds only the copy
                yield chunk
            while len(piece) - start >= target:
                # a copy, except for a bytes piece of exactly chunk_size (slicing it whole is free)
                yield bytes(piece[start : start + target])
                start += target
            buffer += piece[start:]
        if buffer:
            yield bytes(buffer)

    def _count(self, length: int) -> None:
        self.bytes_read += length
        if self._declared is not None and self.bytes_read > self._declared:
            raise errors.SizeMismatch(
                f"size exceeds the declared {self._declared} bytes "
                f"(received at least {self.bytes_read})",
                expected=self._declared,
                received=self.bytes_read,
            )

    async def _hash(self, chunk: bytes) -> None:
        for lane in self._lanes:
            await lane.feed(chunk)

    async def _settle(self) -> None:
        for lane in self._lanes:
            await lane.drain()

    async def _abandon(self) -> None:
        """Wait for hashing still running when the stream ends, so no thread outlives it."""
        for lane in self._lanes:
            await lane.close()

    def _finish(self) -> None:
        if self._declared is not None and self.bytes_read != self._declared:
            raise errors.SizeMismatch(
                f"size mismatch: declared {self._declared} bytes, received {self.bytes_read}",
                expected=self._declared,
                received=self.bytes_read,
            )
        digests = Digests(
            size=self.bytes_read,
            md5=self._md5.hexdigest(),
            hash_algo=self.hash_algo,
            hash_value=self._multihash.hexdigest(),
        )
        if self._expected is not None:
            actual = {
                "md5": digests.md5,
                self.hash_algo: digests.hash_value,
            }.get(self._expected.algorithm) or self._extra.hexdigest()
            if not hmac.compare_digest(actual, self._expected.hexdigest.lower()):
                raise errors.ChecksumMismatch(
                    f"{self._expected.algorithm} of the received bytes is {actual}, "
                    f"expected {self._expected.hexdigest}"
                )
        self._digests = digests
