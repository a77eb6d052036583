"""Clients for the sidecar's socket API: ``AsyncClient`` (aiohttp) and ``Client`` (blocking).

Applications, the tests and the other components talk to a sidecar through these rather than
through raw HTTP, so that the bytes stream in both directions without being buffered, errors
arrive as the same ``kglance.drivers.errors`` classes the drivers raise in-process, and the
socket path is found the same way everywhere (argument, ``$KGLANCE_SOCKET``, ``./kglance.sock``)::

    async with AsyncClient() as client:
        stored = await client.put(image_id, open("disk.img", "rb"))
        async with client.get(image_id, byte_range=ByteRange(0, 512)) as download:
            async for chunk in download:
                ...

``Client`` has the same methods without ``await``; see ``syncclient`` for why it is built on
``http.client`` rather than on this class.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from types import TracebackType
from typing import Any, Self

import aiohttp
import yarl

from kglance import __version__
from kglance.drivers import base, errors
from kglance.sidecar import wire
from kglance.sidecar.syncclient import Client, Download
from kglance.sidecar.wire import BackendInfo, ImageInfo, PutResult, SidecarUnavailable

__all__ = [
    "AsyncClient",
    "AsyncDownload",
    "BackendInfo",
    "Client",
    "Download",
    "ImageInfo",
    "PutResult",
    "SidecarUnavailable",
]

AsyncBody = bytes | bytearray | memoryview | wire.Readable | AsyncIterable[bytes]
_ORIGIN = "http://localhost"  # the host part is ignored on a Unix socket
_ANY_STATUS = tuple(range(100, 600))


class AsyncDownload:
    """An open GET response: ``size`` of the image, the ``served`` range, then the bytes."""

    def __init__(self, response: aiohttp.ClientResponse, info: wire.Served) -> None:
        self._response = response
        self.info = info

    @property
    def size(self) -> int | None:
        return self.info.size

    @property
    def served(self) -> base.ByteRange:
        return self.info.served

    async def __aiter__(self) -> AsyncIterator[bytes]:
        expected = self.info.length
        received = 0
        try:
            async for chunk in self._response.content.iter_any():
                received += len(chunk)
                yield chunk
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            raise wire.cut_short(received=received, expected=expected) from exc
        if expected is not None and received != expected:
            raise wire.cut_short(received=received, expected=expected)

    async def read(self) -> bytes:
        """Every served byte at once; for small objects and tests."""
        return b"".join([chunk async for chunk in self])


async def _slices(view: memoryview, *, chunk_size: int) -> AsyncIterator[memoryview]:
    """A bytes body in pieces (not copied), so that sending a large one never holds the loop."""
    for start in range(0, view.nbytes, chunk_size):
        yield view[start : start + chunk_size]


async def _file_chunks(
    file: wire.Readable, *, expected: int | None, chunk_size: int
) -> AsyncIterator[bytes]:
    received = 0
    while chunk := await asyncio.to_thread(file.read, chunk_size):
        received += len(chunk)
        wire.size_guard(received, expected=expected, final=False)
        yield chunk
    wire.size_guard(received, expected=expected, final=True)


class AsyncClient:
    """One aiohttp session over the sidecar's Unix socket; use as an async context manager.

    ``timeout`` bounds each wait for the socket (connecting, or the next bytes of a response),
    not a whole transfer, so large images never time out while they move.
    """

    def __init__(
        self,
        socket_path: str | None = None,
        *,
        timeout: float | None = 300.0,
        chunk_size: int = 1024 * 1024,
    ) -> None:
        self.socket_path = wire.socket_path(socket_path)
        self._timeout = timeout
        self._chunk_size = chunk_size
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=self.socket_path),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self._timeout, sock_read=self._timeout
                ),
                auto_decompress=False,
                skip_auto_headers=("Accept-Encoding",),
                headers={"User-Agent": f"kglance-client/{__version__}"},
            )
        return self._session

    @contextlib.asynccontextmanager
    async def _request(
        self,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...],
        headers: Mapping[str, str] | None = None,
        data: Any = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        session = self._open()
        try:
            # ``wire`` encodes paths already; yarl must not re-encode them, nor resolve an
            # image id ".." as a dot segment (the sidecar must see it, to refuse it)
            url = yarl.URL(_ORIGIN + path, encoded=True)
            async with session.request(
                method, url, headers=headers, data=data, allow_redirects=False
            ) as response:
                if response.status not in ok:
                    body = b"" if method == "HEAD" else await _error_body(response)
                    raise wire.error_from_response(
                        request=f"{method} {path.partition('?')[0]}",
                        status=response.status,
                        reason=response.reason or "",
                        headers=response.headers,
                        body=body,
                    )
                yield response
        except aiohttp.ClientConnectorError as exc:
            raise wire.unreachable(self.socket_path, exc.os_error) from exc
        except aiohttp.ServerTimeoutError as exc:
            raise SidecarUnavailable(
                f"the sidecar on {self.socket_path} did not answer within {self._timeout} s",
                socket_path=self.socket_path,
            ) from exc
        except aiohttp.ClientConnectionError as exc:
            own = _own_error(exc)
            if own is not None:  # raised by our request body (a size guard), not the socket
                raise own from None
            raise SidecarUnavailable(
                f"the sidecar on {self.socket_path} dropped the connection: {exc}",
                socket_path=self.socket_path,
            ) from exc

    def _body(self, data: AsyncBody, *, size: int | None) -> tuple[Any, int | None]:
        """The aiohttp body for ``data`` and its length when known up front."""
        if isinstance(data, bytes | bytearray | memoryview):
            view = memoryview(data).cast("B")
            wire.size_guard(view.nbytes, expected=size, final=True)
            return _slices(view, chunk_size=self._chunk_size), view.nbytes
        if isinstance(data, AsyncIterable):
            return data, None  # chunked; the server holds it to X-Image-Size
        length = size if size is not None else wire.regular_file_length(data)
        return _file_chunks(data, expected=length, chunk_size=self._chunk_size), length

    async def put(
        self,
        image_id: str,
        data: AsyncBody,
        *,
        size: int | None = None,
        backend: str | None = None,
        hash_algo: str | None = None,
        checksum: str | None = None,
    ) -> PutResult:
        """Store ``data`` as ``image_id``; ``checksum`` is ``<algorithm>:<hex>`` to verify."""
        body, length = self._body(data, size=size)
        headers = wire.put_headers(declared_size=size, content_length=length, checksum=checksum)
        path = wire.image_path(image_id, backend=backend, hash_algo=hash_algo)
        async with self._request("PUT", path, ok=(201,), headers=headers, data=body) as response:
            return PutResult.from_json(await response.json(content_type=None))

    @contextlib.asynccontextmanager
    async def _download(
        self, path: str, byte_range: base.ByteRange | None
    ) -> AsyncIterator[AsyncDownload]:
        headers = wire.range_headers(byte_range)
        async with self._request("GET", path, ok=(200, 206), headers=headers) as response:
            info = wire.served_from(status=response.status, headers=response.headers)
            yield AsyncDownload(response, info)

    def get(
        self,
        image_id: str,
        *,
        backend: str | None = None,
        byte_range: base.ByteRange | None = None,
    ) -> contextlib.AbstractAsyncContextManager[AsyncDownload]:
        """Open the image for streaming: ``async with client.get(id) as d: async for ...``."""
        return self._download(wire.image_path(image_id, backend=backend), byte_range)

    def read_location(
        self,
        location: str,
        *,
        backend: str | None = None,
        byte_range: base.ByteRange | None = None,
    ) -> contextlib.AbstractAsyncContextManager[AsyncDownload]:
        """Open an object by location URI (http store, existing Glance locations)."""
        return self._download(wire.data_path(location, backend=backend), byte_range)

    async def head(self, image_id: str, *, backend: str | None = None) -> ImageInfo:
        path = wire.image_path(image_id, backend=backend)
        async with self._request("HEAD", path, ok=(200,)) as response:
            return wire.image_info(response.headers)

    async def stat(self, image_id: str, *, backend: str | None = None) -> int:
        """The image's size in bytes."""
        return (await self.head(image_id, backend=backend)).size

    async def stat_location(self, location: str, *, backend: str | None = None) -> int:
        path = wire.data_path(location, backend=backend)
        async with self._request("HEAD", path, ok=(200,)) as response:
            return wire.image_info(response.headers).size

    async def delete(self, image_id: str, *, backend: str | None = None) -> None:
        path = wire.image_path(image_id, backend=backend)
        async with self._request("DELETE", path, ok=(200, 204)):
            pass

    async def backends(self) -> list[BackendInfo]:
        async with self._request("GET", "/v1/backends", ok=(200,)) as response:
            document = await response.json(content_type=None)
        if not isinstance(document, list):
            raise errors.BackendError("the sidecar's /v1/backends is not a JSON list")
        return [BackendInfo.from_json(item) for item in document]

    async def health(self) -> bool:
        """Whether the sidecar process is alive (``/healthz``)."""
        return await self._probe("/healthz")

    async def ready(self) -> bool:
        """Whether the configuration loaded and every backend is configured (``/readyz``)."""
        return await self._probe("/readyz")

    async def _probe(self, path: str) -> bool:
        async with self._request("GET", path, ok=_ANY_STATUS) as response:
            await response.read()
            return response.status == 200

    async def metrics(self) -> str:
        """The Prometheus text exposition of ``/metrics``."""
        async with self._request("GET", "/metrics", ok=(200,)) as response:
            return await response.text()


def _own_error(exc: BaseException) -> errors.StoreError | None:
    """A ``StoreError`` aiohttp wrapped while it consumed the request body."""
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, errors.StoreError):
            return cause
        cause = cause.__cause__
    return None


async def _error_body(response: aiohttp.ClientResponse) -> bytes:
    try:
        return await response.content.read(wire.ERROR_BODY_LIMIT)
    except aiohttp.ClientError:
        return b""
