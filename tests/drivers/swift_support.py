"""What the swift tests share: the test server's accounts, a raw swiftclient connection to
inspect and prepare containers behind the driver's back, and containers that clean up after
themselves.

The server is whichever Swift ``scripts/servers/swift-up.sh`` started (tempauth, auth v1): its
KEY=value lines are in the environment (``SWIFT_AUTH_URL``, ``SWIFT_USER``, ``SWIFT_KEY``, a second
account ``SWIFT_USER2``/``SWIFT_KEY2``, and the reseller admin ``SWIFT_ADMIN_USER``/``_KEY``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from kglance.drivers import backends, registry
from kglance.drivers.swift import SwiftDriver
from tests.conftest import require_env


@dataclasses.dataclass(frozen=True)
class SwiftServer:
    auth_url: str
    user: str
    key: str
    user2: str
    key2: str
    admin_user: str
    admin_key: str

    @classmethod
    def from_env(cls) -> SwiftServer:
        return cls(
            auth_url=require_env("SWIFT_AUTH_URL"),
            user=require_env("SWIFT_USER"),
            key=require_env("SWIFT_KEY"),
            user2=require_env("SWIFT_USER2"),
            key2=require_env("SWIFT_KEY2"),
            admin_user=require_env("SWIFT_ADMIN_USER"),
            admin_key=require_env("SWIFT_ADMIN_KEY"),
        )

    def options(self, **extra: Any) -> dict[str, Any]:
        """Deprecated-style single-account options for the first test account (auth v1)."""
        return {
            "swift_store_auth_address": self.auth_url,
            "swift_store_auth_version": "1",
            "swift_store_user": self.user,
            "swift_store_key": self.key,
            "swift_store_create_container_on_put": True,
            **extra,
        }

    def connection(self, *, user: str | None = None, key: str | None = None) -> Any:
        import swiftclient.client

        return swiftclient.client.Connection(
            authurl=self.auth_url,
            user=user or self.user,
            key=key or self.key,
            auth_version="1",
            retries=2,
            starting_backoff=0.1,
        )

    def storage_url(self, *, user: str | None = None, key: str | None = None) -> str:
        conn = self.connection(user=user, key=key)
        try:
            url, _ = conn.get_auth()
            return str(url)
        finally:
            conn.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def build(options: Mapping[str, Any], *, backend_id: str = "swift") -> SwiftDriver:
    driver = registry.Registry().build("swift", options, backend_id=backend_id)
    assert isinstance(driver, SwiftDriver)
    return driver


def backend(driver: SwiftDriver, *, backend_id: str = "swift") -> backends.Backend:
    return backends.Backend(driver, backend_id=backend_id)


def listing(conn: Any, container: str) -> list[str]:
    """Every object name in ``container`` (all pages); [] when it does not exist."""
    import swiftclient.exceptions

    try:
        _, objects = conn.get_container(container, full_listing=True)
    except swiftclient.exceptions.ClientException as exc:
        if exc.http_status == 404:
            return []
        raise
    return sorted(str(o["name"]) for o in objects)


def exists(conn: Any, container: str, name: str) -> bool:
    import swiftclient.exceptions

    try:
        conn.head_object(container, name)
    except swiftclient.exceptions.ClientException as exc:
        if exc.http_status == 404:
            return False
        raise
    return True


def container_exists(conn: Any, container: str) -> bool:
    import swiftclient.exceptions

    try:
        conn.head_container(container)
    except swiftclient.exceptions.ClientException as exc:
        if exc.http_status == 404:
            return False
        raise
    return True


def wipe(conn: Any, container: str) -> None:
    """Delete every object of ``container`` and the container itself (gone already is fine)."""
    import swiftclient.exceptions

    for name in listing(conn, container):
        with contextlib.suppress(swiftclient.exceptions.ClientException):
            conn.delete_object(container, name)
    with contextlib.suppress(swiftclient.exceptions.ClientException):
        conn.delete_container(container)


@contextlib.contextmanager
def scratch_containers(conn: Any, *names: str) -> Iterator[None]:
    """Remove the named containers and what they hold when the block ends."""
    try:
        yield
    finally:
        for name in names:
            wipe(conn, name)
