"""Names of images being written, and the sweep that removes those a crash left behind.

An image is written under a hidden name (``.kglance-tmp.<32 hex digits>``) in the directory
it will end up in. Image ids cannot start with a dot, so the two name spaces never meet, and
nothing but this pattern is ever swept.

A datadir is often a volume shared by several pods, so "left behind" cannot mean "present
when this process starts": another pod may be writing that file right now. Every writer holds
an exclusive ``flock`` on its temporary file until it is done with it, and the sweep removes
only files it can lock itself. The kernel (or the NFS lock manager, which Linux uses to
emulate ``flock`` there) drops the lock when its holder dies, so exactly the abandoned files
are removed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import secrets

PREFIX = ".kglance-tmp."
_NAME = re.compile(r"^\.kglance-tmp\.[0-9a-f]{32}$")

logger = logging.getLogger(__name__)


def new_name() -> str:
    return PREFIX + secrets.token_hex(16)


def is_temp_name(name: str) -> bool:
    return _NAME.match(name) is not None


def lock(fd: int) -> bool:
    """Take the writer's lock on ``fd``; False when someone else holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def remove_leftovers(directory: str) -> list[str]:
    """Remove the temporary files in ``directory`` that no live writer holds; their names."""
    with os.scandir(directory) as entries:
        names = [entry.name for entry in entries if is_temp_name(entry.name)]
    return [name for name in names if _remove_if_abandoned(directory, name)]


def _remove_if_abandoned(directory: str, name: str) -> bool:
    path = os.path.join(directory, name)
    flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        # write access: NFS emulates flock with POSIX locks, whose exclusive kind needs it
        fd = os.open(path, flags)
    except FileNotFoundError:
        return False  # its writer finished meanwhile
    except OSError as exc:
        logger.warning("cannot check leftover temporary file %s: %s", path, exc)
        return False
    try:
        if not lock(fd):
            return False  # a writer, maybe in another pod, is still using it
        os.unlink(path)
    except OSError as exc:
        logger.warning("cannot remove leftover temporary file %s: %s", path, exc)
        return False
    finally:
        os.close(fd)
    logger.info("removed leftover temporary file %s", path)
    return True
