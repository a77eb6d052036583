"""librados/librbd failures as kglance errors.

The bindings raise one class per errno (``rbd.ImageNotFound``, ``rados.TimedOut``, ...), and
aio completions report a bare negative errno, so both are translated by errno here, in one
table. Callers handle the cases with their own meaning first (``ImageExists`` on create,
``ImageBusy`` on unprotect, ...) and pass everything else through ``translate``.

``ESHUTDOWN`` (what librados returns once the client has been blocklisted or shut down) is
the one error after which the cluster connection is useless; ``connection_lost`` lets the
connection holder replace it.
"""

from __future__ import annotations

import errno
import os

import rados
import rbd

from kglance.drivers import errors

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_DENIED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
_UNAVAILABLE = frozenset(
    {
        errno.ETIMEDOUT,
        errno.ESHUTDOWN,
        errno.ENOTCONN,
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.EINTR,
        errno.EAGAIN,
    }
)


def error_number(exc: BaseException) -> int | None:
    """The positive errno carried by a rados/rbd exception, if any."""
    code = getattr(exc, "errno", None)
    return abs(code) if isinstance(code, int) else None


def from_errno(code: int, *, action: str) -> errors.StoreError:
    """Our error for a librbd return code (positive or negative)."""
    number = abs(code)
    reason = os.strerror(number)
    if number == errno.ENOENT:
        return errors.NotFound(f"{action}: {reason}")
    if number in _FULL:
        return errors.StorageFull(f"{action}: {reason}")
    if number in _DENIED:
        return errors.WriteDenied(f"{action}: {reason} (check the cephx caps of the user)")
    if number in _UNAVAILABLE:
        return errors.RemoteUnavailable(f"{action}: {reason}")
    return errors.BackendError(f"{action}: {reason}")


def translate(exc: BaseException, *, action: str) -> errors.StoreError:
    """Our error for a rados/rbd exception; others become ``BackendError``."""
    if isinstance(exc, errors.StoreError):
        return exc
    if isinstance(exc, rados.TimedOut | rbd.Timeout):
        return errors.RemoteUnavailable(f"{action}: timed out ({exc})")
    number = error_number(exc)
    if number is not None:
        return from_errno(number, action=action)
    return errors.BackendError(f"{action}: {exc}")


def connection_lost(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) means the connection is dead."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, rados.ConnectionShutdown | rbd.ConnectionShutdown):
            return True
        if isinstance(exc, rados.Error | rbd.Error) and error_number(exc) == errno.ESHUTDOWN:
            return True
        exc = exc.__cause__
        seen += 1
    return False
