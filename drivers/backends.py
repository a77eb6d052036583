"""A configured backend: a driver plus its id, description and weight, with the policy applied.

This is the API everything above the drivers uses (the sidecar, the operator, the glance_store
compatibility layer). It validates image ids, refuses operations the driver's features do not
allow, runs every add through ``pipeline.CheckedStream``, serves ranges natively or by skipping
for drivers without ``RANGED_READ``, and returns typed results with Glance's field names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from typing import Any

from kglance.drivers import base, errors, locations, pipeline

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_IMAGE_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}$")


def validate_image_id(image_id: str) -> str:
    """Accept Glance's UUIDs and ids of letters, digits, '-', '_' and '.' (no leading dot)."""
    if not (_UUID.fullmatch(image_id) or _IMAGE_ID.fullmatch(image_id)):  # '$' allows "\n"
        shown = repr(image_id)[:80]
        raise errors.InvalidImageId(
            f"invalid image id {shown}: use a UUID or up to 255 letters, digits, '-', '_' "
            "and '.', not starting with '.'"
        )
    return image_id


@dataclasses.dataclass(frozen=True, slots=True)
class AddResult:
    image_id: str
    backend: str
    location: locations.Location
    size: int
    checksum: str  # md5 hex, Glance's "checksum"
    os_hash_algo: str
    os_hash_value: str
    metadata: Mapping[str, str]

    def as_json(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "backend": self.backend,
            "location": self.location.uri(),
            "size": self.size,
            "checksum": self.checksum,
            "os_hash_algo": self.os_hash_algo,
            "os_hash_value": self.os_hash_value,
            "metadata": dict(self.metadata),
        }


class _SkippingBlob(base.Blob):
    """Serves a range from a driver that can only stream from the start."""

    def __init__(self, inner: base.Blob, served: base.ByteRange) -> None:
        super().__init__(size=inner.size, served=served)
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        skip = self.served.offset
        left = self.served.length
        async for chunk in self._inner:
            if skip:
                if len(chunk) <= skip:
                    skip -= len(chunk)
                    continue
                chunk, skip = chunk[skip:], 0
            if left is not None:
                if len(chunk) >= left:
                    yield chunk[:left]
                    return
                left -= len(chunk)
            yield chunk
        if left:
            raise errors.BackendError(
                f"the object ended {left} bytes before the end of range {self.served}"
            )


