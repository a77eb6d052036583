"""CheckedStream: digests, re-chunking, size enforcement, verifier and expected digests.

The promise a driver relies on: every failure is raised from the iterator it consumes, before
the iterator signals the end, and an over-size chunk never reaches it.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Iterable
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kglance.drivers import errors, pipeline
from kglance.drivers.pipeline import CheckedStream, ExpectedDigest

T = TypeVar("T")


def run(awaitable: Awaitable[T]) -> T:
    async def main() -> T:
        return await awaitable

    return asyncio.run(main())


async def pieces(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
        await asyncio.sleep(0)


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``data`` cut at ``cuts`` (any order, repeats give empty pieces)."""
    points = [0, *sorted(min(c, len(data)) for c in cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


async def drain(stream: CheckedStream) -> list[bytes]:
    return [chunk async for chunk in stream]


def random_bytes(size: int, *, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


class RecordingVerifier:
    def __init__(self) -> None:
        self.seen = bytearray()
        self.calls = 0

    def update(self, data: bytes) -> None:
        self.seen += data
        self.calls += 1


# --------------------------------------------------------------------------- digests

ALGORITHMS = ("sha512", "sha256", "sha3_256", "blake2b", "md5")


@given(
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=12),
    chunk_size=st.integers(min_value=1, max_value=700),
    hash_algo=st.sampled_from(ALGORITHMS),
    declare=st.booleans(),
)
def test_digests_match_hashlib_in_any_chunking(
    data: bytes, cuts: list[int], chunk_size: int, hash_algo: str, declare: bool
) -> None:
    parts = split(data, cuts)
    verifier = RecordingVerifier()
    stream = CheckedStream(
        pieces(parts),
        size=len(data) if declare else None,
        hash_algo=hash_algo,
        chunk_size=chunk_size,
        verifier=verifier,
    )
    chunks = run(drain(stream))

    assert b"".join(chunks) == data
    assert all(len(chunk) == chunk_size for chunk in chunks[:-1])
    assert not chunks or 0 < len(chunks[-1]) <= chunk_size
    assert stream.bytes_read == len(data)
    digests = stream.digests
    assert digests.size == len(data)
    assert digests.md5 == hashlib.md5(data).hexdigest()
    assert digests.hash_algo == hash_algo
    assert digests.hash_value == hashlib.new(hash_algo, data).hexdigest()
    assert bytes(verifier.seen) == data


def test_default_algorithm_is_sha512() -> None:
    data = random_bytes(100_000)
    stream = CheckedStream(pieces([data]), size=len(data))
    run(drain(stream))
    assert stream.digests.hash_algo == pipeline.DEFAULT_HASH_ALGORITHM == "sha512"
    assert stream.digests.hash_value == hashlib.sha512(data).hexdigest()


def test_algorithm_name_is_case_insensitive() -> None:
    stream = CheckedStream(pieces([b"abc"]), size=3, hash_algo="SHA256")
    run(drain(stream))
    assert stream.digests.hash_algo == "sha256"
    assert stream.digests.hash_value == hashlib.sha256(b"abc").hexdigest()


def test_empty_stream() -> None:
    stream = CheckedStream(pieces([b"", b""]), size=0, chunk_size=4)
    assert run(drain(stream)) == []
    assert stream.digests.size == 0
    assert stream.digests.md5 == hashlib.md5(b"").hexdigest()


# --------------------------------------------------------------------------- re-chunking


@pytest.mark.parametrize(
    ("parts", "chunk_size"),
    [
        pytest.param([b"x" * 10], 4, id="one-large-piece"),
        pytest.param([b"x" * 3, b"y" * 10], 4, id="small-then-large"),
        pytest.param([b"x"] * 9, 4, id="many-small"),
        pytest.param([b"x" * 8], 4, id="exact-multiple"),
        pytest.param([b"x" * 2, b"", b"y" * 6], 4, id="empty-piece"),
        pytest.param([b"x" * 4_000_000, b"y"], 1_048_576, id="megabytes"),
    ],
)
def test_rechunking_gives_exact_chunks_except_the_last(parts: list[bytes], chunk_size: int) -> None:
    data = b"".join(parts)
    chunks = run(drain(CheckedStream(pieces(parts), size=len(data), chunk_size=chunk_size)))
    assert b"".join(chunks) == data
    assert [len(c) for c in chunks[:-1]] == [chunk_size] * (len(chunks) - 1)
    assert 0 < len(chunks[-1]) <= chunk_size
    assert all(type(c) is bytes for c in chunks)


def test_bytearray_pieces_are_copied() -> None:
    piece = bytearray(b"abcd")

    async def source() -> AsyncIterator[bytes]:
        yield b""
        yield piece  # type: ignore[misc]  # callers sometimes pass bytes-likes
        piece[:] = b"XXXX"  # the producer reuses its buffer
        yield b"ef"

    chunks = run(drain(CheckedStream(source(), size=6, chunk_size=3)))
    assert chunks == [b"abc", b"def"]


def test_invalid_arguments() -> None:
    with pytest.raises(errors.InvalidRequest):
        CheckedStream(pieces([]), size=-1)
    with pytest.raises(ValueError, match="chunk_size"):
        CheckedStream(pieces([]), size=0, chunk_size=0)


# --------------------------------------------------------------------------- size


async def consume(stream: CheckedStream) -> tuple[list[bytes], BaseException | None]:
    received: list[bytes] = []
    chunks = aiter(stream)
    try:
        while True:
            received.append(await anext(chunks))
    except StopAsyncIteration:
        return received, None
    except errors.StoreError as exc:
        return received, exc


@pytest.mark.parametrize(
    ("parts", "declared", "chunk_size", "received"),
    [
        pytest.param([b"x" * 10], 6, 4, [b"x" * 4], id="second-chunk-over"),
        pytest.param([b"x" * 10], 3, 4, [], id="first-chunk-over"),
        pytest.param([b"x" * 5], 4, 100, [], id="one-byte-over-short-stream"),
        pytest.param([b"x" * 8, b"y"], 8, 4, [b"x" * 4, b"x" * 4], id="one-byte-over-at-end"),
        pytest.param([b"x"], 0, 4, [], id="declared-empty"),
    ],
)
def test_oversize_fails_before_the_chunk_is_yielded(
    parts: list[bytes], declared: int, chunk_size: int, received: list[bytes]
) -> None:
    stream = CheckedStream(pieces(parts), size=declared, chunk_size=chunk_size)
    got, error = run(consume(stream))
    assert got == received
    assert sum(map(len, got)) <= declared
    assert isinstance(error, errors.SizeMismatch)
    assert error.expected == declared
    assert error.received > declared
    with pytest.raises(RuntimeError):
        _ = stream.digests


def test_oversize_stops_reading_an_endless_source() -> None:
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 1
            yield b"z" * 1000
            await asyncio.sleep(0)

    got, error = run(consume(CheckedStream(endless(), size=5000, chunk_size=2000)))
    assert isinstance(error, errors.SizeMismatch)
    assert sum(map(len, got)) == 4000
    assert pulled <= 6


def test_short_stream_fails_at_the_end_before_stop() -> None:
    async def scenario() -> None:
        stream = CheckedStream(pieces([b"x" * 10]), size=12, chunk_size=4)
        iterator = aiter(stream)
        chunks = [await anext(iterator) for _ in range(3)]
        assert b"".join(chunks) == b"x" * 10
        with pytest.raises(errors.SizeMismatch) as caught:
            await anext(iterator)
        assert (caught.value.expected, caught.value.received) == (12, 10)
        with pytest.raises(RuntimeError):
            _ = stream.digests

    run(scenario())


def test_unknown_size_accepts_anything() -> None:
    data = random_bytes(12345)
    stream = CheckedStream(pieces(split(data, [1, 500, 9000])), size=None, chunk_size=1000)
    assert b"".join(run(drain(stream))) == data
    assert stream.digests.size == len(data)


def test_size_errors_are_invalid_requests() -> None:
    assert issubclass(errors.SizeMismatch, errors.InvalidRequest)
    assert errors.SizeMismatch.http_status == 400


# --------------------------------------------------------------------------- expected digest

DATA = random_bytes(50_000, seed=3)


@pytest.mark.parametrize(
    ("algorithm", "hash_algo"),
    [
        pytest.param("md5", "sha512", id="md5"),
        pytest.param("sha512", "sha512", id="the-multihash"),
        pytest.param("sha256", "sha512", id="a-third-algorithm"),
        pytest.param("sha3_512", "sha256", id="another-third-algorithm"),
    ],
)
def test_expected_digest_match(algorithm: str, hash_algo: str) -> None:
    expected = ExpectedDigest.parse(f"{algorithm}:{hashlib.new(algorithm, DATA).hexdigest()}")
    stream = CheckedStream(
        pieces(split(DATA, [100, 20_000])),
        size=len(DATA),
        hash_algo=hash_algo,
        chunk_size=8192,
        expected=expected,
    )
    assert b"".join(run(drain(stream))) == DATA
    assert stream.digests.hash_value == hashlib.new(hash_algo, DATA).hexdigest()


@pytest.mark.parametrize(
    ("algorithm", "hash_algo"),
    [
        pytest.param("md5", "sha512", id="md5"),
        pytest.param("sha512", "sha512", id="the-multihash"),
        pytest.param("sha256", "sha512", id="a-third-algorithm"),
    ],
)
def test_expected_digest_mismatch(algorithm: str, hash_algo: str) -> None:
    wrong = hashlib.new(algorithm, DATA + b"!").hexdigest()

    async def scenario() -> None:
        stream = CheckedStream(
            pieces([DATA]),
            size=len(DATA),
            hash_algo=hash_algo,
            chunk_size=8192,
            expected=ExpectedDigest.parse(f"{algorithm}:{wrong}"),
        )
        received = bytearray()
        with pytest.raises(errors.ChecksumMismatch) as caught:
            async for chunk in stream:
                received += chunk
        assert bytes(received) == DATA  # every byte went through; the end was refused
        assert wrong in caught.value.message
        with pytest.raises(RuntimeError):
            _ = stream.digests

    run(scenario())


def test_expected_digest_upper_case_hex_is_normalised() -> None:
    value = f"SHA256:{hashlib.sha256(b'abc').hexdigest().upper()}"
    expected = ExpectedDigest.parse(value)
    assert expected == ExpectedDigest("sha256", hashlib.sha256(b"abc").hexdigest())
    run(drain(CheckedStream(pieces([b"abc"]), size=3, expected=expected)))


def test_expected_digest_built_directly_is_compared_case_insensitively() -> None:
    expected = ExpectedDigest("MD5", hashlib.md5(b"abc").hexdigest().upper())
    run(drain(CheckedStream(pieces([b"abc"]), size=3, expected=expected)))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("md5", id="no-separator"),
        pytest.param("md5:", id="no-digest"),
        pytest.param(":abcd", id="no-algorithm"),
        pytest.param("md5:xyz", id="not-hex"),
        pytest.param("md5:abcd", id="too-short"),
        pytest.param(f"sha256:{hashlib.sha256().hexdigest()}00", id="too-long"),
    ],
)
def test_expected_digest_parse_rejects(value: str) -> None:
    with pytest.raises(errors.InvalidRequest):
        ExpectedDigest.parse(value)


