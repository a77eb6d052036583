"""Every documented exception: its base class, message template and formatting rule."""

from __future__ import annotations

import types

import pytest

# (class name, keyword arguments, expected message)
CASES = [
    (
        "AuthBadRequest",
        {"url": "http://k"},
        "Connect error/bad request to Auth service at URL http://k.",
    ),
    ("AuthUrlNotFound", {"url": "http://k"}, "Auth service at URL http://k not found."),
    ("AuthorizationFailure", {}, "Authorization failed."),
    ("AuthorizationRedirect", {"uri": "http://r"}, "Redirecting to http://r for authorization."),
    (
        "BadAuthStrategy",
        {"expected": "keystone", "received": "noauth"},
        'Incorrect auth strategy, expected "keystone" but received "noauth"',
    ),
    (
        "BadStoreConfiguration",
        {"store_name": "file", "reason": "no datadir"},
        "Store file could not be configured correctly. Reason: no datadir",
    ),
    ("BadStoreUri", {"uri": "fil://x"}, "The Store URI was malformed: fil://x"),
    ("DriverLoadFailure", {"driver_name": "vmware"}, "Driver vmware could not be loaded."),
    ("Duplicate", {"image": "abc"}, "Image abc already exists"),
    ("Forbidden", {}, "You are not authorized to complete this action."),
    ("GlanceStoreException", {}, "An unknown exception occurred"),
    ("HasSnapshot", {}, "The image cannot be deleted because it has snapshot(s)."),
    (
        "InUseByStore",
        {},
        "The image cannot be deleted because it is in use through the backend store outside "
        "of Glance.",
    ),
    ("Invalid", {}, "Data supplied was not valid."),
    ("MaxRedirectsExceeded", {"redirects": 5}, "Maximum redirects (5) was exceeded."),
    ("MissingCredentialError", {"required": "key"}, "Missing required credential: key"),
    ("NoServiceEndpoint", {}, "Response from Keystone does not contain a Glance endpoint."),
    ("NotAuthenticated", {}, "You are not authenticated."),
    ("NotFound", {"image": "abc"}, "Image abc not found"),
    (
        "RegionAmbiguity",
        {"region": "r1"},
        "Multiple 'image' service matches for region r1. This generally means that a region "
        "is required and you have not supplied one.",
    ),
    (
        "RemoteServiceUnavailable",
        {},
        "Remote server where the image is present is unavailable.",
    ),
    ("StorageFull", {}, "There is not enough disk space on the image storage media."),
    ("StorageWriteDenied", {}, "Permission to write image storage media denied."),
    (
        "StoreAddDisabled",
        {},
        "Configuration for store failed. Adding images to this store is disabled.",
    ),
    ("StoreDeleteNotSupported", {}, "Deleting images from this store is not supported."),
    ("StoreGetNotSupported", {}, "Getting images from this store is not supported."),
    (
        "StoreRandomGetNotSupported",
        {"offset": 5, "chunk_size": None},
        "Getting images randomly from this store is not supported. Offset: 5, length: None",
    ),
    ("UnknownHashingAlgo", {"algo": "nosuch"}, "Unknown hashing algorithm identifier: nosuch"),
    ("UnknownScheme", {"scheme": "fil"}, "Unknown scheme 'fil' found in URI"),
    (
        "HostNotInitialized",
        {"host": "h1"},
        "The glance cinder store host h1 which will used to perform nfs mount/umount "
        "operations isn't initialized.",
    ),
    (
        "TimeoutError",
        {"timeout": 30},
        "Operation timed out after 30s. Check storage health and connectivity.",
    ),
]


@pytest.mark.parametrize(("name", "kwargs", "expected"), CASES, ids=[c[0] for c in CASES])
def test_message_is_the_template_formatted_with_the_arguments(
    gs: types.ModuleType, name: str, kwargs: dict[str, object], expected: str
) -> None:
    cls = getattr(gs.exceptions, name)
    assert issubclass(cls, gs.exceptions.GlanceStoreException)
    exc = cls(**kwargs)
    assert str(exc) == expected
    assert exc.msg == expected
    assert getattr(gs, name) is cls  # re-exported by the package, as glance_store does


def test_every_templated_class_is_covered(gs: types.ModuleType) -> None:
    templated = {
        name
        for name in gs.exceptions.__all__
        if issubclass(getattr(gs.exceptions, name), gs.exceptions.GlanceStoreException)
    }
    assert templated == {case[0] for case in CASES}


def test_an_explicit_message_replaces_the_template_and_is_formatted_too(
    gs: types.ModuleType,
) -> None:
    assert str(gs.NotFound("gone")) == "gone"
    assert str(gs.NotFound("gone: %(image)s", image="x")) == "gone: x"
    assert str(gs.BadStoreUri(message="bad scheme")) == "bad scheme"


def test_arguments_that_do_not_fit_leave_the_template_unformatted(gs: types.ModuleType) -> None:
    exc = gs.NotFound(unrelated="x")
    assert str(exc) == "Image %(image)s not found"
    assert str(gs.MaxRedirectsExceeded(redirects=object())).startswith("Maximum redirects (")


def test_hierarchy(gs: types.ModuleType) -> None:
    assert issubclass(gs.StoreRandomGetNotSupported, gs.StoreGetNotSupported)
    assert issubclass(gs.UnsupportedBackend, gs.BackendException)
    assert not issubclass(gs.BackendException, gs.GlanceStoreException)
    assert not issubclass(gs.RedirectException, gs.GlanceStoreException)
    redirect = gs.RedirectException("https://example.com:8443/a?b=c")
    assert (redirect.url.scheme, redirect.url.netloc, redirect.url.path) == (
        "https",
        "example.com:8443",
        "/a",
    )
