"""Reading an object: one ``GetObject``, optionally ranged, streamed chunk by chunk.

glance_store sends ``HeadObject`` then ``GetObject`` and has no ranges. Here one request
does both: a full read learns the size from ``Content-Length``; a ranged read sends
``Range`` and believes the 206 only if its ``Content-Range`` starts where we asked and ends
where the object's size says the range must end, so a caller never receives other bytes than
it asked for. The body (botocore's ``StreamingBody``) is read on the backend's threads one
chunk at a time, never whole, and is closed however the reader stops; botocore raises if it
ends before its ``Content-Length``, which becomes ``RemoteUnavailable`` mid-stream.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from kglance.drivers import _threads, base, errors
from kglance.drivers.s3 import client

READ_CHUNK = 1024 * 1024
_CONTENT_RANGE = re.compile(r"^bytes (?P<first>\d+)-(?P<last>\d+)/(?P<total>\d+|\*)$")


def served_range(
    response: Mapping[str, Any], *, asked: base.ByteRange, shown: str
) -> tuple[int, base.ByteRange]:
    """(object size, range served) from a ``GetObject`` response to a request for ``asked``."""
    length = response.get("ContentLength")
    if not isinstance(length, int) or length < 0:
        raise errors.BackendError(f"{shown}: the response has no valid Content-Length")
    content_range = response.get("ContentRange")
    if asked.is_full:
        if content_range:
            raise errors.BackendError(f"{shown}: partial content {content_range!r} for a full read")
        return length, asked.resolve(length)
    match = _CONTENT_RANGE.match(content_range or "")
    if match is None or match["total"] == "*":
        raise errors.BackendError(
            f"{shown}: range {asked} answered without a usable Content-Range ({content_range!r})"
        )
    size = int(match["total"])
    expected = asked.resolve(size)
    first, last = int(match["first"]), int(match["last"])
    if first != expected.offset or last + 1 != expected.end or length != last + 1 - first:
        raise errors.BackendError(
            f"{shown}: asked for bytes {asked}, the server sent {content_range!r} ({length} bytes)"
        )
    return size, expected


class S3Blob(base.Blob):
    """The body of one ``GetObject`` response, read on the backend's threads."""

    def __init__(
        self,
        body: Any,
        *,
        size: int,
        served: base.ByteRange,
        runner: _threads.BlockingRunner,
        translate: Callable[[Exception], errors.StoreError],
    ) -> None:
        super().__init__(size=size, served=served)
        self._body = body
        self._runner = runner
        self._translate = translate

    async def __aiter__(self) -> AsyncIterator[bytes]:
        expected = self.served.length or 0
        received = 0
        while True:
            try:
                chunk: bytes = await self._runner.run(self._body.read, READ_CHUNK)
            except client.BOTO_ERRORS as exc:
                raise self._translate(exc) from exc
            if not chunk:
                break
            received += len(chunk)
            if received > expected:
                raise errors.BackendError(f"the object sent more than the {expected} bytes asked")
            yield chunk
        if received != expected:
            raise errors.RemoteUnavailable(f"the object ended after {received} of {expected} bytes")


def close_body(response: Mapping[str, Any]) -> None:
    """Release a ``GetObject`` response's connection (dropped if the body was not read)."""
    body = response.get("Body")
    if body is not None:
        body.close()