# --------------------------------------------------------------------------- unknown algorithms


@pytest.mark.parametrize("name", ["nosuchhash", "shake_128", "SHAKE_256", ""])
def test_unknown_hash_algorithm(name: str) -> None:
    with pytest.raises(errors.UnknownHashAlgorithm):
        CheckedStream(pieces([]), size=0, hash_algo=name)
    with pytest.raises(errors.UnknownHashAlgorithm):
        ExpectedDigest.parse(f"{name or 'x y'}:abcd")
    with pytest.raises(errors.UnknownHashAlgorithm):
        CheckedStream(pieces([]), size=0, expected=ExpectedDigest(name, "abcd"))


def test_unknown_hash_algorithm_is_an_invalid_request() -> None:
    with pytest.raises(errors.InvalidRequest, match="nosuchhash"):
        pipeline.new_hasher("nosuchhash")


# --------------------------------------------------------------------------- verifier and errors


def test_verifier_sees_every_byte_in_order() -> None:
    data = random_bytes(300_000, seed=11)
    verifier = RecordingVerifier()
    stream = CheckedStream(
        pieces(split(data, range(0, len(data), 7777))),
        size=len(data),
        chunk_size=65536,
        verifier=verifier,
    )
    run(drain(stream))
    assert bytes(verifier.seen) == data
    assert verifier.calls == -(-len(data) // 65536)


class VerifierFailed(Exception):
    pass


def test_verifier_failure_propagates() -> None:
    class Failing:
        def update(self, data: bytes) -> None:
            raise VerifierFailed("bad signature")

    stream = CheckedStream(pieces([b"x" * 10]), size=10, chunk_size=4, verifier=Failing())
    with pytest.raises(VerifierFailed):
        run(drain(stream))


class SourceFailed(Exception):
    pass


def test_source_failure_propagates_and_nothing_completes() -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"x" * 10
        raise SourceFailed("client went away")

    stream = CheckedStream(failing(), size=20, chunk_size=4)
    with pytest.raises(SourceFailed):
        run(drain(stream))
    with pytest.raises(RuntimeError):
        _ = stream.digests


def test_digests_before_the_end_raise() -> None:
    async def scenario() -> None:
        stream = CheckedStream(pieces([b"x" * 10]), size=10, chunk_size=4)
        with pytest.raises(RuntimeError, match="not been consumed"):
            _ = stream.digests
        iterator = aiter(stream)
        await anext(iterator)
        with pytest.raises(RuntimeError, match="not been consumed"):
            _ = stream.digests
        rest = [chunk async for chunk in iterator]
        assert len(rest) == 2
        assert stream.digests.size == 10

    run(scenario())


async def test_abandoned_stream_can_be_closed() -> None:
    stream = CheckedStream(pieces([b"x" * 100]), size=100, chunk_size=10)
    iterator = stream.__aiter__()
    assert await anext(iterator) == b"x" * 10
    await iterator.aclose()  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError):
        _ = stream.digests
