"""What the operator does to an ImageLocation's bytes besides copying them: check, delete, share.

Each operation turns the drivers' error tree into an outcome the handlers can put into a
condition without knowing any driver: a condition status (``True``/``False``/``Unknown``), a
CamelCase reason and a message a user can act on. The rules:

* Verification asks the backend for the object's size (a HEAD or a stat, never a read) and
  compares it with the recorded size. A missing object or another size is ``False``; a backend
  that cannot answer right now is ``Unknown``, because an outage says nothing about the bytes.
* Deletion is idempotent (drivers treat a missing object as deleted). What happens when it
  fails is decided by ``reclaim_verdict``: in-use and has-snapshot errors and outages are
  retried for as long as they last, since the bytes exist and giving up would orphan them
  silently; a backend that is gone or misconfigured is retried for a grace period and then the
  object is released with a warning naming the bytes left behind, so deleting a namespace can
  never hang forever; a backend that cannot delete at all (read-only http) releases at once.
* ACLs are a swift multi-tenant ability. A driver has it when it provides ``set_acls`` with the
  swift driver's signature (``AclSetter``); other backends report ``Unsupported``.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from typing import Literal, Protocol, runtime_checkable

from kglance.drivers import backends, errors, locations

ConditionStatus = Literal["True", "False", "Unknown"]

# how long a deletion waits for a backend that is not configured before giving up on the bytes
RELEASE_AFTER = 600.0
RETRY_DELAY = 30.0  # seconds between two attempts at a deletion that failed


def reason_of(exc: errors.StoreError) -> str:
    """A condition reason for an error: its class name (``NotFound``, ``HasSnapshot``, ...)."""
    return type(exc).__name__


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    status: ConditionStatus
    reason: str
    message: str
    size: int | None = None  # the size the backend reported, when it answered


async def verify(
    backend: backends.Backend, location: locations.Location, *, expected_size: int | None
) -> Outcome:
    """Whether the bytes are at ``location`` with the recorded size."""
    try:
        size = await backend.size(location)
    except (errors.NotFound, errors.InvalidLocation) as exc:
        return Outcome("False", reason_of(exc), exc.message)
    except errors.StoreError as exc:
        return Outcome("Unknown", reason_of(exc), exc.message)
    if expected_size is not None and size != expected_size:
        return Outcome(
            "False",
            "SizeMismatch",
            f"{location} holds {size} bytes, {expected_size} are recorded",
            size=size,
        )
    return Outcome("True", "Verified", f"{location} holds {size} bytes", size=size)


class Verdict(enum.Enum):
    RETRY = "retry"  # keep the finalizer, try again later
    RELEASE = "release"  # remove the finalizer without the bytes having been deleted


def reclaim_verdict(
    exc: errors.StoreError, *, waited: float, release_after: float = RELEASE_AFTER
) -> Verdict:
    """What to do when deleting the bytes failed ``waited`` seconds after deletion began."""
    if isinstance(exc, errors.Unsupported | errors.InvalidRequest):
        return Verdict.RELEASE  # no retry can ever delete them through this backend
    if isinstance(exc, errors.UnknownBackend | errors.ConfigurationError):
        return Verdict.RELEASE if waited >= release_after else Verdict.RETRY
    return Verdict.RETRY


@runtime_checkable
class AclSetter(Protocol):
    """A driver that can say who may read and write an image (the swift driver)."""

    async def set_acls(
        self,
        location: locations.Location,
        *,
        public: bool = False,
        read_tenants: Iterable[str] = (),
        write_tenants: Iterable[str] = (),
    ) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Acls:
    public: bool = False
    read_tenants: tuple[str, ...] = ()
    write_tenants: tuple[str, ...] = ()


async def apply_acls(
    backend: backends.Backend, location: locations.Location, acls: Acls
) -> Outcome:
    """Set the image's ACLs; an outcome for the ``AclsApplied`` condition."""
    driver = backend.driver
    if not isinstance(driver, AclSetter):
        return Outcome(
            "False",
            "Unsupported",
            f"backend {backend.id!r} ({backend.type_name}) has no ACLs: they need a swift "
            "backend with multiTenant: true",
        )
    try:
        backend.check_location(location)
        await driver.set_acls(
            location,
            public=acls.public,
            read_tenants=acls.read_tenants,
            write_tenants=acls.write_tenants,
        )
    except errors.StoreError as exc:
        status: ConditionStatus = "Unknown" if exc.retryable else "False"
        return Outcome(status, reason_of(exc), exc.message)
    shown = "public" if acls.public else f"read: {', '.join(acls.read_tenants) or 'none'}"
    return Outcome(
        "True", "Applied", f"{shown}; write: {', '.join(acls.write_tenants) or 'admins only'}"
    )
