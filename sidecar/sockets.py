"""The Unix socket the sidecar listens on: created safely, never stolen, removed on exit.

* The socket is bound under a umask that yields exactly the requested mode (0660 by default),
  so it is never world-accessible, not even between ``bind`` and ``chmod``.
* A socket file left by a crashed sidecar is stale: nothing accepts on it, so ``connect``
  fails with ``ECONNREFUSED``, and it is replaced. If ``connect`` succeeds another sidecar is
  alive and is left alone: start-up fails with ``SocketInUse``. A path that exists but is not a
  socket is never deleted.
* On exit the file is removed only if it is still the one this process bound (same inode), so a
  successor that already replaced it keeps its socket.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat

BACKLOG = 512


class SocketError(Exception):
    """The socket cannot be created; the message says why and what to do."""


class SocketInUse(SocketError):
    pass


def _is_live(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(2.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return False
        raise SocketError(f"cannot probe existing socket {path}: {exc.strerror}") from exc
    else:
        return True
    finally:
        probe.close()


def _clear_stale(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise SocketError(f"{path} exists and is not a socket; not touching it")
    if _is_live(path):
        raise SocketInUse(f"another server is listening on {path}; not taking its socket")
    os.unlink(path)


def bind(path: str, *, mode: int = 0o660) -> socket.socket:
    """A listening, non-blocking Unix socket at ``path`` with permissions ``mode``."""
    _clear_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bound = False
    try:
        old_umask = os.umask(0o777 & ~mode)
        try:
            sock.bind(path)
            bound = True
        finally:
            os.umask(old_umask)
        os.chmod(path, mode)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if bound:
            with contextlib.suppress(OSError):
                os.unlink(path)
        raise SocketError(f"cannot listen on {path}: {exc.strerror or exc}") from exc
    return sock


def inode_of(path: str) -> int | None:
    try:
        return os.lstat(path).st_ino
    except OSError:
        return None


def remove(path: str, *, inode: int | None) -> None:
    """Remove the socket file if it is still the one with ``inode``."""
    if inode is not None and inode_of(path) == inode:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
