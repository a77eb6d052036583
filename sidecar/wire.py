"""The v1 socket protocol as clients see it: paths, header names, results and errors.

Both clients (``AsyncClient`` on aiohttp, the blocking ``Client`` on http.client) build their
requests and read their responses through these functions, so the two cannot drift apart and
the mapping from error responses back to exceptions lives in one place. That mapping turns the
server's ``{"error": {"code", "message"}}`` into the class of ``kglance.drivers.errors`` with
that ``code``, so a caller catches ``NotFound`` or ``ChecksumMismatch`` the same way whether
it runs the drivers in-process or talks to a sidecar.
"""

from __future__ import annotations

import collections
import dataclasses
import inspect
import io
import json
import os
import re
import stat
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from kglance.drivers import base, errors, pipeline

SOCKET_ENV = "KGLANCE_SOCKET"
DEFAULT_SOCKET = "./kglance.sock"

SIZE_HEADER = "X-Image-Size"
CHECKSUM_HEADER = "X-Image-Checksum"
HASH_ALGO_HEADER = "X-Image-Os-Hash-Algo"
HASH_VALUE_HEADER = "X-Image-Os-Hash-Value"
# HEAD responses have no body: the error code, when the server sends it, travels in a header
ERROR_CODE_HEADER = "X-Error-Code"

ERROR_BODY_LIMIT = 64 * 1024  # error bodies are small JSON; never buffer more than this


class SidecarUnavailable(errors.RemoteUnavailable):
    """Nothing answers on the socket, or the sidecar dropped the connection."""

    code = "sidecar_unavailable"

    def __init__(self, message: str, *, socket_path: str) -> None:
        super().__init__(message)
        self.socket_path = socket_path


def socket_path(path: str | os.PathLike[str] | None = None) -> str:
    """The socket to use: ``path``, else ``$KGLANCE_SOCKET``, else ``./kglance.sock``."""
    if path is None:
        return os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET
    return os.fspath(path)


def unreachable(path: str, exc: OSError) -> SidecarUnavailable:
    """The error for a failed connect, worded for a person at a shell."""
    if isinstance(exc, PermissionError):
        message = f"permission denied on the sidecar socket {path}"
    elif isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        message = f"no sidecar listening on {path}"
    else:
        message = f"cannot reach the sidecar on {path}: {exc.strerror or exc}"
    return SidecarUnavailable(message, socket_path=path)


def cut_short(*, received: int, expected: int | None) -> errors.RemoteUnavailable:
    of = "" if expected is None else f" of {expected}"
    return errors.RemoteUnavailable(f"the stream from the sidecar ended after {received}{of} bytes")


# -- requests -----------------------------------------------------------------------------------


def _with_query(path: str, query: Mapping[str, str | None]) -> str:
    present = {key: value for key, value in query.items() if value is not None}
    return f"{path}?{urllib.parse.urlencode(present)}" if present else path


def image_path(image_id: str, *, backend: str | None = None, hash_algo: str | None = None) -> str:
    quoted = urllib.parse.quote(image_id, safe="")
    return _with_query(f"/v1/images/{quoted}", {"backend": backend, "hash": hash_algo})


def data_path(location: str, *, backend: str | None = None) -> str:
    return _with_query("/v1/data", {"location": location, "backend": backend})


def range_headers(byte_range: base.ByteRange | None) -> dict[str, str]:
    if byte_range is None or byte_range.is_full:
        return {}
    return {"Range": byte_range.header_value()}


def put_headers(
    *, declared_size: int | None, content_length: int | None, checksum: str | None
) -> dict[str, str]:
    """Headers of a PUT: ``Content-Length`` when the length is known, else a chunked body
    with the size (if the caller knows it) in ``X-Image-Size``."""
    headers = {"Content-Type": "application/octet-stream"}
    if content_length is not None:
        headers["Content-Length"] = str(content_length)
    elif declared_size is not None:
        headers[SIZE_HEADER] = str(declared_size)
    if checksum is not None:
        headers[CHECKSUM_HEADER] = checksum
    return headers


