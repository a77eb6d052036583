"""``AdaptedStore``: a glance_store store whose I/O is done by a kglance backend.

Every store module under ``_drivers`` is a thin subclass naming its kglance store type, its
schemes, its options and its ``StoreLocation``; everything else is here, once:

* ``configure_add`` reads the store's options from its oslo group (with the
  ``[backend_defaults]`` fallback), keeps those the kglance driver's ``Options`` model
  declares, and builds the driver through ``kglance.drivers.registry.Registry``; the
  capabilities are then derived from the driver's ``Feature`` flags. A store whose driver
  cannot be built (bad options, missing SDK, a driver not written yet) raises
  ``BadStoreConfiguration`` and, like glance_store, is left with adds disabled.
* ``add``/``get``/``get_size``/``delete`` run the backend's coroutines on the store's own
  event loop thread (``_bridge.LoopRunner``) and translate kglance errors (``_translate``).
* ``add`` reads the caller's data (``read(n)`` of a file-like object, or iteration) on the
  caller's thread and hands it to the backend through a bounded ``Channel``; an error raised
  by the caller's data is passed into the upload, so the backend leaves nothing behind, and
  re-raised unchanged. ``image_size`` 0 means "unknown", as in Glance.
* ``get`` returns ``(ImageIterator, size)`` as soon as the image is open; the iterator
  streams through a bounded ``Channel`` and closes the image when it is exhausted, closed
  or garbage-collected.

The call shapes of ``add`` are explicit: without ``hashing_algo`` (glance_store's legacy
``store.add(image_id, data, size, context=..., verifier=...)``) the result is the 4-tuple
``(url, size, md5, metadata)``; with it, the 5-tuple ``(url, size, md5, multihash,
metadata)``. Nothing is guessed from argument types beyond refusing a non-string algorithm.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import weakref
from collections.abc import Coroutine, Iterable, Iterator
from typing import Any, ClassVar, TypeVar

from kglance.drivers import backends, base, errors, locations, pipeline
from kglance.drivers.glance_store import _options, _state, capabilities, driver, exceptions
from kglance.drivers.glance_store import location as location_module
from kglance.drivers.glance_store._bridge import Channel, ChannelClosed, LoopRunner
from kglance.drivers.glance_store._indexable import Indexable
from kglance.drivers.glance_store._translate import Operation, translate

T = TypeVar("T")

READ_QUEUE_CHUNKS = 4  # chunks buffered between a store's loop and the reading thread
WRITE_QUEUE_CHUNKS = 2  # chunks of WRITE_CHUNKSIZE buffered on their way to the backend


class _Resources:
    """What a store must release: its event-loop thread and its kglance driver."""

    def __init__(self, *, name: str) -> None:
        self.runner = LoopRunner(name=name)
        self.backend: backends.Backend | None = None

    def close(self) -> None:
        backend, self.backend = self.backend, None
        self.runner.close(backend.driver.aclose() if backend is not None else None)


class _SourceFailed(Exception):
    """Raised into an upload when the caller's data source failed (its error is re-raised)."""


def _chunks_of(data: Any, chunk_size: int) -> Iterator[bytes]:
    """The caller's image data: ``read(chunk_size)`` until empty, or the items of an iterable."""
    read = getattr(data, "read", None)
    if read is not None:
        while chunk := read(chunk_size):
            yield chunk
        return
    iterable: Iterable[bytes] = data
    for chunk in iterable:
        if chunk:
            yield chunk


def _received(channel: Channel[bytes], *, shown: str, store_name: str) -> Iterator[bytes]:
    while True:
        try:
            chunk = channel.get_sync()
        except ChannelClosed:
            return
        except errors.StoreError as exc:
            raise translate(exc, operation="get", image=shown, store_name=store_name) from exc
        except asyncio.CancelledError as exc:
            raise exceptions.BackendException(
                f"the store was closed while {shown} was being read"
            ) from exc
        if chunk is None:
            return
        yield chunk


class ImageIterator(Indexable):
    """The image data ``get`` returns: chunks of bytes, streamed, and ``len()`` the size."""

    def __init__(
        self, channel: Channel[bytes], size: int, *, shown: str, store: AdaptedStore
    ) -> None:
        super().__init__(_received(channel, shown=shown, store_name=store.KGLANCE_TYPE), size)
        self._store = store  # keeps the store, and so its event loop, alive while reading
        self._close_channel = weakref.finalize(self, channel.close)

    def __next__(self) -> bytes:
        return next(self.wrapped)  # type: ignore[no-any-return]

    def another(self) -> bytes:
        return next(self.wrapped, b"")

    def close(self) -> None:
        """Stop reading and release the image (also done when exhausted or collected)."""
        self._close_channel()
        self.wrapped.close()


