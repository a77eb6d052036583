"""kglance's own error tree.

Drivers talk to SDKs (boto3, swiftclient, librados, os-brick, aiohttp) whose exceptions differ
in every way. Nothing above the drivers may depend on them, so each driver translates what it
catches into one of the classes below and chains the original as ``__cause__``
(``raise NotFound(...) from exc``). Callers catch at any level of the tree::

    StoreError
    ├── NotFound                      the image or location does not exist
    ├── AlreadyExists                 create-only add of an id that is taken
    ├── InUse                         the object cannot be removed while something uses it
    │   └── HasSnapshot               ... because snapshots of it remain (rbd)
    ├── InvalidRequest                the caller asked for something malformed
    │   ├── InvalidImageId            ids with '/', '..', control characters, > 255 chars
    │   ├── InvalidLocation           unparsable URI, or one outside the backend's confinement
    │   ├── SizeMismatch              the stream did not match the declared size
    │   ├── UnknownHashAlgorithm      a multihash algorithm hashlib does not have
    │   └── RangeNotSatisfiable       offset at or past the end of the object
    ├── ChecksumMismatch              the bytes did not hash to the expected digest
    ├── UnknownBackend                no configured backend has that id or serves that location
    ├── Unsupported                   the backend cannot do this (write to http, ranged read, ...)
    ├── StorageFull                   ENOSPC/EFBIG, quota, 413
    ├── WriteDenied                   EACCES, 403 on write
    ├── BackendError                  the backend failed in a way not listed above
    │   ├── RemoteUnavailable         connection refused/reset, timeouts, 5xx (retryable)
    │   └── TooManyRedirects          an http location redirected past the limit
    ├── ConfigurationError            a backend cannot be configured (start-up, never silent)
    └── MissingDependency             the SDK for a driver is not installed (names the extra)

This module is also the one place that maps errors to HTTP statuses (``http_status``) and to
retry decisions (``retryable``); the sidecar and the operator read those attributes and never
re-decide. Messages never contain credentials: drivers format locations with
``locations.redact`` before putting them into a message.
"""

from __future__ import annotations

from typing import ClassVar


class StoreError(Exception):
    """Base of every error kglance raises on purpose."""

    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(StoreError):
    code = "not_found"
    http_status = 404


class AlreadyExists(StoreError):
    code = "duplicate"
    http_status = 409


class InUse(StoreError):
    """glance_store's ``InUseByStore``: clones or open handles keep the object alive."""

    code = "in_use"
    http_status = 409


class HasSnapshot(InUse):
    """glance_store's ``HasSnapshot``: the object has snapshots and cannot be removed."""

    code = "has_snapshot"


class InvalidRequest(StoreError):
    code = "invalid_request"
    http_status = 400


class InvalidImageId(InvalidRequest):
    code = "invalid_image_id"


class InvalidLocation(InvalidRequest):
    code = "invalid_location"


class SizeMismatch(InvalidRequest):
    code = "size_mismatch"

    def __init__(self, message: str, *, expected: int, received: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.received = received


class UnknownHashAlgorithm(InvalidRequest):
    code = "unknown_hash_algorithm"


class RangeNotSatisfiable(InvalidRequest):
    code = "range_not_satisfiable"
    http_status = 416

    def __init__(self, message: str, *, size: int | None) -> None:
        super().__init__(message)
        self.size = size


class ChecksumMismatch(StoreError):
    code = "checksum_mismatch"
    http_status = 422


class UnknownBackend(StoreError):
    code = "unknown_backend"
    http_status = 404


class Unsupported(StoreError):
    code = "unsupported"
    http_status = 405


class StorageFull(StoreError):
    code = "storage_full"
    http_status = 507


class WriteDenied(StoreError):
    code = "write_denied"
    http_status = 403


class BackendError(StoreError):
    code = "backend_error"
    http_status = 502


class RemoteUnavailable(BackendError):
    code = "backend_unavailable"
    http_status = 503
    retryable = True


class TooManyRedirects(BackendError):
    code = "too_many_redirects"


class ConfigurationError(StoreError):
    code = "configuration_error"
    http_status = 500


class MissingDependency(ConfigurationError):
    code = "missing_dependency"

    def __init__(self, *, driver: str, module: str, extra: str) -> None:
        super().__init__(
            f"the {driver} driver needs the Python module {module!r}; "
            f"install it with: pip install 'kglance[{extra}]'"
        )
        self.driver = driver
        self.module = module
        self.extra = extra
