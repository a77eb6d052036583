"""The StoreBackend and ImageLocation specs as typed models, checked like the CRDs check them.

The apiserver validates a custom resource against the CRD's schema, but the operator also
reads bodies that never went through one (``kglance render`` on local YAML, tests, a CRD
older than the operator). These models are the operator's own reading of the same schema:
camelCase aliases exactly as in ``crds/*.yaml``, unknown fields refused, defaults equal to the
drivers' defaults. ``tests/operator/test_spec.py`` keeps the field sets of the models and the
CRDs identical, so neither can drift.

Every field of a store block names the one glance_store option it sets (``glance_option``);
the test checks each against the driver's ``Options`` model, and ``rendering`` writes the
option by that name. Credentials are never values here: they are references to Secret keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

import pydantic
from pydantic.alias_generators import to_camel

from kglance.drivers import backends

StoreType = Literal["file", "http", "swift", "s3", "rbd", "cinder"]
STORE_TYPES: tuple[StoreType, ...] = ("file", "http", "swift", "s3", "rbd", "cinder")

_OPTION_KEY = "glanceOption"
# A proxy is one URL: the option joins them with ',' and splits each at its first ':'.
_PROXY = r"^https?://[^\s,]+$"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def option(glance_option: str, default: Any = None, **constraints: Any) -> Any:
    """A field that sets ``glance_option`` of the block's driver."""
    return pydantic.Field(default, json_schema_extra={_OPTION_KEY: glance_option}, **constraints)


def glance_option(model: type[pydantic.BaseModel], field_name: str) -> str:
    """The glance_store option a block's field sets."""
    extra = model.model_fields[field_name].json_schema_extra
    assert isinstance(extra, dict), f"{model.__name__}.{field_name} names no option"
    name = extra[_OPTION_KEY]
    assert isinstance(name, str)
    return name


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