# -- results ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class PutResult:
    """What a PUT stored, with Glance's field names (``checksum`` is the md5 hex)."""

    image_id: str
    backend: str
    location: str
    size: int
    checksum: str
    os_hash_algo: str
    os_hash_value: str
    metadata: Mapping[str, str]

    @classmethod
    def from_json(cls, data: Any) -> PutResult:
        try:
            return cls(
                image_id=str(data["image_id"]),
                backend=str(data["backend"]),
                location=str(data["location"]),
                size=int(data["size"]),
                checksum=str(data["checksum"]),
                os_hash_algo=str(data["os_hash_algo"]),
                os_hash_value=str(data["os_hash_value"]),
                metadata={str(k): str(v) for k, v in dict(data.get("metadata") or {}).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise errors.BackendError(f"the sidecar sent a malformed PUT result: {exc}") from exc

    def as_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "metadata": dict(self.metadata)}

    def digests(self) -> tuple[pipeline.ExpectedDigest, ...]:
        return (
            pipeline.ExpectedDigest(algorithm="md5", hexdigest=self.checksum),
            pipeline.ExpectedDigest(algorithm=self.os_hash_algo, hexdigest=self.os_hash_value),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class BackendInfo:
    id: str
    type: str
    description: str | None
    weight: int
    default: bool
    capabilities: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Any) -> BackendInfo:
        try:
            description = data.get("description")
            return cls(
                id=str(data["id"]),
                type=str(data["type"]),
                description=None if description is None else str(description),
                weight=int(data.get("weight") or 0),
                default=bool(data.get("default")),
                capabilities=tuple(str(c) for c in data.get("capabilities") or ()),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise errors.BackendError(f"the sidecar sent a malformed backend: {exc}") from exc

    def as_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "capabilities": list(self.capabilities)}


@dataclasses.dataclass(frozen=True, slots=True)
class ImageInfo:
    """What a HEAD tells: the size, and the digests when the backend keeps them."""

    size: int
    digests: tuple[pipeline.ExpectedDigest, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Served:
    """What a GET response serves: the object's size, the range, and any known digests."""

    size: int | None
    served: base.ByteRange
    digests: tuple[pipeline.ExpectedDigest, ...] = ()

    @property
    def length(self) -> int | None:
        """How many body bytes to expect (``None``: the sidecar did not say)."""
        if self.served.length is not None:
            return self.served.length
        return None if self.size is None else self.size - self.served.offset


_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


def digests_from(headers: Mapping[str, str]) -> tuple[pipeline.ExpectedDigest, ...]:
    """The digests the sidecar reports for the whole image (none when it does not know)."""
    found: list[pipeline.ExpectedDigest] = []
    try:
        checksum = headers.get(CHECKSUM_HEADER)
        if checksum:
            value = checksum if ":" in checksum else f"md5:{checksum}"
            found.append(pipeline.ExpectedDigest.parse(value))
        algo, hexdigest = headers.get(HASH_ALGO_HEADER), headers.get(HASH_VALUE_HEADER)
        if algo and hexdigest:
            found.append(pipeline.ExpectedDigest.parse(f"{algo}:{hexdigest}"))
    except errors.InvalidRequest as exc:
        raise errors.BackendError(f"the sidecar sent a malformed digest header: {exc}") from exc
    return tuple(found)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.BackendError(f"the sidecar sent {name}: {value!r}") from None


def image_info(headers: Mapping[str, str]) -> ImageInfo:
    size = _int_header(headers, "Content-Length")
    if size is None:
        raise errors.BackendError("the sidecar answered HEAD without a Content-Length")
    return ImageInfo(size=size, digests=digests_from(headers))


def served_from(*, status: int, headers: Mapping[str, str]) -> Served:
    """Read the served range from a 200 or 206 response's headers."""
    length = _int_header(headers, "Content-Length")
    digests = digests_from(headers)
    if status != 206:
        served = base.ByteRange(0, length) if length else base.FULL
        return Served(size=length, served=served, digests=digests)
    value = headers.get("Content-Range", "")
    match = _CONTENT_RANGE.match(value.strip())
    if match is None or int(match[2]) < int(match[1]):
        raise errors.BackendError(f"the sidecar sent 206 with Content-Range {value!r}")
    first, last, total = int(match[1]), int(match[2]), match[3]
    return Served(
        size=None if total == "*" else int(total),
        served=base.ByteRange(first, last - first + 1),
        digests=digests,
    )


# -- errors -------------------------------------------------------------------------------------


def _walk_error_tree() -> tuple[
    Mapping[str, type[errors.StoreError]], Mapping[int, type[errors.StoreError]]
]:
    """Every ``StoreError`` class by code, and the shallowest class for each HTTP status."""
    by_code: dict[str, type[errors.StoreError]] = {}
    by_status: dict[int, type[errors.StoreError]] = {}
    pending: collections.deque[type[errors.StoreError]] = collections.deque([errors.StoreError])
    while pending:  # breadth first: a parent before its children, siblings in source order
        cls = pending.popleft()
        by_code.setdefault(cls.code, cls)
        by_status.setdefault(cls.http_status, cls)
        pending.extend(cls.__subclasses__())
    return MappingProxyType(by_code), MappingProxyType(by_status)


ERROR_CLASSES, _CLASS_BY_STATUS = _walk_error_tree()


def _error_fields(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    error = document.get("error") if isinstance(document, dict) else None
    return error if isinstance(error, dict) else {}


def _unsatisfiable_size(headers: Mapping[str, str]) -> int | None:
    match = re.match(r"^bytes \*/(\d+)$", headers.get("Content-Range", "").strip())
    return int(match[1]) if match else None


def error_from_response(
    *, request: str, status: int, reason: str, headers: Mapping[str, str], body: bytes
) -> errors.StoreError:
    """The exception an error response stands for.

    A JSON error body names the class by ``code``. A code this client does not know (one the
    sidecar adds later, or one of its HTTP-level codes such as ``method_not_allowed``) and a
    response without a body (HEAD) fall back to the shallowest class with that HTTP status,
    so ``400`` is at least ``InvalidRequest`` and anything else at least ``StoreError``.
    Without a message the error names ``request`` (``"HEAD /v1/images/x"``).
    Constructor-only attributes of a class (``SizeMismatch.expected``,
    ``RangeNotSatisfiable.size``) are filled from same-named fields of the error body, or
    ``None`` when the server does not send them.
    """
    fields = _error_fields(body)
    code = fields.get("code") or headers.get(ERROR_CODE_HEADER)
    cls = ERROR_CLASSES.get(code) if isinstance(code, str) else None
    if cls is None:
        cls = _CLASS_BY_STATUS.get(status, errors.StoreError)
    message = fields.get("message")
    if not isinstance(message, str) or not message:
        text = body[:200].decode("utf-8", "replace").strip()
        message = f"{request} answered {status} {reason}" + (f": {text}" if text else "")
    exc = cls.__new__(cls)
    errors.StoreError.__init__(exc, message)
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            setattr(exc, name, fields.get(name))
    if isinstance(exc, errors.RangeNotSatisfiable) and exc.size is None:
        exc.size = _unsatisfiable_size(headers)
    return exc


# -- request bodies -----------------------------------------------------------------------------


@runtime_checkable
class Readable(Protocol):
    """A binary file, or anything with a file's ``read``."""

    def read(self, size: int = -1, /) -> bytes: ...


def regular_file_length(file: Any) -> int | None:
    """Bytes left to read in ``file`` when it is a regular file (``None``: pipe, socket...)."""
    try:
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode):
            return None
        position: int = file.tell()
        return max(status.st_size - position, 0)
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        return None


def size_guard(received: int, *, expected: int | None, final: bool) -> None:
    """Raise ``SizeMismatch`` once a body turns out longer, or at its end shorter, than told.

    A body that stopped short of its ``Content-Length`` would leave client and server both
    waiting; raising instead aborts the request, and the server drops the partial upload.
    """
    if expected is None:
        return
    if received > expected or (final and received != expected):
        raise errors.SizeMismatch(
            f"the upload was declared as {expected} bytes but the data "
            f"{'gave' if final else 'went past that at'} {received} bytes",
            expected=expected,
            received=received,
        )


def read_chunks(file: Readable, *, expected: int | None, chunk_size: int) -> Iterator[bytes]:
    received = 0
    while chunk := file.read(chunk_size):
        received += len(chunk)
        size_guard(received, expected=expected, final=False)
        yield chunk
    size_guard(received, expected=expected, final=True)


def checked_chunks(chunks: Iterable[bytes], *, expected: int | None) -> Iterator[bytes]:
    received = 0
    for chunk in chunks:
        received += len(chunk)
        size_guard(received, expected=expected, final=False)
        if chunk:
            yield chunk
    size_guard(received, expected=expected, final=True)
