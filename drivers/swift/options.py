"""The swift driver's options, named and defaulted as glance_store 5.7.0 names them.

Every swift option of glance_store is accepted so an existing ``glance-api.conf`` section works
unchanged; the few that have no meaning here are accepted and documented as inert rather than
refused (``swift_store_use_trusts``, ``swift_buffer_on_upload``, ``swift_upload_buffer_dir``,
``swift_store_ssl_compression``). Secrets are ``pydantic.SecretStr``: they never show in a
``repr``, a log line or a validation error.

Units follow glance: ``swift_store_large_object_size`` and ``swift_store_large_object_chunk_size``
are in glance's "MB" of 1,024,000 bytes (``units.k * units.Ki``), not MiB.

What glance checks at configure time is checked here: the seed range, a non-empty container,
multi-tenant mode excluding ``swift_store_config_file``. Reading the accounts file needs the
disk, so it happens when the driver is built (``accounts``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

import pydantic

from kglance.drivers import base

GLANCE_MB = 1000 * 1024  # glance_store's ONE_MB: "mixed meaning of MB"
DEFAULT_CONTAINER = "glance"
ENDPOINT_TYPES = ("publicURL", "adminURL", "internalURL")
# Swift's own limit on container names (constraints.MAX_CONTAINER_NAME_LENGTH)
MAX_CONTAINER_NAME_LENGTH = 256
_AUTH_VERSIONS = ("1", "3")


def _split_list(value: object) -> object:
    """oslo's ListOpt: ``"a, b"`` (or every line of a repeated key) gives ``("a", "b")``."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable):
        return value  # pydantic reports the type error
    parts: list[object] = []
    for item in value:
        if isinstance(item, str):
            parts.extend(p.strip() for p in item.split(",") if p.strip())
        else:
            parts.append(item)
    return tuple(parts)


class SwiftOptions(base.DriverOptions):
    # --- connection and TLS
    swift_store_auth_insecure: bool = False
    swift_store_cacert: str | None = None
    swift_store_region: str | None = None
    swift_store_endpoint: str | None = None
    swift_store_endpoint_type: Literal["publicURL", "adminURL", "internalURL"] = "publicURL"
    swift_store_service_type: str = "object-store"
    swift_store_ssl_compression: bool = True  # accepted; requests never compresses TLS

    # --- where images go
    swift_store_container: str = DEFAULT_CONTAINER
    swift_store_create_container_on_put: bool = False
    swift_store_multi_tenant: bool = False
    swift_store_multiple_containers_seed: int = pydantic.Field(default=0, ge=0, le=32)
    swift_store_admin_tenants: tuple[str, ...] = ()

    # --- large objects, in glance "MB" (1,024,000 bytes)
    swift_store_large_object_size: int = pydantic.Field(default=5120, ge=1)
    swift_store_large_object_chunk_size: int = pydantic.Field(default=200, ge=1)

    # --- reliability
    swift_store_retry_get_count: int = pydantic.Field(default=0, ge=0)
    swift_store_expire_soon_interval: int = pydantic.Field(default=60, ge=0)
    swift_store_use_trusts: bool = True  # accepted; there is no user token to delegate
    swift_buffer_on_upload: bool = False  # accepted; segments stream from bounded queues
    swift_upload_buffer_dir: str | None = None

    # --- credentials: the accounts file, or the deprecated single-account options
    swift_store_config_file: str | None = None
    default_swift_reference: str = "ref1"
    swift_store_auth_version: str = "3"
    swift_store_auth_address: str | None = None
    swift_store_user: pydantic.SecretStr | None = None
    swift_store_key: pydantic.SecretStr | None = None
    swift_store_application_credential_id: pydantic.SecretStr | None = None
    swift_store_application_credential_secret: pydantic.SecretStr | None = None
    swift_store_project_name: str | None = None
    swift_store_project_id: str | None = None

    # --- kglance's own
    # segment PUTs of one upload in flight at once (glance uploads them one after another)
    swift_store_upload_concurrency: int = pydantic.Field(default=4, ge=1, le=64)
    # threads for this backend's blocking swiftclient calls, and as many for request bodies
    swift_store_thread_pool_size: int = pydantic.Field(default=16, ge=2, le=512)
    # connect and per-read socket timeout of every request, in seconds
    swift_store_timeout: float = pydantic.Field(default=60.0, gt=0)

    @pydantic.field_validator("swift_store_admin_tenants", mode="before")
    @classmethod
    def _tenants_from_text(cls, value: object) -> object:
        return _split_list(value)

    @pydantic.field_validator(
        "swift_store_cacert",
        "swift_store_region",
        "swift_store_endpoint",
        "swift_store_config_file",
        "swift_store_auth_address",
        "swift_upload_buffer_dir",
        "swift_store_project_name",
        "swift_store_project_id",
    )
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return value.strip()

    @pydantic.field_validator(
        "swift_store_user",
        "swift_store_key",
        "swift_store_application_credential_id",
        "swift_store_application_credential_secret",
    )
    @classmethod
    def _empty_secret_is_unset(cls, value: pydantic.SecretStr | None) -> pydantic.SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        return value

    @pydantic.field_validator("swift_store_container")
    @classmethod
    def _check_container(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("swift_store_container must not be empty")
        if "/" in value or len(value) > MAX_CONTAINER_NAME_LENGTH - 33:
            # room for "_" plus a 32-character seed suffix (or "_" plus an image id prefix)
            raise ValueError(
                "swift_store_container must have no '/' and at most "
                f"{MAX_CONTAINER_NAME_LENGTH - 33} characters"
            )
        return value

    @pydantic.field_validator("swift_store_auth_version", mode="before")
    @classmethod
    def _check_auth_version(cls, value: object) -> str:
        return normalise_auth_version(value)

    @pydantic.field_validator("swift_store_endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/]+", value):
            raise ValueError("swift_store_endpoint must be an http:// or https:// URL")
        return value.rstrip("/") if value is not None else None

    @pydantic.model_validator(mode="after")
    def _check_combination(self) -> SwiftOptions:
        if self.swift_store_multi_tenant and self.swift_store_config_file:
            # glance_store: multi-tenant-store-058b67ce5b7f3bd0.yaml
            raise ValueError(
                "swift_store_multi_tenant and swift_store_config_file are mutually exclusive"
            )
        return self

    @property
    def large_object_bytes(self) -> int:
        """Images of at least this many bytes (or of unknown size) become SLOs."""
        return self.swift_store_large_object_size * GLANCE_MB

    @property
    def segment_bytes(self) -> int:
        return self.swift_store_large_object_chunk_size * GLANCE_MB


def normalise_auth_version(value: object) -> str:
    """``1``, ``1.0``, ``v1`` and ``3``, ``v3``, ``3.0`` to ``"1"`` or ``"3"``."""
    text = str(value).strip().lower().removeprefix("v")
    text = {"1.0": "1", "3.0": "3"}.get(text, text)
    if text not in _AUTH_VERSIONS:
        raise ValueError(
            f"auth version {value!r} is not supported: use 1 (tempauth/swauth) or 3 (keystone)"
        )
    return text
