"""kglance errors turned into the glance_store exceptions Glance catches.

One table, applied at the single place where the compatibility layer leaves kglance (the
end of every store operation), so every store maps the same error the same way. The kglance
error is always chained as ``__cause__``. Errors that are not kglance's (a bug, or an
exception raised by the caller's own data source while it is being read) are never
translated: Glance expects its own exceptions, such as an image size limit raised from its
reader, to come back unchanged.
"""

from __future__ import annotations

from typing import Literal

from kglance.drivers import errors
from kglance.drivers.glance_store import exceptions

Operation = Literal["add", "get", "get_size", "delete", "set_acls", "configure"]

MAX_REDIRECTS = 5  # glance_store's http MAX_REDIRECTS, shown in MaxRedirectsExceeded


def _unsupported(
    exc: errors.StoreError,
    *,
    operation: Operation,
    ranged: tuple[int, int | None] | None,
) -> exceptions.GlanceStoreException:
    if operation == "add":
        return exceptions.StoreAddDisabled(message=exc.message)
    if operation == "delete":
        return exceptions.StoreDeleteNotSupported(message=exc.message)
    if ranged is not None:
        offset, chunk_size = ranged
        return exceptions.StoreRandomGetNotSupported(offset=offset, chunk_size=chunk_size)
    return exceptions.StoreGetNotSupported(message=exc.message)


def translate(
    exc: errors.StoreError,
    *,
    operation: Operation,
    image: str | None = None,
    store_name: str = "",
    ranged: tuple[int, int | None] | None = None,
) -> Exception:
    """The glance_store exception for ``exc`` (``ranged``: the offset and length asked for)."""
    shown = image or "(unknown)"
    match exc:
        case errors.NotFound():
            return exceptions.NotFound(image=shown)
        case errors.AlreadyExists():
            return exceptions.Duplicate(image=shown)
        case errors.UnknownHashAlgorithm():
            algo = exc.message.rpartition(": ")[2]
            return exceptions.UnknownHashingAlgo(algo=algo)
        case errors.InvalidLocation():
            return exceptions.BadStoreUri(message=exc.message)
        case errors.InvalidRequest():  # size mismatches, bad ids, unsatisfiable ranges
            return exceptions.Invalid(message=exc.message)
        case errors.StorageFull():
            return exceptions.StorageFull()
        case errors.WriteDenied():
            return exceptions.StorageWriteDenied()
        case errors.Unsupported():
            return _unsupported(exc, operation=operation, ranged=ranged)
        case errors.RemoteUnavailable():
            return exceptions.RemoteServiceUnavailable()
        case errors.TooManyRedirects():
            return exceptions.MaxRedirectsExceeded(redirects=MAX_REDIRECTS)
        case errors.ConfigurationError():
            return exceptions.BadStoreConfiguration(store_name=store_name, reason=exc.message)
        case _:
            return exceptions.BackendException(exc.message)
