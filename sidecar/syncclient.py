"""The blocking client: ``AsyncClient``'s API on the standard library's ``http.client``.

Why not run ``AsyncClient`` on a private event loop in a thread: every chunk of every transfer
would cross threads through a future, the client would own a thread and a loop that someone
must shut down, and it would not survive a fork. ``http.client`` over an ``AF_UNIX`` socket
takes a dozen lines, streams both ways (an iterable body is sent as it is produced, a response
is read chunk by chunk), needs no thread and no loop, and keeps the ``kglance`` command from
importing aiohttp. Both clients build requests and read responses through ``wire``, so they
cannot disagree about the protocol.

Each request opens its own connection: connecting to a Unix socket costs microseconds, and no
request can then land on a keep-alive connection the sidecar has already closed. A ``Client``
is not meant to be shared between threads.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Self

from kglance import __version__
from kglance.drivers import base, errors
from kglance.sidecar import wire
from kglance.sidecar.wire import BackendInfo, ImageInfo, PutResult, SidecarUnavailable

Body = bytes | bytearray | memoryview | wire.Readable | Iterable[bytes]
_ANY_STATUS = tuple(range(100, 600))


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, *, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _headers(response: http.client.HTTPResponse) -> dict[str, str]:
    """Response headers under canonical names (``wire`` looks them up as ``Content-Length``)."""
    return {name.title(): value for name, value in response.getheaders()}


class Download:
    """An open GET response: ``size`` of the image, the ``served`` range, then the bytes."""

    def __init__(
        self, response: http.client.HTTPResponse, info: wire.Served, *, chunk_size: int
    ) -> None:
        self._response = response
        self._chunk_size = chunk_size
        self.info = info

    @property
    def size(self) -> int | None:
        return self.info.size

    @property
    def served(self) -> base.ByteRange:
        return self.info.served

    def __iter__(self) -> Iterator[bytes]:
        expected = self.info.length
        received = 0
        while True:
            try:
                chunk = self._response.read1(self._chunk_size)
            except (http.client.HTTPException, OSError) as exc:
                raise wire.cut_short(received=received, expected=expected) from exc
            if not chunk:
                break
            received += len(chunk)
            yield chunk
        if expected is not None and received != expected:
            raise wire.cut_short(received=received, expected=expected)

    def read(self) -> bytes:
        """Every served byte at once; for small objects and tests."""
        return b"".join(self)


class Client:
    """A blocking client of the sidecar on ``socket_path``; usable as a context manager.

    ``timeout`` bounds each wait on the socket (connecting, sending, the next bytes of a
    response), not a whole transfer.
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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Nothing stays open between requests; kept for symmetry with ``AsyncClient``."""

    def _dropped(self, exc: BaseException) -> SidecarUnavailable:
        if isinstance(exc, TimeoutError):
            message = f"the sidecar on {self.socket_path} did not answer within {self._timeout} s"
        else:
            message = f"the sidecar on {self.socket_path} dropped the connection: {exc}"
        return SidecarUnavailable(message, socket_path=self.socket_path)

    def _send(
        self,
        connection: _UnixConnection,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        body: Any,
    ) -> http.client.HTTPResponse:
        try:
            connection.connect()
        except OSError as exc:
            raise wire.unreachable(self.socket_path, exc) from exc
        headers = {"User-Agent": f"kglance-client/{__version__}", **headers}
        try:
            connection.request(method, path, body=body, headers=headers)
        except (BrokenPipeError, ConnectionResetError) as exc:
            # The sidecar may have refused the upload early (409, 400, ...) and closed its
            # end: its answer is still waiting to be read, and it says more than EPIPE does.
            try:
                return connection.getresponse()
            except (http.client.HTTPException, OSError):
                raise self._dropped(exc) from exc
        except TimeoutError as exc:
            raise self._dropped(exc) from exc
        try:
            return connection.getresponse()
        except (http.client.HTTPException, OSError) as exc:
            raise self._dropped(exc) from exc

    @contextlib.contextmanager
    def _request(
        self,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...],
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Iterator[http.client.HTTPResponse]:
        connection = _UnixConnection(self.socket_path, timeout=self._timeout)
        try:
            response = self._send(connection, method, path, headers=headers or {}, body=body)
            if response.status not in ok:
                try:
                    text = b"" if method == "HEAD" else response.read(wire.ERROR_BODY_LIMIT)
                except (http.client.HTTPException, OSError):
                    text = b""
                raise wire.error_from_response(
                    request=f"{method} {path.partition('?')[0]}",
                    status=response.status,
                    reason=response.reason,
                    headers=_headers(response),
                    body=text,
                )
            yield response
        finally:
            connection.close()

    def _read_all(self, response: http.client.HTTPResponse) -> bytes:
        try:
            return response.read()
        except (http.client.HTTPException, OSError) as exc:
            raise self._dropped(exc) from exc

    def _read_json(self, response: http.client.HTTPResponse) -> Any:
        try:
            return json.loads(self._read_all(response))
        except ValueError as exc:
            raise errors.BackendError(f"the sidecar sent invalid JSON: {exc}") from exc

    def _body(self, data: Body, *, size: int | None) -> tuple[Any, int | None]:
        """The http.client body for ``data`` and its length when known up front."""
        if isinstance(data, bytes | bytearray | memoryview):
            nbytes = memoryview(data).nbytes
            wire.size_guard(nbytes, expected=size, final=True)
            return data, nbytes
        if isinstance(data, wire.Readable):
            length = size if size is not None else wire.regular_file_length(data)
            file_chunks = wire.read_chunks(data, expected=length, chunk_size=self._chunk_size)
            return file_chunks, length
        return (chunk for chunk in data if chunk), None  # chunked, held to X-Image-Size

    def put(
        self,
        image_id: str,
        data: Body,
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
        with self._request("PUT", path, ok=(201,), headers=headers, body=body) as response:
            return PutResult.from_json(self._read_json(response))

    @contextlib.contextmanager
    def _download(self, path: str, byte_range: base.ByteRange | None) -> Iterator[Download]:
        headers = wire.range_headers(byte_range)
        with self._request("GET", path, ok=(200, 206), headers=headers) as response:
            info = wire.served_from(status=response.status, headers=_headers(response))
            yield Download(response, info, chunk_size=self._chunk_size)

    def get(
        self,
        image_id: str,
        *,
        backend: str | None = None,
        byte_range: base.ByteRange | None = None,
    ) -> contextlib.AbstractContextManager[Download]:
        """Open the image for streaming: ``with client.get(id) as d: for chunk in d: ...``."""
        return self._download(wire.image_path(image_id, backend=backend), byte_range)

    def read_location(
        self,
        location: str,
        *,
        backend: str | None = None,
        byte_range: base.ByteRange | None = None,
    ) -> contextlib.AbstractContextManager[Download]:
        """Open an object by location URI (http store, existing Glance locations)."""
        return self._download(wire.data_path(location, backend=backend), byte_range)

    def head(self, image_id: str, *, backend: str | None = None) -> ImageInfo:
        path = wire.image_path(image_id, backend=backend)
        with self._request("HEAD", path, ok=(200,)) as response:
            return wire.image_info(_headers(response))

    def stat(self, image_id: str, *, backend: str | None = None) -> int:
        """The image's size in bytes."""
        return self.head(image_id, backend=backend).size

    def stat_location(self, location: str, *, backend: str | None = None) -> int:
        path = wire.data_path(location, backend=backend)
        with self._request("HEAD", path, ok=(200,)) as response:
            return wire.image_info(_headers(response)).size

    def delete(self, image_id: str, *, backend: str | None = None) -> None:
        path = wire.image_path(image_id, backend=backend)
        with self._request("DELETE", path, ok=(200, 204)) as response:
            self._read_all(response)

    def backends(self) -> list[BackendInfo]:
        with self._request("GET", "/v1/backends", ok=(200,)) as response:
            document = self._read_json(response)
        if not isinstance(document, list):
            raise errors.BackendError("the sidecar's /v1/backends is not a JSON list")
        return [BackendInfo.from_json(item) for item in document]

    def health(self) -> bool:
        """Whether the sidecar process is alive (``/healthz``)."""
        return self._probe("/healthz")

    def ready(self) -> bool:
        """Whether the configuration loaded and every backend is configured (``/readyz``)."""
        return self._probe("/readyz")

    def _probe(self, path: str) -> bool:
        with self._request("GET", path, ok=_ANY_STATUS) as response:
            self._read_all(response)
            return response.status == 200

    def metrics(self) -> str:
        """The Prometheus text exposition of ``/metrics``."""
        with self._request("GET", "/metrics", ok=(200,)) as response:
            return self._read_all(response).decode("utf-8")
