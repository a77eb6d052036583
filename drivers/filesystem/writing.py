"""Writing one image: temporary file, fsync, then an atomic name that never overwrites.

glance opened the final path with ``'wb'`` after an ``os.path.exists`` check, so readers saw
half-written images, two uploads of one id interleaved, and a crash left a truncated image
that looked whole. Here:

1. the bytes go to a hidden temporary file in the target directory (``tempfiles``), locked
   against the leftover sweep of other processes;
2. with thin provisioning, all-zero blocks (64 KiB, glance's write chunk) are not written,
   leaving holes (the pipeline has already hashed them, so checksums cover every byte);
3. once the stream ends cleanly: the file mode is set with ``fchmod``, the data is
   ``fsync``-ed, and the file gets its name. ``mode="create"`` uses ``link``, which fails
   atomically with EEXIST if the name exists (``AlreadyExists``); ``mode="overwrite"`` uses
   ``rename``. The directory is then ``fsync``-ed so the name survives a crash.

Any error or cancellation before that removes the temporary file. A cancellation that lands
while the name is being created undoes a create-mode commit too (the caller never learned
that it succeeded), if the name still points at our file: the descriptor stays open until
then, so the inode number it is compared by cannot have been reused.

Each ``TempFile`` method runs on a worker thread; a lock orders them, so a clean-up issued
after a cancelled write waits for that write to return before closing the descriptor.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator

from kglance.drivers import errors
from kglance.drivers.filesystem import tempfiles, threads, writeback

logger = logging.getLogger(__name__)

# zero detection granularity: glance's write chunk (the pipeline hands us 1 MiB chunks)
HOLE_BLOCK = 64 * 1024

_FULL = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
_DENIED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def map_os_error(exc: OSError, *, action: str) -> errors.StoreError | None:
    """Our error for ``exc`` when it means "full" or "not allowed"; None otherwise."""
    reason = exc.strerror or str(exc)
    if exc.errno in _FULL:
        return errors.StorageFull(f"{action}: {reason}")
    if exc.errno in _DENIED:
        return errors.WriteDenied(f"{action}: {reason}")
    return None


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        mapped = map_os_error(exc, action=action)
        if mapped is None:
            raise
        raise mapped from exc


def data_runs(chunk: bytes, *, block: int = HOLE_BLOCK) -> list[tuple[int, int]]:
    """``(start, end)`` of the stretches of ``chunk`` to write; all-zero blocks are left out."""
    runs: list[tuple[int, int]] = []
    run_start: int | None = None
    for start in range(0, len(chunk), block):
        end = min(start + block, len(chunk))
        if chunk.count(0, start, end) == end - start:
            if run_start is not None:
                runs.append((run_start, start))
                run_start = None
        elif run_start is None:
            run_start = start
    if run_start is not None:
        runs.append((run_start, len(chunk)))
    return runs


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        written = os.pwrite(fd, data, offset)
        data = data[written:]
        offset += written


def fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TempFile:
    """An image being written into ``directory``; every method is called on a thread."""

    def __init__(
        self, directory: str, name: str, fd: int, *, thin: bool, file_mode: int | None
    ) -> None:
        self.directory = directory
        self.name = name
        self.size = 0  # bytes received, holes included
        self._written_back = 0  # write-back to disk has been started up to here
        self._fd: int | None = fd
        self._thin = thin
        self._file_mode = file_mode
        self._lock = threading.Lock()
        self._temp_exists = True
        self._created: str | None = None  # the name a create-mode commit linked, until finish

    @classmethod
    def create(cls, directory: str, *, thin: bool, file_mode: int | None) -> TempFile:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        while True:
            name = tempfiles.new_name()
            with translated(f"cannot create a file in {directory}"):
                fd = os.open(os.path.join(directory, name), flags, 0o666)
            try:
                # another process's leftover sweep may remove the name before we lock it
                if tempfiles.lock(fd) and os.fstat(fd).st_nlink > 0:
                    return cls(directory, name, fd, thin=thin, file_mode=file_mode)
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)

    @property
    def _temp_path(self) -> str:
        return os.path.join(self.directory, self.name)

    def _open_fd(self) -> int:
        if self._fd is None:
            raise errors.BackendError(f"{self._temp_path} was already closed")
        return self._fd

    def write(self, chunk: bytes) -> None:
        with self._lock:
            fd = self._open_fd()
            view = memoryview(chunk)
            runs = data_runs(chunk) if self._thin else [(0, len(chunk))]
            with translated(f"cannot write to {self.directory}"):
                for start, end in runs:
                    _pwrite_all(fd, view[start:end], self.size + start)
            self.size += len(chunk)  # skipped zeros are holes; commit's ftruncate covers a tail
            if self.size - self._written_back >= writeback.STEP:
                writeback.start(fd, self._written_back, self.size - self._written_back)
                self._written_back = self.size

    def commit(self, image_name: str, *, overwrite: bool) -> None:
        """Make the data durable and visible under ``image_name``."""
        with self._lock:
            fd = self._open_fd()
            final = os.path.join(self.directory, image_name)
            with translated(f"cannot store {final}"):
                if self._thin:
                    os.ftruncate(fd, self.size)
                if self._file_mode is not None:
                    os.fchmod(fd, self._file_mode)
                os.fsync(fd)
                if overwrite:
                    os.replace(self._temp_path, final)
                    self._temp_exists = False
                else:
                    self._link(final)
                fsync_directory(self.directory)

    def _link(self, final: str) -> None:
        try:
            os.link(self._temp_path, final, follow_symlinks=False)
        except FileExistsError as exc:
            raise errors.AlreadyExists(f"an image is already stored at {final}") from exc
        self._created = final
        os.unlink(self._temp_path)
        self._temp_exists = False

    def finish(self) -> None:
        """Close the file after a commit the caller has seen succeed."""
        with self._lock:
            self._created = None
            self._close()

    def discard(self) -> None:
        """Remove every trace of this write; safe to call at any point, more than once."""
        with self._lock:
            if self._created is not None and self._fd is not None:
                # our descriptor keeps the inode alive, so its number cannot have been reused
                with contextlib.suppress(OSError):
                    ours, named = os.fstat(self._fd), os.stat(self._created, follow_symlinks=False)
                    if (ours.st_dev, ours.st_ino) == (named.st_dev, named.st_ino):
                        self._unlink_quietly(self._created)
            self._created = None
            self._close()
            if self._temp_exists:
                self._unlink_quietly(self._temp_path)
                self._temp_exists = False

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError as exc:
                logger.warning("closing %s failed: %s", self._temp_path, exc)

    @staticmethod
    def _unlink_quietly(path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("cannot remove %s: %s", path, exc)


async def write_image(
    data: AsyncIterator[bytes],
    *,
    directory: str,
    image_name: str,
    thin: bool,
    file_mode: int | None,
    overwrite: bool,
) -> int:
    """Store all of ``data`` as ``directory/image_name``; the number of bytes stored."""
    temp = await threads.acquire(
        functools.partial(TempFile.create, directory, thin=thin, file_mode=file_mode),
        release_with=TempFile.discard,
    )
    try:
        async for chunk in data:
            await threads.run(functools.partial(temp.write, chunk))
        await threads.run(functools.partial(temp.commit, image_name, overwrite=overwrite))
        await threads.release(temp.finish)
    except BaseException:
        await threads.release(temp.discard)
        raise
    return temp.size
