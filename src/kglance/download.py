"""``kglance get -o FILE``: a download that survives interruption and can be verified.

Bytes go to ``FILE.part``, which becomes ``FILE`` (by rename) only once complete and, when
asked, verified; ``FILE`` never holds a partial or unverified image. A later run that finds
``FILE.part`` asks the sidecar only for the rest, with a ``Range`` request that starts
``OVERLAP`` bytes early: those bytes must equal the end of the part, or the part came from
another image (or from an image deleted and stored again under the same id) and the download
starts over. The overlap cannot prove the earlier bytes right; verification does, which is why
a resumed download that fails verification is fetched once more from the start before the
command reports the mismatch.

The expected digest never comes from nowhere: the filesystem and http stores keep no digests
(Glance keeps them in its database), so it is given by the caller (``--checksum``, ``--expect``
with the JSON ``kglance put`` printed) or sent by the sidecar when the backend has it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from kglance.drivers import base, errors, pipeline
from kglance.progress import Progress
from kglance.sidecar.syncclient import Client

OVERLAP = 64 * 1024
_READ_SIZE = 1024 * 1024

Notice = Callable[[str], None]
ProgressFactory = Callable[[int, int], Progress]  # (total, initial) -> Progress


class Checker:
    """Hashes bytes as they pass and compares with the expected digests at the end."""

    def __init__(self, expected: Sequence[pipeline.ExpectedDigest]) -> None:
        if not expected:
            raise ValueError("nothing to verify against")
        # one strong digest is enough: skip md5 when a multihash digest is known
        chosen = [d for d in expected if d.algorithm != "md5"] or list(expected)
        self._hashers: list[tuple[pipeline.ExpectedDigest, Any]] = [
            (digest, pipeline.new_hasher(digest.algorithm)) for digest in chosen
        ]

    def update(self, data: bytes) -> None:
        for _, hasher in self._hashers:
            hasher.update(data)

    def check(self, what: str) -> None:
        for digest, hasher in self._hashers:
            actual = hasher.hexdigest()
            if actual != digest.hexdigest:
                raise errors.ChecksumMismatch(
                    f"{digest.algorithm} of {what} is {actual}, expected {digest.hexdigest}"
                )


@dataclasses.dataclass(frozen=True, slots=True)
class Fetch:
    """One ``get -o``: which bytes of which image go where."""

    client: Client
    image_id: str
    backend: str | None
    target: base.ByteRange  # resolved against the image's size
    image_size: int
    dest: Path

    @property
    def part(self) -> Path:
        return self.dest.with_name(self.dest.name + ".part")

    @property
    def length(self) -> int:
        return self.target.length or 0  # only the empty image resolves to length None

    def byte_range(self, start: int) -> base.ByteRange | None:
        """The request for the target's bytes from ``start`` on (``None``: a plain GET)."""
        if start == 0 and self.target.offset == 0 and self.length == self.image_size:
            return None
        return base.ByteRange(self.target.offset + start, self.length - start)


class _StalePart(Exception):
    """The bytes re-read at the resume point differ from the end of the part."""


def _read_exactly(chunks: Iterator[bytes], count: int) -> tuple[bytes, bytes]:
    """The first ``count`` bytes of ``chunks`` and whatever came with them."""
    buffer = bytearray()
    while len(buffer) < count:
        chunk = next(chunks, None)
        if chunk is None:
            break
        buffer += chunk
    return bytes(buffer[:count]), bytes(buffer[count:])


def _hash_prefix(out: BinaryIO, length: int, checker: Checker) -> None:
    out.seek(0)
    left = length
    while left:
        data = out.read(min(left, _READ_SIZE))
        if not data:
            raise errors.StoreError(f"{out.name} shrank while it was being read")
        checker.update(data)
        left -= len(data)


def _transfer(
    fetch: Fetch,
    out: BinaryIO,
    *,
    have: int,
    checker: Checker | None,
    progress: ProgressFactory,
) -> None:
    """Append the target's bytes from ``have`` on to ``out``; raise ``_StalePart`` if the
    bytes just before ``have`` differ from the part's end."""
    overlap = min(have, OVERLAP)
    out.seek(have - overlap)
    tail = out.read(overlap)
    start = have - overlap
    with fetch.client.get(
        fetch.image_id, backend=fetch.backend, byte_range=fetch.byte_range(start)
    ) as download:
        if download.served.offset != fetch.target.offset + start:
            raise errors.BackendError(
                f"asked for bytes from {fetch.target.offset + start} but the sidecar "
                f"served {download.served}"
            )
        chunks = iter(download)
        seen, rest = _read_exactly(chunks, overlap)
        if seen != tail:
            raise _StalePart
        if checker is not None and have:
            _hash_prefix(out, have, checker)
        out.seek(have)
        out.truncate()
        with progress(fetch.length, have) as bar:
            for chunk in _chain(rest, chunks):
                out.write(chunk)
                if checker is not None:
                    checker.update(chunk)
                bar.advance(len(chunk))
    if out.tell() != fetch.length:
        raise errors.BackendError(
            f"expected {fetch.length} bytes of image {fetch.image_id} but {out.tell()} arrived:"
            " did the image change during the download?"
        )


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _existing_part(fetch: Fetch, notice: Notice) -> int:
    try:
        have = fetch.part.stat().st_size
    except FileNotFoundError:
        return 0
    if have > fetch.length:
        notice(f"{fetch.part} is longer than the {fetch.length} bytes wanted; starting over")
        return 0
    if have:
        notice(f"resuming from byte {have} of {fetch.length} in {fetch.part}")
    return have


def _attempt(
    fetch: Fetch,
    out: BinaryIO,
    *,
    have: int,
    expected: Sequence[pipeline.ExpectedDigest] | None,
    progress: ProgressFactory,
) -> None:
    checker = Checker(expected) if expected else None
    _transfer(fetch, out, have=have, checker=checker, progress=progress)
    out.flush()
    os.fsync(out.fileno())
    if checker is not None:
        checker.check(f"the {fetch.length} bytes in {fetch.part}")


def fetch_to_file(
    fetch: Fetch,
    *,
    expected: Sequence[pipeline.ExpectedDigest] | None,
    progress: ProgressFactory,
    notice: Notice,
) -> None:
    """Download ``fetch.target`` of the image into ``fetch.dest`` through ``FILE.part``.

    With ``expected`` digests the bytes are verified before the rename; on a mismatch the part
    is removed (a mismatching part must not be resumed) and ``ChecksumMismatch`` raised.
    """
    have = _existing_part(fetch, notice)
    try:
        with open(fetch.part, "r+b" if fetch.part.exists() else "w+b") as out:
            try:
                _attempt(fetch, out, have=have, expected=expected, progress=progress)
            except _StalePart:
                notice(f"{fetch.part} does not match image {fetch.image_id}; starting over")
                _attempt(fetch, out, have=0, expected=expected, progress=progress)
            except errors.ChecksumMismatch:
                if not have:
                    raise
                notice("verification failed after resuming; fetching again from the start")
                _attempt(fetch, out, have=0, expected=expected, progress=progress)
    except errors.ChecksumMismatch:
        fetch.part.unlink(missing_ok=True)
        raise
    os.replace(fetch.part, fetch.dest)
