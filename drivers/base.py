"""The one interface every storage driver implements.

A driver is mechanism only: it moves bytes to and from one kind of storage. Everything that is
policy (hashing, declared-size enforcement, verifiers, expected checksums, re-chunking) is
written once in ``pipeline`` around the byte stream, so a driver's ``add`` sees a plain async
iterator of ``bytes`` that raises if the stream turns out to be bad. The contract a driver keeps:

* ``add`` consumes the whole iterator and makes the object visible only after the iterator is
  exhausted without error. Any exception (from the iterator, from the storage, or cancellation)
  leaves nothing behind: no partial file, no multipart upload, no segments, no snapshot.
  With ``mode="create"`` an existing object is never touched and ``AlreadyExists`` is raised.
* ``get`` is an async context manager, so handles and connections are released however the
  consumer stops. It raises ``NotFound``/``RangeNotSatisfiable`` on entry, never mid-stream,
  and the ``Blob`` says which range it actually serves.
* ``delete`` is idempotent: a missing object is success (kopf retries finalizers).
* Optional abilities are declared in ``features``; nothing is guessed from method names.

Ranges follow one rule (see ``ByteRange.resolve``): an offset at or past the end is
unsatisfiable, a length reaching past the end is cut to what remains.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import io
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import ClassVar, Literal

import pydantic

from kglance.drivers import errors, locations

WriteMode = Literal["create", "overwrite"]


class Feature(enum.Flag):
    """What a driver can do beyond the mandatory verbs."""

    NONE = 0
    READ = enum.auto()  # get/size work
    WRITE = enum.auto()  # add/delete work
    RANGED_READ = enum.auto()  # offset/length served natively, not read-and-discard
    UNSIZED_WRITE = enum.auto()  # add() accepts size=None
    MULTIPART = enum.auto()  # large objects are uploaded in concurrent parts
    THIN_PROVISIONING = enum.auto()  # zero blocks may be skipped on write
    REUSABLE = enum.auto()  # one instance serves every request (glance's DRIVER_REUSABLE)
    LOCAL_FILE = enum.auto()  # Blob.local_file() can hand out a file for zero-copy serving


@dataclasses.dataclass(frozen=True, slots=True)
class ByteRange:
    """A request for ``length`` bytes starting at ``offset`` (``None``: to the end)."""

    offset: int = 0
    length: int | None = None

    def __post_init__(self) -> None:
        if self.offset < 0:
            raise ValueError(f"range offset must be >= 0, got {self.offset}")
        if self.length is not None and self.length <= 0:
            raise ValueError(f"range length must be > 0, got {self.length}")

    @property
    def is_full(self) -> bool:
        return self.offset == 0 and self.length is None

    @property
    def end(self) -> int | None:
        """One past the last byte asked for, or ``None`` for open-ended ranges."""
        return None if self.length is None else self.offset + self.length

    def resolve(self, size: int) -> ByteRange:
        """The range actually served from an object of ``size`` bytes.

        The full range of an empty object is the empty range (offset 0, length ``None`` and
        nothing to read); any other range of it is unsatisfiable.
        """
        if self.is_full:
            return ByteRange(0, size) if size > 0 else self
        if self.offset >= size:
            raise errors.RangeNotSatisfiable(
                f"range starts at byte {self.offset} but the object has {size} bytes",
                size=size,
            )
        remaining = size - self.offset
        length = remaining if self.length is None else min(self.length, remaining)
        return ByteRange(self.offset, length)

    def header_value(self) -> str:
        """The HTTP ``Range`` header value for this range."""
        end = self.end
        return f"bytes={self.offset}-" if end is None else f"bytes={self.offset}-{end - 1}"

    def __str__(self) -> str:
        end = self.end
        return f"{self.offset}-" if end is None else f"{self.offset}-{end - 1}"


FULL = ByteRange()


@dataclasses.dataclass(frozen=True, slots=True)
class Stored:
    """What a driver reports after a successful add."""

    location: locations.Location
    size: int
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # the md5 the storage computed over the bytes it received (a single PUT's ETag), when it
    # reports one: Backend.add compares it with the pipeline's and removes the object if they differ
    md5: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class LocalFile:
    """An open file a server may send with ``sendfile`` instead of copying through Python."""

    file: io.BufferedReader
    offset: int
    length: int


class Blob(abc.ABC):
    """An object opened for reading: its total size, the range served, and the bytes."""

    def __init__(self, *, size: int | None, served: ByteRange) -> None:
        self.size = size  # of the whole object; None when the backend does not say
        self.served = served  # resolved: offset and length actually delivered

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def local_file(self) -> LocalFile | None:
        """A file for zero-copy serving, when the driver has the ``LOCAL_FILE`` feature."""
        return None

    async def read(self) -> bytes:
        """All served bytes at once; for tests and small objects only."""
        return b"".join([chunk async for chunk in self])


class DriverOptions(pydantic.BaseModel):
    """Base of each driver's typed options, named as glance_store 5.7.0 names them."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class Driver(abc.ABC):
    """A configured connection to one storage backend.

    Subclasses set ``Options`` to their ``DriverOptions`` model and take it, already
    validated, as the first constructor argument; nothing reads files or the environment
    behind the caller's back.
    """

    Options: ClassVar[type[DriverOptions]]
    type_name: ClassVar[str]  # glance_store's store type: file, http, swift, s3, rbd, cinder
    schemes: ClassVar[tuple[str, ...]]  # URI schemes this driver reads
    features: ClassVar[Feature] = Feature.NONE
    write_chunk_size: ClassVar[int] = 1024 * 1024  # the pipeline re-chunks to this size

    def __init__(self, options: DriverOptions, *, backend_id: str) -> None:
        self.options = options
        self.backend_id = backend_id

    @abc.abstractmethod
    async def add(
        self,
        image_id: str,
        data: AsyncIterator[bytes],
        *,
        size: int | None,
        mode: WriteMode = "create",
    ) -> Stored:
        """Store all of ``data`` under ``image_id``; on any failure leave nothing behind."""

    @abc.abstractmethod
    def get(
        self, location: locations.Location, *, byte_range: ByteRange = FULL
    ) -> AbstractAsyncContextManager[Blob]:
        """Open an object for reading; raises ``NotFound``/``RangeNotSatisfiable`` on entry."""

    @abc.abstractmethod
    async def size(self, location: locations.Location) -> int:
        """The object's size in bytes; raises ``NotFound`` (never returns 0 on error)."""

    @abc.abstractmethod
    async def delete(self, location: locations.Location) -> None:
        """Remove the object; a missing object is success."""

    @abc.abstractmethod
    def owns(self, location: locations.Location) -> bool:
        """Whether ``location`` is one this backend serves (scheme and confinement)."""

    async def locate(self, image_id: str) -> locations.Location:
        """The location of the image ``add(image_id)`` stored in this backend.

        Raises ``NotFound`` when the driver can tell cheaply that there is none; otherwise the
        location may still turn out to be missing on ``get``.
        """
        raise errors.Unsupported(f"the {self.type_name} backend does not store images by id")

    async def check(self) -> None:
        """Probe reachability; raise a ``StoreError`` when the backend cannot serve."""

    async def aclose(self) -> None:
        """Release sessions, pools and connections."""
