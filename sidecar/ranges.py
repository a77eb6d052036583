"""HTTP ``Range`` headers (RFC 9110 §14) turned into the drivers' ``ByteRange``.

Decisions, documented in the API description as well:

* one range of the ``bytes`` unit is served as ``206``: ``a-b``, ``a-`` and the suffix ``-n``
  (the last ``n`` bytes, which needs the object's size first);
* a range that cannot be satisfied (start at or past the end, ``-0``, any range of an empty
  object) and a malformed ``bytes`` range (``b < a``, not numbers) give ``416`` with
  ``Content-Range: bytes */size``;
* several ranges (``bytes=0-1,5-6``) are not served as ``multipart/byteranges``: the whole
  object is sent with ``200``, which RFC 9110 allows (a server may ignore ``Range``) and what
  a client must already handle; an unknown unit is ignored the same way;
* ``If-Range`` is never satisfied (the sidecar has no validators), so it also gives ``200``;
* ``Range`` on ``HEAD`` is ignored, as RFC 9110 requires for methods other than GET.
"""

from __future__ import annotations

import dataclasses

from kglance.drivers import base, errors


@dataclasses.dataclass(frozen=True, slots=True)
class RangeSpec:
    """``first-last`` (``last`` may be open) or, with ``suffix``, the last ``suffix`` bytes."""

    first: int | None = None
    last: int | None = None
    suffix: int | None = None

    @property
    def needs_size(self) -> bool:
        return self.suffix is not None

    def to_byte_range(self, size: int | None = None) -> base.ByteRange:
        if self.suffix is not None:
            if size is None:
                raise ValueError("a suffix range needs the object's size")
            if self.suffix == 0 or size == 0:
                raise errors.RangeNotSatisfiable(
                    f"cannot serve the last {self.suffix} bytes of a {size}-byte object",
                    size=size,
                )
            offset = max(0, size - self.suffix)
            return base.ByteRange(offset, size - offset)
        assert self.first is not None
        length = None if self.last is None else self.last - self.first + 1
        return base.ByteRange(self.first, length)

    def __str__(self) -> str:
        if self.suffix is not None:
            return f"-{self.suffix}"
        return f"{self.first}-{'' if self.last is None else self.last}"


def _number(text: str, header: str) -> int:
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        raise errors.RangeNotSatisfiable(f"malformed Range header {header[:60]!r}", size=None)
    return int(text)


def parse(header: str | None) -> RangeSpec | None:
    """The single byte range asked for, or ``None`` to serve the whole object."""
    if header is None:
        return None
    unit, sep, ranges = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    if "," in ranges:
        return None
    first, dash, last = ranges.strip().partition("-")
    if not dash:
        raise errors.RangeNotSatisfiable(f"malformed Range header {header[:60]!r}", size=None)
    if not first.strip():
        return RangeSpec(suffix=_number(last, header))
    spec = RangeSpec(
        first=_number(first, header), last=_number(last, header) if last.strip() else None
    )
    if spec.last is not None and spec.first is not None and spec.last < spec.first:
        raise errors.RangeNotSatisfiable(f"range {spec} ends before it starts", size=None)
    return spec
