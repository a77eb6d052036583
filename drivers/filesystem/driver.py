"""``FilesystemDriver``: the verbs, composed from the modules of this package.

Construction does the slow, fallible work once (creating and checking datadirs, reading the
metadata file, sweeping crash leftovers) and fails loudly with ``ConfigurationError``: a store
that cannot write never starts half-working, as glance's did after "disabling add". After
that, every call that touches the disk runs on a thread: short metadata calls on the bounded
pool with glance's timeout, data reads and writes on the default executor.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import stat
from collections.abc import AsyncIterator

from kglance.drivers import base, errors, locations
from kglance.drivers.filesystem import (
    datadirs,
    metadata,
    options,
    reading,
    tempfiles,
    threads,
    writing,
)

logger = logging.getLogger(__name__)


def _check_image_name(image_id: str) -> None:
    """Backend validates ids; this guards the one property the paths rely on."""
    if not image_id or "/" in image_id or "\x00" in image_id or image_id.startswith("."):
        raise errors.InvalidImageId(f"image id {image_id[:80]!r} cannot be a file name")


class FilesystemDriver(base.Driver):
    Options = options.FilesystemOptions
    type_name = "file"
    schemes = locations.FileLocation.schemes
    features = (
        base.Feature.READ
        | base.Feature.WRITE
        | base.Feature.RANGED_READ
        | base.Feature.UNSIZED_WRITE
        | base.Feature.THIN_PROVISIONING
        | base.Feature.REUSABLE
        | base.Feature.LOCAL_FILE
    )

    def __init__(self, options: options.FilesystemOptions, *, backend_id: str) -> None:
        super().__init__(options, backend_id=backend_id)
        self._options = options
        self._file_mode = options.file_mode
        prepared = datadirs.configure(options.datadir_entries(), file_mode=self._file_mode)
        if options.filesystem_store_metadata_file is not None:
            entries = metadata.load(options.filesystem_store_metadata_file)
            prepared = tuple(
                datadirs.Datadir(
                    path=d.path,
                    real=d.real,
                    priority=d.priority,
                    metadata=metadata.entry_for(d, entries),
                )
                for d in prepared
            )
        self.datadirs = prepared
        for datadir in self.datadirs:
            tempfiles.remove_leftovers(datadir.real)
        self._calls = threads.BoundedCalls(
            timeout=options.filesystem_store_timeout,
            pool_size=options.filesystem_store_thread_pool_size,
            threshold_percent=options.filesystem_store_threadpool_threshold,
            name=f"kglance-fs-{backend_id}",
        )

    # ----------------------------------------------------------------- writing

    async def add(
        self,
        image_id: str,
        data: AsyncIterator[bytes],
        *,
        size: int | None,
        mode: base.WriteMode = "create",
    ) -> base.Stored:
        _check_image_name(image_id)
        existing = await self._calls.run(
            functools.partial(self._find, image_id, regular_only=False),
            what=f"looking for image {image_id}",
        )
        if existing is not None and mode == "create":
            raise errors.AlreadyExists(f"image {image_id} is already stored in {existing.path}")
        # an overwrite replaces the old file in place, so no stale copy survives elsewhere
        target = existing
        if target is None:
            target = await self._calls.run(
                functools.partial(datadirs.choose, self.datadirs, size=size),
                what="checking the free space of the datadirs",
            )
        stored = await writing.write_image(
            data,
            directory=target.real,
            image_name=image_id,
            thin=self._options.filesystem_thin_provisioning,
            file_mode=self._file_mode,
            overwrite=mode == "overwrite",
        )
        return base.Stored(
            location=locations.FileLocation(path=os.path.join(target.path, image_id)),
            size=stored,
            metadata=dict(target.metadata),
        )

    async def delete(self, location: locations.Location) -> None:
        await self._calls.run(
            functools.partial(self._unlink, location), what=f"deleting {location}"
        )

    def _unlink(self, location: locations.Location) -> None:
        path = self._confined(location)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            mapped = writing.map_os_error(exc, action=f"cannot delete {path}")
            if mapped is not None:
                raise mapped from exc
            raise errors.BackendError(f"cannot delete {path}: {exc.strerror or exc}") from exc

    # ----------------------------------------------------------------- reading

    @contextlib.asynccontextmanager
    async def get(
        self, location: locations.Location, *, byte_range: base.ByteRange = base.FULL
    ) -> AsyncIterator[base.Blob]:
        path = await self._calls.run(
            functools.partial(self._confined, location), what=f"resolving {location}"
        )
        opened = await threads.acquire(
            functools.partial(reading.open_image, path),
            release_with=reading.OpenedFile.close,
        )
        try:
            served = byte_range.resolve(opened.size)
        except BaseException:
            opened.close()
            raise
        blob = reading.FileBlob(
            opened,
            path=path,
            served=served,
            chunk_size=self._options.filesystem_store_chunk_size,
        )
        try:
            yield blob
        finally:
            await threads.release(blob.close)

    async def size(self, location: locations.Location) -> int:
        return await self._calls.run(
            functools.partial(self._stat_size, location), what=f"stat {location}"
        )

    def _stat_size(self, location: locations.Location) -> int:
        path = self._confined(location)
        try:
            info = os.stat(path, follow_symlinks=False)
        except FileNotFoundError as exc:
            raise errors.NotFound(f"no image at {path}") from exc
        except OSError as exc:
            raise errors.BackendError(f"cannot stat {path}: {exc.strerror or exc}") from exc
        if not stat.S_ISREG(info.st_mode):
            raise errors.InvalidLocation(f"{path} is not a regular file")
        return info.st_size

    async def locate(self, image_id: str) -> locations.Location:
        _check_image_name(image_id)
        found = await self._calls.run(
            functools.partial(self._find, image_id, regular_only=True),
            what=f"looking for image {image_id}",
        )
        if found is None:
            raise errors.NotFound(f"image {image_id} is not stored in backend {self.backend_id}")
        return locations.FileLocation(path=os.path.join(found.path, image_id))

    def _find(self, image_id: str, *, regular_only: bool) -> datadirs.Datadir | None:
        """The highest-priority datadir holding an entry named ``image_id``."""
        for datadir in self.datadirs:
            try:
                info = os.stat(os.path.join(datadir.real, image_id), follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise errors.BackendError(
                    f"cannot look for {image_id} in {datadir.path}: {exc.strerror or exc}"
                ) from exc
            if not regular_only or stat.S_ISREG(info.st_mode):
                return datadir
        return None

    # ----------------------------------------------------------------- locations

    def owns(self, location: locations.Location) -> bool:
        # resolves symlinks on the calling thread: a few lstat calls on the datadir's parents
        try:
            self._confined(location)
        except errors.InvalidLocation:
            return False
        return True

    def _confined(self, location: locations.Location) -> str:
        """The resolved path of the image ``location`` names, or ``InvalidLocation``."""
        if not isinstance(location, locations.FileLocation):
            raise errors.InvalidLocation(f"{location} is not a file location")
        datadir, name = datadirs.confine(location.path, self.datadirs)
        return os.path.join(datadir.real, name)

    # ----------------------------------------------------------------- lifecycle

    async def check(self) -> None:
        await self._calls.run(self._check_datadirs, what="checking the datadirs")

    def _check_datadirs(self) -> None:
        for datadir in self.datadirs:
            if not os.access(datadir.real, os.W_OK | os.X_OK):
                raise errors.BackendError(f"datadir {datadir.path} is not writable")

    async def aclose(self) -> None:
        self._calls.close()
