"""The directories images live in: preparing them, choosing one, and confining paths to them.

Choice follows glance: priorities from highest to lowest, and within the first priority that
has room for the declared size, the directory with the most free space. Free space is what an
unprivileged writer may use (``f_bavail * f_frsize``); nothing is reserved, so two uploads may
still race for the last bytes, and the write then fails with ``StorageFull``. Unlike glance, an
upload of unknown size skips directories that are completely full, and a directory that cannot
even be examined is skipped instead of failing the upload.

Confinement is where glance was weakest (it read and deleted any path a location named).
Images are always stored directly in a datadir, so a location is served only if its parent
directory, with every symlink resolved, *is* a datadir, and its name is not hidden (temporary
files start with a dot). The file itself is then opened relative to the resolved directory with
``O_NOFOLLOW``, so a symlink planted as an image name is refused rather than followed.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from kglance.drivers import errors
from kglance.drivers.filesystem import options

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Datadir:
    path: str  # absolute, as configured: locations of stored images start with it
    real: str  # symlinks resolved at start-up: all I/O and confinement use this
    priority: int = 0
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)


class FreeSpace(Protocol):
    """The part of ``os.statvfs_result`` the choice reads."""

    @property
    def f_bavail(self) -> int: ...
    @property
    def f_frsize(self) -> int: ...
    @property
    def f_bsize(self) -> int: ...


def free_bytes(stats: FreeSpace) -> int:
    return stats.f_bavail * (stats.f_frsize or stats.f_bsize)


def choose(
    datadirs: Sequence[Datadir],
    *,
    size: int | None,
    statvfs: Callable[[str], FreeSpace] = os.statvfs,
) -> Datadir:
    """The directory a new image of ``size`` bytes (None: unknown) should be written to."""
    needed = 1 if size is None else size
    unreadable: list[OSError] = []
    ordered = sorted(datadirs, key=lambda d: -d.priority)
    for _, group in itertools.groupby(ordered, key=lambda d: d.priority):
        best: Datadir | None = None
        best_free = -1
        for datadir in group:
            try:
                free = free_bytes(statvfs(datadir.real))
            except OSError as exc:
                logger.warning("cannot get the free space of %s: %s", datadir.path, exc)
                unreadable.append(exc)
                continue
            if free >= needed and free > best_free:
                best, best_free = datadir, free
        if best is not None:
            return best
    if unreadable and len(unreadable) == len(ordered):
        raise errors.BackendError("cannot get the free space of any datadir") from unreadable[-1]
    wanted = "any space" if size is None else f"{size} bytes"
    raise errors.StorageFull(f"no datadir has room for the image: {wanted} requested")


def prepare(entry: options.DatadirEntry, *, file_mode: int | None) -> str:
    """Create the directory, check it is writable, and return its resolved path."""
    try:
        os.makedirs(entry.path, exist_ok=True)
    except OSError as exc:
        raise errors.ConfigurationError(
            f"cannot create datadir {entry.path}: {exc.strerror or exc}"
        ) from exc
    real = os.path.realpath(entry.path)
    if not os.path.isdir(real):
        raise errors.ConfigurationError(f"datadir {entry.path} is not a directory")
    if not os.access(real, os.W_OK | os.X_OK):
        raise errors.ConfigurationError(f"datadir {entry.path} is not writable")
    if file_mode is not None:
        _grant_traversal(real, file_mode)
    return real


def _grant_traversal(directory: str, file_mode: int) -> None:
    """Let the group/others the file mode grants access to also enter the directory."""
    extra = 0
    if file_mode & stat.S_IRWXG:
        extra |= stat.S_IXGRP
    if file_mode & stat.S_IRWXO:
        extra |= stat.S_IXOTH
    try:
        mode = stat.S_IMODE(os.stat(directory).st_mode)
        if extra & ~mode:
            os.chmod(directory, mode | extra)
    except OSError as exc:
        # as in glance: the files are still written; only other readers may be refused
        logger.warning("cannot add execute permission to datadir %s: %s", directory, exc)


def configure(
    entries: Iterable[options.DatadirEntry], *, file_mode: int | None
) -> tuple[Datadir, ...]:
    """Prepare every configured directory; highest priority first, configuration order kept."""
    by_real: dict[str, Datadir] = {}
    for entry in entries:
        real = prepare(entry, file_mode=file_mode)
        earlier = by_real.get(real)
        if earlier is None:
            by_real[real] = Datadir(path=entry.path, real=real, priority=entry.priority)
        elif earlier.priority != entry.priority:
            raise errors.ConfigurationError(
                f"filesystem_store_datadirs: {earlier.path} and {entry.path} are the same "
                f"directory with priorities {earlier.priority} and {entry.priority}"
            )
    return tuple(sorted(by_real.values(), key=lambda d: -d.priority))


def is_within(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or below it, compared by whole path components."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def confine(path: str, datadirs: Sequence[Datadir]) -> tuple[Datadir, str]:
    """The datadir directly holding the file at ``path``, and the file's name.

    Raises ``InvalidLocation`` for '..' components, hidden names, symbolic links, and files
    whose resolved parent is not a configured datadir (absolute paths elsewhere, escaping
    symlinks). Opening with ``O_NOFOLLOW`` still guards against a link planted afterwards.
    """
    if "\x00" in path or ".." in path.split("/"):
        raise errors.InvalidLocation(f"location path {path!r} is not allowed")
    parent, name = os.path.split(os.path.normpath(os.path.abspath(path)))
    if not name or name.startswith("."):
        raise errors.InvalidLocation(f"location path {path!r} does not name an image file")
    real_parent = os.path.realpath(parent)
    for datadir in datadirs:
        if real_parent == datadir.real:
            if os.path.islink(os.path.join(real_parent, name)):
                raise errors.InvalidLocation(f"location path {path!r} is a symbolic link")
            return datadir, name
    raise errors.InvalidLocation(f"location path {path!r} is outside every datadir")
