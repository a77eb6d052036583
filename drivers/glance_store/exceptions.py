"""glance_store's exception classes, with its message templates and formatting rule.

Glance catches these by name (``except glance_store.NotFound``), so every class the
documentation lists exists here with the same base class and the same ``message`` template.
``GlanceStoreException(message=None, **kwargs)`` formats the template (or the message given)
with ``%`` and the keyword arguments, and keeps the unformatted text when they do not fit,
exactly as the original does; the result is also kept as ``msg``.

kglance's own errors are translated into these classes by ``_translate`` with the kglance
error chained as ``__cause__``, so a traceback still shows what the driver saw.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from typing import Any, ClassVar

__all__ = [
    "AuthBadRequest",
    "AuthUrlNotFound",
    "AuthorizationFailure",
    "AuthorizationRedirect",
    "BackendException",
    "BadAuthStrategy",
    "BadStoreConfiguration",
    "BadStoreUri",
    "DriverLoadFailure",
    "Duplicate",
    "Forbidden",
    "GlanceStoreException",
    "HasSnapshot",
    "HostNotInitialized",
    "InUseByStore",
    "Invalid",
    "MaxRedirectsExceeded",
    "MissingCredentialError",
    "NoServiceEndpoint",
    "NotAuthenticated",
    "NotFound",
    "RedirectException",
    "RegionAmbiguity",
    "RemoteServiceUnavailable",
    "StorageFull",
    "StorageWriteDenied",
    "StoreAddDisabled",
    "StoreDeleteNotSupported",
    "StoreGetNotSupported",
    "StoreRandomGetNotSupported",
    "TimeoutError",
    "UnknownHashingAlgo",
    "UnknownScheme",
    "UnsupportedBackend",
]


class BackendException(Exception):
    """A store failed in a way no more specific class describes."""


class UnsupportedBackend(BackendException):
    pass


class RedirectException(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = urllib.parse.urlparse(url)


class GlanceStoreException(Exception):
    """Base of the templated exceptions: ``message % kwargs``, the template if none is given."""

    message: ClassVar[str] = "An unknown exception occurred"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        text = message or self.message
        if kwargs:
            # glance_store keeps the raw text when the arguments do not fit the template
            with contextlib.suppress(Exception):
                text = text % kwargs
        self.msg = text
        super().__init__(text)


class MissingCredentialError(GlanceStoreException):
    message = "Missing required credential: %(required)s"


class BadAuthStrategy(GlanceStoreException):
    message = 'Incorrect auth strategy, expected "%(expected)s" but received "%(received)s"'


class AuthorizationRedirect(GlanceStoreException):
    message = "Redirecting to %(uri)s for authorization."


class NotFound(GlanceStoreException):
    message = "Image %(image)s not found"


class UnknownHashingAlgo(GlanceStoreException):
    message = "Unknown hashing algorithm identifier: %(algo)s"


class UnknownScheme(GlanceStoreException):
    message = "Unknown scheme '%(scheme)s' found in URI"


class BadStoreUri(GlanceStoreException):
    message = "The Store URI was malformed: %(uri)s"


class Duplicate(GlanceStoreException):
    message = "Image %(image)s already exists"


class StorageFull(GlanceStoreException):
    message = "There is not enough disk space on the image storage media."


class StorageWriteDenied(GlanceStoreException):
    message = "Permission to write image storage media denied."


class AuthBadRequest(GlanceStoreException):
    message = "Connect error/bad request to Auth service at URL %(url)s."


class AuthUrlNotFound(GlanceStoreException):
    message = "Auth service at URL %(url)s not found."


class AuthorizationFailure(GlanceStoreException):
    message = "Authorization failed."


class NotAuthenticated(GlanceStoreException):
    message = "You are not authenticated."


class Forbidden(GlanceStoreException):
    message = "You are not authorized to complete this action."


class Invalid(GlanceStoreException):
    message = "Data supplied was not valid."


class BadStoreConfiguration(GlanceStoreException):
    message = "Store %(store_name)s could not be configured correctly. Reason: %(reason)s"


class DriverLoadFailure(GlanceStoreException):
    message = "Driver %(driver_name)s could not be loaded."


class StoreDeleteNotSupported(GlanceStoreException):
    message = "Deleting images from this store is not supported."


class StoreGetNotSupported(GlanceStoreException):
    message = "Getting images from this store is not supported."


class StoreRandomGetNotSupported(StoreGetNotSupported):
    message = (
        "Getting images randomly from this store is not supported. "
        "Offset: %(offset)s, length: %(chunk_size)s"
    )


class StoreAddDisabled(GlanceStoreException):
    message = "Configuration for store failed. Adding images to this store is disabled."


class MaxRedirectsExceeded(GlanceStoreException):
    message = "Maximum redirects (%(redirects)s) was exceeded."


class NoServiceEndpoint(GlanceStoreException):
    message = "Response from Keystone does not contain a Glance endpoint."


class RegionAmbiguity(GlanceStoreException):
    message = (
        "Multiple 'image' service matches for region %(region)s. This generally means that a "
        "region is required and you have not supplied one."
    )


class RemoteServiceUnavailable(GlanceStoreException):
    message = "Remote server where the image is present is unavailable."


class HasSnapshot(GlanceStoreException):
    message = "The image cannot be deleted because it has snapshot(s)."


class InUseByStore(GlanceStoreException):
    message = (
        "The image cannot be deleted because it is in use through the backend store outside "
        "of Glance."
    )


class HostNotInitialized(GlanceStoreException):
    message = (
        "The glance cinder store host %(host)s which will used to perform nfs mount/umount "
        "operations isn't initialized."
    )


class TimeoutError(GlanceStoreException):  # glance_store's name; it shadows the builtin
    message = "Operation timed out after %(timeout)ds. Check storage health and connectivity."
