"""ByteRange: the one rule every driver and the range fallback serve ranges by."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kglance.drivers import errors
from kglance.drivers.base import FULL, ByteRange


@pytest.mark.parametrize(
    ("requested", "size", "served"),
    [
        pytest.param(FULL, 10, ByteRange(0, 10), id="full"),
        pytest.param(FULL, 0, ByteRange(0, None), id="full-of-empty-object"),
        pytest.param(ByteRange(0, 1), 10, ByteRange(0, 1), id="first-byte"),
        pytest.param(ByteRange(9, 1), 10, ByteRange(9, 1), id="last-byte"),
        pytest.param(ByteRange(9), 10, ByteRange(9, 1), id="open-ended-last-byte"),
        pytest.param(ByteRange(3), 10, ByteRange(3, 7), id="open-ended"),
        pytest.param(ByteRange(0, 10), 10, ByteRange(0, 10), id="exactly-everything"),
        pytest.param(ByteRange(5, 100), 10, ByteRange(5, 5), id="length-past-end-truncated"),
        pytest.param(ByteRange(0, 100), 10, ByteRange(0, 10), id="longer-than-object"),
    ],
)
def test_resolve(requested: ByteRange, size: int, served: ByteRange) -> None:
    assert requested.resolve(size) == served


@pytest.mark.parametrize(
    ("requested", "size"),
    [
        pytest.param(ByteRange(10), 10, id="offset-at-end"),
        pytest.param(ByteRange(11, 1), 10, id="offset-past-end"),
        pytest.param(ByteRange(0, 1), 0, id="first-byte-of-empty-object"),
        pytest.param(ByteRange(1), 0, id="open-ended-in-empty-object"),
    ],
)
def test_unsatisfiable(requested: ByteRange, size: int) -> None:
    with pytest.raises(errors.RangeNotSatisfiable) as caught:
        requested.resolve(size)
    assert caught.value.size == size
    assert caught.value.http_status == 416


def test_resolved_empty_object_serves_nothing() -> None:
    served = FULL.resolve(0)
    assert served.is_full
    assert served.end is None


@given(
    offset=st.integers(min_value=0, max_value=10_000),
    length=st.none() | st.integers(min_value=1, max_value=10_000),
    size=st.integers(min_value=0, max_value=10_000),
)
def test_resolve_serves_the_overlap(offset: int, length: int | None, size: int) -> None:
    requested = ByteRange(offset, length)
    wanted = range(size)[offset : None if length is None else offset + length]
    try:
        served = requested.resolve(size)
    except errors.RangeNotSatisfiable:
        assert offset >= size and not (requested.is_full and size == 0)
        return
    if size == 0:
        assert served == ByteRange(0, None)
        return
    assert served.length is not None
    assert range(served.offset, served.offset + served.length) == wanted
    assert served.resolve(size) == served  # resolving is idempotent


@pytest.mark.parametrize(
    ("byte_range", "header", "text"),
    [
        pytest.param(ByteRange(0, 1), "bytes=0-0", "0-0", id="first-byte"),
        pytest.param(ByteRange(5), "bytes=5-", "5-", id="open-ended"),
        pytest.param(FULL, "bytes=0-", "0-", id="full"),
        pytest.param(ByteRange(100, 50), "bytes=100-149", "100-149", id="middle"),
    ],
)
def test_header_value(byte_range: ByteRange, header: str, text: str) -> None:
    assert byte_range.header_value() == header
    assert str(byte_range) == text


def test_end() -> None:
    assert ByteRange(3, 4).end == 7
    assert ByteRange(3).end is None


def test_is_full() -> None:
    assert FULL.is_full
    assert ByteRange().is_full
    assert not ByteRange(0, 5).is_full
    assert not ByteRange(1).is_full


@pytest.mark.parametrize(
    ("offset", "length"),
    [
        pytest.param(-1, None, id="negative-offset"),
        pytest.param(0, 0, id="zero-length"),
        pytest.param(3, -2, id="negative-length"),
    ],
)
def test_validation(offset: int, length: int | None) -> None:
    with pytest.raises(ValueError, match="range"):
        ByteRange(offset, length)


def test_value_type() -> None:
    assert ByteRange(1, 2) == ByteRange(1, 2)
    assert hash(ByteRange(1, 2)) == hash(ByteRange(1, 2))
    assert ByteRange(1, 2) != ByteRange(1, 3)
