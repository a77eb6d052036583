"""``CinderDriver``: glance_store's cinder store — one volume per image, bytes written through
an os-brick attach.

add: a volume ``image-<id>`` of ``ceil(size/GiB)`` GiB (at least 1) with glance's metadata
(``glance_image_id``, ``image_size``) → wait ``creating``→``available`` → attach ``rw`` →
write → detach → record the size → set read-only. Any failure, a cancellation included,
detaches and deletes the volume and waits until Cinder has removed it.

Unknown sizes grow the volume offline (detach → ``os-extend`` → wait → re-attach). glance
adds 1 GiB per extend, so an image of N GiB costs N detach/attach cycles; here each extend
adds a quarter of the current size (at least one unit, at least what the next chunk needs):
O(log N) cycles, and at most a quarter of the volume left unused. (Doubling would waste up to
half: volumes cannot shrink.) A failed extend is ``StorageFull``, as in glance.

Create-only adds: Cinder does not make names unique, so the volume ``image-<id>`` is
*claimed*: our volumes carry ``kglance_upload`` metadata (``writing`` → ``done``); an add
refuses with ``AlreadyExists`` if a finished volume of that name exists, or if an unfinished
one was created before its own (ordered by ``created_at``, then id). It checks before
creating, after creating and once more before marking its volume done, so of concurrent adds
exactly one wins. Volumes without the key (made by glance_store) count as finished.

Reads: the size is the ``image_size`` metadata (else the volume size); the volume is attached
read-only for the duration of the ``get`` block. A missing volume is ``NotFound`` (glance
raises a generic ``BackendException``), and ``size`` never returns 0 for an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from kglance.drivers import _threads, base, errors, locations
from kglance.drivers.cinder import api, attach, options, transfer

logger = logging.getLogger(__name__)

T = TypeVar("T")

UPLOAD_KEY = "kglance_upload"
WRITING = "writing"
DONE = "done"
GONE_STATUSES = frozenset({"deleting", "error_deleting"})
TRANSITIONAL = frozenset({"creating", "extending", "attaching", "detaching", "reserved"})
MAX_POLL_INTERVAL = 15.0


class CinderDriver(base.Driver):
    Options = options.CinderOptions
    type_name = "cinder"
    schemes = locations.CinderLocation.schemes
    features = (
        base.Feature.READ
        | base.Feature.WRITE
        | base.Feature.RANGED_READ
        | base.Feature.UNSIZED_WRITE
        | base.Feature.REUSABLE
    )
    write_chunk_size = 1024 * 1024

    def __init__(self, options: options.CinderOptions, *, backend_id: str) -> None:
        super().__init__(options, backend_id=backend_id)
        self._options = options
        self._unit = options.cinder_volume_size_unit
        self._runner = _threads.BlockingRunner(
            options.cinder_thread_pool_size, name=f"kglance-cinder-{backend_id}"
        )
        self._api: api.VolumeApi | None = None
        self._attacher: attach.Attacher | None = None
        self._setup_lock = asyncio.Lock()

    # ----------------------------------------------------------------- set-up

    async def _volumes(self) -> api.VolumeApi:
        """The API client, built on first use (building it may authenticate)."""
        if self._api is None:
            async with self._setup_lock:
                if self._api is None:
                    self._api = await self._call(api.VolumeApi, self._options, action="connect")
        return self._api

    async def _attach(self) -> attach.Attacher:
        """os-brick, configured and with this host's connector properties, on first use."""
        await self._volumes()
        if self._attacher is None:
            async with self._setup_lock:
                if self._attacher is None:
                    self._attacher = await self._runner.run(self._make_attacher)
        return self._attacher

    def _make_attacher(self) -> attach.Attacher:
        lock_path = self._options.cinder_lock_path or os.path.join(
            tempfile.gettempdir(), "kglance-os-brick-locks"
        )
        connector = attach.prepare_os_brick(lock_path)
        properties = connector.get_connector_properties(
            None,
            self._options.cinder_my_ip,
            self._options.cinder_use_multipath,
            self._options.cinder_enforce_multipath,
        )
        volumes = self._api
        assert volumes is not None
        return attach.Attacher(
            lambda: volumes,
            runner=self._runner,
            connector_module=connector,
            connector_properties=properties,
            use_multipath=self._options.cinder_use_multipath,
            retry_attempts=self._options.cinder_attachment_retry_attempts,
            retry_interval=self._options.cinder_state_poll_interval,
        )

    async def _call(self, function: Callable[..., T], *args: Any, action: str) -> T:
        """``function(*args)`` on the pool, its errors translated."""
        try:
            return await self._runner.run(function, *args)
        except errors.StoreError:
            raise
        except Exception as exc:
            raise api.translate(exc, action=action) from exc

    # ----------------------------------------------------------------- volume states

    async def _wait(
        self, volume_id: str, *, until: frozenset[str], passing: frozenset[str], action: str
    ) -> api.Volume:
        """Poll (with doubling intervals) until the volume reaches a status in ``until``."""
        volumes = await self._volumes()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._options.cinder_state_transition_timeout
        delay = self._options.cinder_state_poll_interval
        while True:
            volume = await self._call(volumes.get, volume_id, action=action)
            if volume.status in until:
                return volume
            if volume.status not in passing:
                raise errors.BackendError(f"{action}: the volume went to status {volume.status}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise errors.BackendError(
                    f"{action}: the volume is still {volume.status} after "
                    f"{self._options.cinder_state_transition_timeout} s"
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, MAX_POLL_INTERVAL)

    async def _wait_gone(self, volume_id: str) -> None:
        volumes = await self._volumes()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._options.cinder_state_transition_timeout
        delay = self._options.cinder_state_poll_interval
        action = f"cannot delete volume {volume_id}"
        while True:
            try:
                volume = await self._call(volumes.get, volume_id, action=action)
            except errors.NotFound:
                return
            if volume.status not in GONE_STATUSES:
                raise errors.BackendError(f"{action}: it is {volume.status}, not deleting")
            if loop.time() >= deadline:
                raise errors.BackendError(f"{action}: it is still {volume.status}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_POLL_INTERVAL)

    async def _remove(self, volume_id: str) -> None:
        """Wait out a transition, delete, and wait until the volume is gone."""
        volumes = await self._volumes()
        action = f"cannot delete volume {volume_id}"
        try:
            volume = await self._call(volumes.get, volume_id, action=action)
            if volume.status in GONE_STATUSES:
                await self._wait_gone(volume_id)
                return
            if volume.status in TRANSITIONAL:
                volume = await self._wait(
                    volume_id,
                    until=frozenset({"available", "in-use", "error", "error_extending"}),
                    passing=TRANSITIONAL,
                    action=action,
                )
            if volume.status == "in-use":
                raise errors.InUse(f"{action}: it is attached (status in-use)")
            await self._call(volumes.delete, volume_id, action=action)
            await self._wait_gone(volume_id)
        except errors.NotFound:
            return

    async def _discard(self, volume_id: str) -> None:
        """Clean-up after a failed add: never raises over the error being handled."""
        try:
            await self._remove(volume_id)
        except Exception as exc:
            logger.error("could not remove volume %s of a failed add: %s", volume_id, exc)

    # ----------------------------------------------------------------- writing

    async def add(
        self,
        image_id: str,
        data: AsyncIterator[bytes],
        *,
        size: int | None,
        mode: base.WriteMode = "create",
    ) -> base.Stored:
        name = f"image-{image_id}"
        volumes = await self._volumes()
        attacher = await self._attach()
        if mode == "create":
            await self._claim(name, mine=None)
        units = max(1, math.ceil((size or 0) / self._unit))
        metadata = {"glance_image_id": image_id, "image_size": str(size or 0), UPLOAD_KEY: WRITING}
        action = f"cannot create a volume for image {image_id}"

        def create() -> api.Volume:
            return volumes.create(
                name=name,
                size=units,
                metadata=metadata,
                volume_type=self._options.cinder_volume_type,
            )

        created = await self._create(create, action=action)
        try:
            await self._wait(
                created.id,
                until=frozenset({"available"}),
                passing=frozenset({"creating"}),
                action=action,
            )
            if mode == "create":
                await self._claim(name, mine=created)
            upload = _Upload(self, attacher, created.id, units=units)
            written = await upload.write(data, size=size)
            if size is not None and written != size:
                raise errors.SizeMismatch(
                    f"size mismatch: declared {size} bytes, received {written}",
                    expected=size,
                    received=written,
                )
            finish = f"cannot finish volume {created.id} of image {image_id}"
            await self._call(
                volumes.set_metadata, created.id, {"image_size": str(written)}, action=finish
            )
            await self._call(volumes.set_read_only, created.id, action=finish)
            if mode == "create":
                await self._claim(name, mine=created)
            await self._call(volumes.set_metadata, created.id, {UPLOAD_KEY: DONE}, action=finish)
        except BaseException:
            await _threads.await_uninterrupted(self._discard(created.id))
            raise
        if mode == "overwrite":
            await self._remove_others(name, keep=created.id)
        location = locations.CinderLocation(volume_id=created.id, store=self.backend_id)
        return base.Stored(location=location, size=written)

    async def _create(self, create: Callable[[], api.Volume], *, action: str) -> api.Volume:
        """Create the volume; if the caller is cancelled meanwhile, remove what it made."""
        try:
            return await self._runner.acquire(create, release_with=self._orphan_removal)
        except errors.StoreError:
            raise
        except Exception as exc:
            raise api.translate(exc, action=action) from exc

    def _orphan_removal(self, volume: api.Volume) -> None:
        """(On a pool thread.) A volume whose add was cancelled while Cinder created it."""
        logger.warning("removing volume %s: its add was cancelled during the create", volume.id)
        volumes = self._api
        assert volumes is not None
        deadline = time.monotonic() + self._options.cinder_state_transition_timeout
        try:
            while volumes.get(volume.id).status == "creating" and time.monotonic() < deadline:
                time.sleep(self._options.cinder_state_poll_interval)
            volumes.delete(volume.id)
        except Exception as exc:
            logger.error("could not remove volume %s of a cancelled add: %s", volume.id, exc)

    async def _claim(self, name: str, *, mine: api.Volume | None) -> None:
        """Refuse with ``AlreadyExists`` unless this add owns the name (see the module doc)."""
        volumes = await self._volumes()
        others = await self._call(volumes.find, name, action=f"cannot look up volume {name}")
        for other in others:
            if mine is not None and other.id == mine.id:
                continue
            if other.status.startswith("error") or other.status in GONE_STATUSES:
                continue
            finished = other.metadata.get(UPLOAD_KEY, DONE) == DONE
            earlier = mine is not None and (other.created_at, other.id) < (
                mine.created_at,
                mine.id,
            )
            if finished or earlier:
                raise errors.AlreadyExists(f"the image has a volume already ({other.id})")

    async def _remove_others(self, name: str, *, keep: str) -> None:
        volumes = await self._volumes()
        for other in await self._call(volumes.find, name, action=f"cannot look up {name}"):
            if other.id != keep:
                try:
                    await self._remove(other.id)
                except errors.StoreError as exc:
                    logger.warning("overwrite: cannot remove old volume %s: %s", other.id, exc)

    async def _extend(self, volume_id: str, units: int) -> None:
        volumes = await self._volumes()
        action = f"cannot extend volume {volume_id} to {units} units"
        try:
            await self._call(volumes.extend, volume_id, units, action=action)
            await self._wait(
                volume_id,
                until=frozenset({"available"}),
                passing=frozenset({"extending"}),
                action=action,
            )
        except errors.StorageFull:
            raise
        except errors.StoreError as exc:
            raise errors.StorageFull(f"{action}: {exc.message}") from exc

    # ----------------------------------------------------------------- reading

    async def _volume(self, location: locations.Location) -> api.Volume:
        volume_id = self._confined(location).volume_id
        volumes = await self._volumes()
        volume = await self._call(volumes.get, volume_id, action=f"cannot find {location}")
        if volume.status in GONE_STATUSES:
            raise errors.NotFound(f"{location} is being deleted")
        return volume

    def _image_size(self, volume: api.Volume) -> int:
        recorded = volume.metadata.get("image_size")
        if recorded is not None:
            try:
                return int(recorded)
            except ValueError:
                logger.warning("volume %s has a bad image_size %r", volume.id, recorded)
        return volume.size * self._unit

    @contextlib.asynccontextmanager
    async def get(
        self, location: locations.Location, *, byte_range: base.ByteRange = base.FULL
    ) -> AsyncIterator[base.Blob]:
        volume = await self._volume(location)
        size = self._image_size(volume)
        served = byte_range.resolve(size)
        if not served.length:
            yield transfer.VolumeBlob(None, size=size, served=served, runner=self._runner)
            return
        attacher = await self._attach()
        async with attacher.attached(volume.id, mode="ro") as device:
            yield transfer.VolumeBlob(device, size=size, served=served, runner=self._runner)

    async def size(self, location: locations.Location) -> int:
        return self._image_size(await self._volume(location))

    async def delete(self, location: locations.Location) -> None:
        await self._remove(self._confined(location).volume_id)

    async def locate(self, image_id: str) -> locations.Location:
        volumes = await self._volumes()
        name = f"image-{image_id}"
        found = [
            v
            for v in await self._call(volumes.find, name, action=f"cannot look up {name}")
            if v.metadata.get(UPLOAD_KEY, DONE) == DONE
            and not v.status.startswith("error")
            and v.status not in GONE_STATUSES
        ]
        if not found:
            raise errors.NotFound(f"image {image_id} has no volume in backend {self.backend_id}")
        newest = max(found, key=lambda v: (v.created_at, v.id))
        return locations.CinderLocation(volume_id=newest.id, store=self.backend_id)

    # ----------------------------------------------------------------- locations

    def owns(self, location: locations.Location) -> bool:
        return isinstance(location, locations.CinderLocation) and location.store in (
            None,
            self.backend_id,
        )

    def _confined(self, location: locations.Location) -> locations.CinderLocation:
        if not self.owns(location):
            raise errors.InvalidLocation(f"{location} is not a location of this cinder backend")
        assert isinstance(location, locations.CinderLocation)
        return location

    # ----------------------------------------------------------------- lifecycle

    async def check(self) -> None:
        volumes = await self._volumes()
        await self._call(volumes.probe, action=f"cinder backend {self.backend_id!r}")

    async def aclose(self) -> None:
        self._runner.close()


class _Upload:
    """Writes one image into its volume, growing the volume when an unsized image outgrows it."""

    def __init__(
        self, driver: CinderDriver, attacher: attach.Attacher, volume_id: str, *, units: int
    ) -> None:
        self._driver = driver
        self._attacher = attacher
        self._volume_id = volume_id
        self._units = units
        self._unit = driver._options.cinder_volume_size_unit

    async def write(self, data: AsyncIterator[bytes], *, size: int | None) -> int:
        offset = 0
        held = b""  # the part of a chunk that did not fit before an extend
        finished = False
        while not finished:
            capacity = self._units * self._unit
            async with self._attacher.attached(self._volume_id, mode="rw") as device:
                writes = transfer.Writes(
                    device,
                    runner=self._driver._runner,
                    in_flight=self._driver._options.cinder_writes_in_flight,
                )
                try:
                    while True:
                        chunk = held or await _next_chunk(data)
                        held = b""
                        if chunk is None:
                            finished = True
                            break
                        room = capacity - offset
                        if len(chunk) > room:
                            if size is not None:
                                raise errors.SizeMismatch(
                                    f"size mismatch: more than the declared {size} bytes",
                                    expected=size,
                                    received=offset + len(chunk),
                                )
                            chunk, held = chunk[:room], chunk[room:]
                        if chunk:
                            await writes.submit(offset, chunk)
                            offset += len(chunk)
                        if held:
                            break
                    await writes.drain()
                except BaseException:
                    await writes.abandon()
                    raise
            if not finished:
                await self._grow(needed=offset + len(held))
        return offset

    async def _grow(self, *, needed: int) -> None:
        units = max(math.ceil(needed / self._unit), self._units + max(1, self._units // 4))
        await self._driver._extend(self._volume_id, units)
        self._units = units


async def _next_chunk(data: AsyncIterator[bytes]) -> bytes | None:
    """The next chunk, or ``None`` once the stream is exhausted."""
    try:
        return await anext(data)
    except StopAsyncIteration:
        return None