class Backend:
    def __init__(
        self,
        driver: base.Driver,
        *,
        backend_id: str,
        description: str | None = None,
        weight: int = 0,
    ) -> None:
        self.driver = driver
        self.id = backend_id
        self.description = description
        self.weight = weight

    @property
    def type_name(self) -> str:
        return self.driver.type_name

    @property
    def features(self) -> base.Feature:
        return self.driver.features

    def _require(self, feature: base.Feature, action: str) -> None:
        if feature not in self.driver.features:
            raise errors.Unsupported(
                f"backend {self.id!r} ({self.type_name}) does not support {action}"
            )

    def check_location(self, location: locations.Location) -> None:
        if not self.driver.owns(location):
            raise errors.InvalidLocation(
                f"location {location} does not belong to backend {self.id!r}"
            )

    async def add(
        self,
        image_id: str,
        data: AsyncIterable[bytes],
        *,
        size: int | None,
        hash_algo: str = pipeline.DEFAULT_HASH_ALGORITHM,
        verifier: pipeline.Verifier | None = None,
        expected: pipeline.ExpectedDigest | None = None,
        mode: base.WriteMode = "create",
    ) -> AddResult:
        validate_image_id(image_id)
        self._require(base.Feature.WRITE, "writing images")
        if size is None:
            self._require(base.Feature.UNSIZED_WRITE, "uploads of unknown size")
        stream = pipeline.CheckedStream(
            data,
            size=size,
            hash_algo=hash_algo,
            chunk_size=self.driver.write_chunk_size,
            verifier=verifier,
            expected=expected,
        )
        stored = await self.driver.add(image_id, aiter(stream), size=size, mode=mode)
        try:
            digests = stream.digests
        except RuntimeError:
            raise errors.BackendError(
                f"backend {self.id!r} returned before reading the whole image"
            ) from None
        if stored.size != digests.size:
            raise errors.BackendError(
                f"backend {self.id!r} stored {stored.size} bytes of {digests.size}"
            )
        if stored.md5 is not None and stored.md5.strip('"').lower() != digests.md5:
            # the bytes were damaged on their way to the storage: the image must not stay
            await self.driver.delete(stored.location)
            raise errors.BackendError(
                f"backend {self.id!r} stored bytes whose md5 {stored.md5} is not the md5 of "
                f"the image ({digests.md5}); the stored object was removed"
            )
        return AddResult(
            image_id=image_id,
            backend=self.id,
            location=stored.location.without_credentials(),
            size=digests.size,
            checksum=digests.md5,
            os_hash_algo=digests.hash_algo,
            os_hash_value=digests.hash_value,
            metadata={**stored.metadata, "store": self.id},
        )

    @contextlib.asynccontextmanager
    async def get(
        self, location: locations.Location, *, byte_range: base.ByteRange = base.FULL
    ) -> AsyncIterator[base.Blob]:
        self._require(base.Feature.READ, "reading images")
        self.check_location(location)
        if byte_range.is_full or base.Feature.RANGED_READ in self.driver.features:
            async with self.driver.get(location, byte_range=byte_range) as blob:
                yield blob
            return
        async with self.driver.get(location) as blob:
            if blob.size is None:
                raise errors.Unsupported(
                    f"backend {self.id!r} cannot serve ranges of objects of unknown size"
                )
            yield _SkippingBlob(blob, byte_range.resolve(blob.size))

    async def size(self, location: locations.Location) -> int:
        self._require(base.Feature.READ, "reading images")
        self.check_location(location)
        return await self.driver.size(location)

    async def delete(self, location: locations.Location) -> None:
        self._require(base.Feature.WRITE, "deleting images")
        self.check_location(location)
        await self.driver.delete(location)

    async def locate(self, image_id: str) -> locations.Location:
        validate_image_id(image_id)
        return await self.driver.locate(image_id)

    def describe(self, *, default: bool) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type_name,
            "description": self.description,
            "weight": self.weight,
            "default": default,
            "capabilities": [
                f.name.lower()
                for f in base.Feature
                if f.name and f in self.driver.features and f is not base.Feature.NONE
            ],
        }


class Backends:
    """The backends one process serves, by id, with the default one."""

    def __init__(self, backends: Iterable[Backend], *, default: str | None) -> None:
        self._by_id = {b.id: b for b in backends}
        if default is not None and default not in self._by_id:
            raise errors.ConfigurationError(f"default backend {default!r} is not configured")
        self.default_id = default

    def __iter__(self) -> Iterator[Backend]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, backend_id: str | None) -> Backend:
        if backend_id is None:
            if self.default_id is None:
                raise errors.UnknownBackend("no backend given and no default backend configured")
            backend_id = self.default_id
        try:
            return self._by_id[backend_id]
        except KeyError:
            raise errors.UnknownBackend(f"unknown backend {backend_id!r}") from None

    def for_location(
        self, location: locations.Location, *, backend_id: str | None = None
    ) -> Backend:
        """The backend serving ``location`` (the named one, or the first that owns it)."""
        if backend_id is not None:
            backend = self.get(backend_id)
            backend.check_location(location)
            return backend
        candidates = [b for b in self._by_id.values() if location.scheme in b.driver.schemes]
        if not candidates:
            raise errors.UnknownBackend(f"no configured backend serves location {location}")
        for backend in candidates:
            if backend.driver.owns(location):
                return backend
        raise errors.InvalidLocation(
            f"location {location} is outside every configured {location.scheme} backend"
        )

    async def aclose(self) -> None:
        for backend in self._by_id.values():
            await backend.driver.aclose()