def _served_length(blob: base.Blob) -> int:
    """How many bytes ``get`` will yield (0 when the backend cannot tell)."""
    if blob.served.length is not None:
        return blob.served.length
    if blob.size is not None:
        return max(blob.size - blob.served.offset, 0)
    return 0


async def _pump(
    backend: backends.Backend,
    target: locations.Location,
    *,
    byte_range: base.ByteRange,
    channel: Channel[bytes],
    opened: concurrent.futures.Future[int],
) -> None:
    """Open the image, report its size through ``opened``, then feed ``channel``."""
    try:
        async with backend.get(target, byte_range=byte_range) as blob:
            opened.set_result(_served_length(blob))
            async for chunk in blob:
                if not await channel.put_async(chunk):
                    return  # the reader closed the iterator: leave, closing the image
    except BaseException as exc:
        if opened.done():
            channel.finish(exc)
        else:
            opened.set_exception(exc)
        if not isinstance(exc, Exception):
            raise
        return
    channel.finish()


class AdaptedStore(driver.Store):
    """Base of the compatibility stores; subclasses name the kglance type and schemes."""

    KGLANCE_TYPE: ClassVar[str]
    SCHEMES: ClassVar[tuple[str, ...]]

    def __init__(self, conf: Any, backend: str | None = None) -> None:
        super().__init__(conf, backend)
        self._resources = _Resources(name=f"glance-store-{backend or self.KGLANCE_TYPE}")
        self._release = weakref.finalize(self, self._resources.close)
        self._config_error: str | None = None

    # ----------------------------------------------------------------- configuration

    def get_schemes(self) -> tuple[str, ...]:
        return self.SCHEMES

    @property
    def kglance_backend(self) -> backends.Backend | None:
        """The kglance backend doing this store's I/O (``None`` until configured)."""
        return self._resources.backend

    def close(self) -> None:
        """Stop the store's event loop and close its driver (also done on collection)."""
        self._release()

    def configure_add(self) -> None:
        try:
            built = self._build_backend()
        except errors.StoreError as exc:
            self._config_error = exc.message
            raise exceptions.BadStoreConfiguration(
                store_name=self.KGLANCE_TYPE, reason=exc.message
            ) from exc
        previous, self._resources.backend = self._resources.backend, built
        self._config_error = None
        if previous is not None:
            self._resources.runner.run(previous.driver.aclose())
        self._capabilities = capabilities.from_features(built.features)
        self._url_prefix = self._make_url_prefix(built) if self.backend_group else None

    def _build_backend(self) -> backends.Backend:
        drivers = _state.STATE.registry
        accepted = drivers.driver_class(self.KGLANCE_TYPE).Options.model_fields
        group = self.backend_group or _options.STORE_CFG_GROUP
        names = [opt.dest for opt in self.OPTIONS or ()]
        values = _options.read(self.conf, names, group=group, shared=self.backend_group is not None)
        options = {
            name: value.value
            for name, value in self._driver_values(values).items()
            if name in accepted and value.value is not None
        }
        backend_id = self.backend_group or self.KGLANCE_TYPE
        built = drivers.build(self.KGLANCE_TYPE, options, backend_id=backend_id)
        description: str | None = None
        weight = 0
        if self.backend_group:
            group_conf = self.conf[self.backend_group]
            description = group_conf.get("store_description")
            weight = int(group_conf.get("weight") or 0)
        return backends.Backend(
            built, backend_id=backend_id, description=description, weight=weight
        )

    def _driver_values(self, values: dict[str, _options.Value]) -> dict[str, _options.Value]:
        """Hook: adjust the option values before they go to the driver."""
        return values

    def _make_url_prefix(self, backend: backends.Backend) -> str | None:
        """Hook: the prefix of this store's locations, for Glance's location-to-store map."""
        return None

    # ----------------------------------------------------------------- plumbing

    def _backend(self) -> backends.Backend:
        backend = self._resources.backend
        if backend is None:
            reason = self._config_error or "the store has not been configured"
            raise exceptions.BadStoreConfiguration(store_name=self.KGLANCE_TYPE, reason=reason)
        return backend

    def _target(self, location: Any) -> tuple[locations.Location, str]:
        store_location = getattr(location, "store_location", location)
        if not isinstance(store_location, location_module.StoreLocation):
            raise exceptions.BadStoreUri(
                message=f"{type(location).__name__} is not a glance_store location"
            )
        target = store_location.to_kglance()
        return target, str(target)  # str() of a kglance location never shows credentials

    def _call(self, coro: Coroutine[Any, Any, T], *, operation: Operation, image: str) -> T:
        try:
            return self._resources.runner.run(coro)
        except errors.StoreError as exc:
            raise translate(
                exc, operation=operation, image=image, store_name=self.KGLANCE_TYPE
            ) from exc

    # ----------------------------------------------------------------- operations

    @capabilities.check
    def get(
        self,
        location: location_module.Location,
        offset: int = 0,
        chunk_size: int | None = None,
        context: Any = None,
    ) -> tuple[ImageIterator, int]:
        """``(iterator, size)``; ``chunk_size`` is the length to read, as in glance_store."""
        return self._get_image(location, offset=offset, chunk_size=chunk_size)

    def get_size(self, location: location_module.Location, context: Any = None) -> int:
        return self._image_size(location)

    @capabilities.check
    def delete(self, location: location_module.Location, context: Any = None) -> None:
        self._delete_image(location)

    def _get_image(
        self, location: Any, *, offset: int | None, chunk_size: int | None
    ) -> tuple[ImageIterator, int]:
        backend = self._backend()
        target, shown = self._target(location)
        try:
            byte_range = base.ByteRange(offset or 0, chunk_size or None)
        except ValueError as exc:
            raise exceptions.Invalid(message=str(exc)) from exc
        runner = self._resources.runner
        channel: Channel[bytes] = Channel(runner.loop, maxsize=READ_QUEUE_CHUNKS)
        opened: concurrent.futures.Future[int] = concurrent.futures.Future()
        runner.submit(_pump(backend, target, byte_range=byte_range, channel=channel, opened=opened))
        try:
            size = opened.result()
        except errors.StoreError as exc:
            ranged = None if byte_range.is_full else (offset or 0, chunk_size)
            raise translate(
                exc, operation="get", image=shown, store_name=self.KGLANCE_TYPE, ranged=ranged
            ) from exc
        return ImageIterator(channel, size, shown=shown, store=self), size

    def _image_size(self, location: Any) -> int:
        backend = self._backend()
        target, shown = self._target(location)
        return self._call(backend.size(target), operation="get_size", image=shown)

    def _delete_image(self, location: Any) -> None:
        backend = self._backend()
        target, shown = self._target(location)

        async def remove() -> None:
            await backend.size(target)  # NotFound for a missing image, as glance_store raises
            await backend.delete(target)

        self._call(remove(), operation="delete", image=shown)

    @capabilities.check
    def add(
        self,
        image_id: str,
        image_file: Any,
        image_size: int,
        hashing_algo: str | None = None,
        context: Any = None,
        verifier: Any = None,
    ) -> tuple[Any, ...]:
        """4-tuple without ``hashing_algo``, 5-tuple with it (see the module docstring)."""
        if hashing_algo is not None and not isinstance(hashing_algo, str):
            raise TypeError(
                "hashing_algo must be a hashlib algorithm name; pass context and verifier "
                "by keyword"
            )
        result = self._write(
            str(image_id),
            image_file,
            size=image_size or None,
            hash_algo=hashing_algo or "md5",
            verifier=verifier,
        )
        metadata = dict(result.metadata)
        if self.backend_group is None:
            metadata.pop("store", None)  # single-store glance_store returns no store id
        url = result.location.uri()
        if hashing_algo is None:
            return url, result.size, result.checksum, metadata
        return url, result.size, result.checksum, result.os_hash_value, metadata

    def _write(
        self,
        image_id: str,
        data: Any,
        *,
        size: int | None,
        hash_algo: str,
        verifier: pipeline.Verifier | None,
    ) -> backends.AddResult:
        backend = self._backend()
        runner = self._resources.runner
        channel: Channel[bytes] = Channel(runner.loop, maxsize=WRITE_QUEUE_CHUNKS)

        async def upload() -> backends.AddResult:
            try:
                return await backend.add(
                    image_id, channel.receive(), size=size, hash_algo=hash_algo, verifier=verifier
                )
            finally:
                channel.close()

        future = runner.submit(upload())
        try:
            for chunk in _chunks_of(data, self.WRITE_CHUNKSIZE):
                if not channel.put_sync(chunk):
                    break  # the upload ended early; its result says why
            else:
                channel.finish()
        except BaseException:
            channel.finish(_SourceFailed())
            with contextlib.suppress(BaseException):
                future.result()
            raise
        try:
            return future.result()
        except errors.StoreError as exc:
            raise translate(
                exc, operation="add", image=image_id, store_name=self.KGLANCE_TYPE
            ) from exc