def _check_kube_name(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes object name")
    return value


# ----------------------------------------------------------------- references


class KeyRef(_Model):
    """One key of a Secret or ConfigMap in the resource's namespace."""

    name: str = pydantic.Field(min_length=1, max_length=253)
    key: str = pydantic.Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")

    @pydantic.field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_kube_name(value)


class SecretKeyRef(_Model):
    secret_key_ref: KeyRef


class ContentSource(_Model):
    """Exactly one of a Secret key or a ConfigMap key (CA bundles, ceph.conf)."""

    secret_key_ref: KeyRef | None = None
    config_map_key_ref: KeyRef | None = None

    @pydantic.model_validator(mode="after")
    def _exactly_one(self) -> ContentSource:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ValueError("set exactly one of secretKeyRef and configMapKeyRef")
        return self


# Names kept as glance_store's "CABundleSource"/"ConfigSource" in the design contract.
CABundleSource = ContentSource
ConfigSource = ContentSource


# ----------------------------------------------------------------- store blocks


class FileBlock(_Model):
    # the claim is mounted at <volume root>/<backend>, which becomes the datadir
    claim_name: str = option("filesystem_store_datadir", ..., min_length=1, max_length=253)
    sub_path: str = option("filesystem_store_datadir", "")
    file_perm: int = option("filesystem_store_file_perm", 0, ge=0, le=7777)
    chunk_size: int = option("filesystem_store_chunk_size", 1024 * 1024, ge=1)
    thin_provisioning: bool = option("filesystem_thin_provisioning", False)

    @pydantic.field_validator("claim_name")
    @classmethod
    def _claim(cls, value: str) -> str:
        return _check_kube_name(value)

    @pydantic.field_validator("sub_path")
    @classmethod
    def _sub_path(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/") or "\x00" in value:
            raise ValueError("subPath must be relative and must not contain '..'")
        return value


class Proxies(_Model):
    http: str | None = pydantic.Field(None, pattern=_PROXY)
    https: str | None = pydantic.Field(None, pattern=_PROXY)


class HttpBlock(_Model):
    ca_bundle: ContentSource | None = option("https_ca_certificates_file")
    insecure: bool = option("https_insecure", False)
    proxies: Proxies | None = option("http_proxy_information")
    timeout_seconds: float = option("http_timeout", 60, gt=0)
    max_redirects: int = option("http_max_redirects", 5, ge=0, le=50)


ChecksumMode = Literal["when_required", "when_supported"]


class S3Block(_Model):
    endpoint: str = option("s3_store_host", ..., min_length=1)
    region: str = option("s3_store_region_name", "")
    bucket: str = option("s3_store_bucket", ..., min_length=1)
    access_key: SecretKeyRef = option("s3_store_access_key", ...)
    secret_key: SecretKeyRef = option("s3_store_secret_key", ...)
    create_bucket_on_put: bool = option("s3_store_create_bucket_on_put", False)
    bucket_url_format: Literal["auto", "virtual", "path"] = option(
        "s3_store_bucket_url_format", "auto"
    )
    large_object_size_mi_b: int = option(
        "s3_store_large_object_size", 100, ge=0, alias="largeObjectSizeMiB"
    )
    large_object_chunk_size_mi_b: int = option(
        "s3_store_large_object_chunk_size", 10, ge=5, le=5120, alias="largeObjectChunkSizeMiB"
    )
    thread_pools: int = option("s3_store_thread_pools", 10, ge=1, le=1000)
    ca_bundle: ContentSource | None = option("s3_store_cacert")
    enable_data_integrity_protection: bool = option(
        "s3_store_enable_data_integrity_protection", False
    )
    request_checksum_calculation: ChecksumMode = option(
        "s3_store_request_checksum_calculation", "when_required"
    )
    response_checksum_validation: ChecksumMode = option(
        "s3_store_response_checksum_validation", "when_required"
    )


class SwiftBlock(_Model):
    auth_address: str | None = option("swift_store_auth_address")
    auth_version: Literal["1", "3"] = option("swift_store_auth_version", "3")
    user: SecretKeyRef | None = option("swift_store_user")
    key: SecretKeyRef | None = option("swift_store_key")
    application_credential_id: SecretKeyRef | None = option("swift_store_application_credential_id")
    application_credential_secret: SecretKeyRef | None = option(
        "swift_store_application_credential_secret"
    )
    project_name: str | None = option("swift_store_project_name")
    project_id: str | None = option("swift_store_project_id")
    region: str | None = option("swift_store_region")
    endpoint: str | None = option("swift_store_endpoint", pattern=r"^https?://[^/\s]+")
    endpoint_type: Literal["publicURL", "adminURL", "internalURL"] = option(
        "swift_store_endpoint_type", "publicURL"
    )
    service_type: str = option("swift_store_service_type", "object-store", min_length=1)
    insecure: bool = option("swift_store_auth_insecure", False)
    ca_bundle: ContentSource | None = option("swift_store_cacert")
    container: str = option(
        "swift_store_container", "glance", min_length=1, max_length=223, pattern=r"^[^/]+$"
    )
    create_container_on_put: bool = option("swift_store_create_container_on_put", False)
    multi_tenant: bool = option("swift_store_multi_tenant", False)
    multiple_containers_seed: int = option("swift_store_multiple_containers_seed", 0, ge=0, le=32)
    admin_tenants: tuple[str, ...] = option("swift_store_admin_tenants", ())
    # glance "MB" of 1,024,000 bytes, whatever the field name says (the contract's name)
    large_object_size_mi_b: int = option(
        "swift_store_large_object_size", 5120, ge=1, alias="largeObjectSizeMiB"
    )
    large_object_chunk_size_mi_b: int = option(
        "swift_store_large_object_chunk_size", 200, ge=1, alias="largeObjectChunkSizeMiB"
    )
    retry_get_count: int = option("swift_store_retry_get_count", 0, ge=0)
    expire_soon_interval_seconds: int = option("swift_store_expire_soon_interval", 60, ge=0)
    use_trusts: bool = option("swift_store_use_trusts", True)
    buffer_on_upload: bool = option("swift_buffer_on_upload", False)
    upload_concurrency: int = option("swift_store_upload_concurrency", 4, ge=1, le=64)
    timeout_seconds: float = option("swift_store_timeout", 60, gt=0)

    @pydantic.field_validator("admin_tenants")
    @classmethod
    def _tenants(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for tenant in value:
            if not tenant or "," in tenant or tenant != tenant.strip():
                raise ValueError(
                    f"admin tenant {tenant!r} must be non-empty, without ',' or spaces"
                )
        return value


class RbdBlock(_Model):
    pool: str = option("rbd_store_pool", "images", min_length=1)
    user: str | None = option("rbd_store_user")
    monitors: tuple[str, ...] | None = option("rbd_store_ceph_conf", min_length=1)
    ceph_config: ContentSource | None = option("rbd_store_ceph_conf")
    keyring: SecretKeyRef | None = option("rbd_store_keyring")
    chunk_size_mi_b: int = option("rbd_store_chunk_size", 8, ge=1, le=32, alias="chunkSizeMiB")
    thin_provisioning: bool = option("rbd_thin_provisioning", False)
    image_features: str | None = option("rbd_store_image_features")
    trash_images_with_snapshots: bool = option("rbd_store_trash_images_with_snapshots", True)
    connect_timeout_seconds: int = option("rados_connect_timeout", -1, ge=-1)

    @pydantic.field_validator("monitors")
    @classmethod
    def _monitors(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for monitor in value or ():
            if not re.fullmatch(r"[^\s,;]+", monitor):
                raise ValueError(f"monitor {monitor!r} must be one address without ',' or spaces")
        return value

    @pydantic.model_validator(mode="after")
    def _one_cluster(self) -> RbdBlock:
        if (self.monitors is None) == (self.ceph_config is None):
            raise ValueError("set exactly one of monitors and cephConfig")
        return self


class CinderBlock(_Model):
    auth_address: str | None = option("cinder_store_auth_address")
    user_name: str | None = option("cinder_store_user_name")
    password: SecretKeyRef | None = option("cinder_store_password")
    application_credential_id: str | None = option("cinder_store_application_credential_id")
    application_credential_secret: SecretKeyRef | None = option(
        "cinder_store_application_credential_secret"
    )
    project_name: str | None = option("cinder_store_project_name")
    user_domain_name: str = option("cinder_store_user_domain_name", "Default")
    project_domain_name: str = option("cinder_store_project_domain_name", "Default")
    catalog_info: str = option(
        "cinder_catalog_info", "volumev3::publicURL", pattern=r"^[^:\s]+:[^:\s]*:[^:\s]+$"
    )
    endpoint_template: str | None = option("cinder_endpoint_template")
    region_name: str | None = option("cinder_os_region_name")
    ca_bundle: ContentSource | None = option("cinder_ca_certificates_file")
    insecure: bool = option("cinder_api_insecure", False)
    http_retries: int = option("cinder_http_retries", 3, ge=0)
    state_transition_timeout_seconds: int = option("cinder_state_transition_timeout", 300, ge=1)
    volume_type: str | None = option("cinder_volume_type")
    use_multipath: bool = option("cinder_use_multipath", False)
    enforce_multipath: bool = option("cinder_enforce_multipath", False)
    do_extend_attached: bool = option("cinder_do_extend_attached", False)
    attachment_retry_attempts: int = option("cinder_attachment_retry_attempts", 5, ge=1)


BLOCKS: Mapping[StoreType, type[_Model]] = {
    "file": FileBlock,
    "http": HttpBlock,
    "swift": SwiftBlock,
    "s3": S3Block,
    "rbd": RbdBlock,
    "cinder": CinderBlock,
}


# ----------------------------------------------------------------- StoreBackend


class StoreBackendSpec(_Model):
    type: StoreType
    description: str | None = None
    weight: int = 0
    default: bool = False
    file: FileBlock | None = None
    http: HttpBlock | None = None
    s3: S3Block | None = None
    swift: SwiftBlock | None = None
    rbd: RbdBlock | None = None
    cinder: CinderBlock | None = None

    @pydantic.model_validator(mode="after")
    def _block_matches_type(self) -> StoreBackendSpec:
        present = [name for name in STORE_TYPES if getattr(self, name) is not None]
        if present != [self.type]:
            others = [name for name in present if name != self.type]
            if others:
                raise ValueError(f"type is {self.type}: remove the {', '.join(others)} block")
            raise ValueError(f"type is {self.type}: set the {self.type} block")
        return self

    @property
    def block(self) -> _Model:
        """The store block named by ``type``."""
        block = getattr(self, self.type)
        assert isinstance(block, _Model)
        return block


# ----------------------------------------------------------------- ImageLocation


class Acls(_Model):
    public: bool = False
    read_tenants: tuple[str, ...] = ()
    write_tenants: tuple[str, ...] = ()


class SourceRef(_Model):
    name: str = pydantic.Field(min_length=1, max_length=253)

    @pydantic.field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_kube_name(value)


class ImageLocationSpec(_Model):
    image_id: str
    backend: str = pydantic.Field(min_length=1, max_length=253)
    location: str | None = pydantic.Field(None, min_length=1)
    size: int | None = pydantic.Field(None, ge=0, le=2**63 - 1)
    checksum: str | None = pydantic.Field(None, pattern=r"^[0-9a-f]{32}$")
    os_hash_algo: str | None = pydantic.Field(None, min_length=1)
    os_hash_value: str | None = pydantic.Field(None, pattern=r"^[0-9a-f]+$")
    metadata: dict[str, str] = pydantic.Field(default_factory=dict)
    reclaim_policy: Literal["Delete", "Retain"] = "Delete"
    acls: Acls | None = None
    source: SourceRef | None = None

    @pydantic.field_validator("image_id")
    @classmethod
    def _image_id(cls, value: str) -> str:
        try:
            return backends.validate_image_id(value)
        except Exception as exc:  # InvalidImageId: reported as a validation error
            raise ValueError(str(exc)) from None

    @pydantic.field_validator("backend")
    @classmethod
    def _backend(cls, value: str) -> str:
        return _check_kube_name(value)

    @pydantic.field_validator("location")
    @classmethod
    def _location(cls, value: str | None) -> str | None:
        if value is not None and ("://" not in value or any(c.isspace() for c in value)):
            raise ValueError(f"{value!r} is not a location URI")
        return value

    @pydantic.model_validator(mode="after")
    def _location_or_source(self) -> ImageLocationSpec:
        if self.location is None and self.source is None:
            raise ValueError("set location, or source to copy the image from another location")
        if (self.os_hash_algo is None) != (self.os_hash_value is None):
            raise ValueError("set osHashAlgo and osHashValue together")
        return self


def parse_store_backend(body: Mapping[str, Any]) -> StoreBackendSpec:
    """``body["spec"]`` of a StoreBackend; ``pydantic.ValidationError`` if it is not valid."""
    return StoreBackendSpec.model_validate(body.get("spec") or {})


def parse_image_location(body: Mapping[str, Any]) -> ImageLocationSpec:
    """``body["spec"]`` of an ImageLocation; ``pydantic.ValidationError`` if it is not valid."""
    return ImageLocationSpec.model_validate(body.get("spec") or {})
