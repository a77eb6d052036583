"""glance_store 5.7.0's configuration options, and how a store reads its values.

The option names, types, defaults and bounds are glance_store's, so an existing
``glance-api.conf`` works unchanged. The help texts are short: the meaning of each option
is documented with the kglance driver that implements it. Deliberate differences:
``https_insecure`` defaults to False (kglance verifies TLS unless told not to),
``swift_store_auth_version`` also accepts 1 (kglance's swift driver speaks tempauth), and
VMware options are absent (kglance has no VMware driver).

Reading follows glance_store's multi-backend rule: a value set in the backend's own group
wins; otherwise a value set in ``[backend_defaults]`` applies; otherwise the backend group's
own default. Unlike glance_store this needs no rewriting of the group's defaults to ``None``,
because oslo.config reports where each value came from (``ConfigOpts.get_location``).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from oslo_config import cfg

SHARED_CONF_GROUP = "backend_defaults"
STORE_CFG_GROUP = "glance_store"

Opts = Sequence[cfg.Opt]

STORE_CHOICES = (
    "file",
    "filesystem",
    "http",
    "https",
    "swift",
    "swift+http",
    "swift+https",
    "swift+config",
    "rbd",
    "cinder",
    "vsphere",
    "s3",
)

LEGACY_STORE_OPTS: Opts = (
    cfg.ListOpt(
        "stores",
        default=["file", "http"],
        deprecated_for_removal=True,
        deprecated_since="Rocky",
        deprecated_reason="Use enabled_backends (multi-backend configuration).",
        help="Store types to enable (single-store configuration).",
    ),
    cfg.StrOpt(
        "default_store",
        default="file",
        choices=STORE_CHOICES,
        deprecated_for_removal=True,
        deprecated_since="Rocky",
        deprecated_reason="Use default_backend (multi-backend configuration).",
        help="Scheme of the store new images go to (single-store configuration).",
    ),
)

MULTI_STORE_OPTS: Opts = (
    cfg.StrOpt("default_backend", help="Store identifier (a key of enabled_backends) for adds."),
)

MULTI_BACKEND_OPTIONS: Opts = (
    cfg.StrOpt("store_description", help="Description of this store shown to end users."),
    cfg.IntOpt("weight", default=0, help="Relative weight used to sort image locations."),
)

KiB = 1024

FILESYSTEM_OPTS: Opts = (
    cfg.StrOpt(
        "filesystem_store_datadir",
        default="/var/lib/glance/images",
        help="Directory the filesystem store writes images to.",
    ),
    cfg.MultiStrOpt(
        "filesystem_store_datadirs",
        deprecated_for_removal=True,
        deprecated_since="Flamingo",
        help="Directories with priorities, as path:priority.",
    ),
    cfg.StrOpt(
        "filesystem_store_metadata_file",
        help="JSON file describing the mountpoints of the datadirs.",
    ),
    cfg.IntOpt(
        "filesystem_store_file_perm",
        default=0,
        help="File mode of new images in octal digits (644); 0 leaves it alone.",
    ),
    cfg.IntOpt(
        "filesystem_store_chunk_size", default=64 * KiB, min=1, help="Read chunk size in bytes."
    ),
    cfg.BoolOpt(
        "filesystem_thin_provisioning", default=False, help="Skip writing all-zero chunks."
    ),
    cfg.IntOpt(
        "filesystem_store_timeout",
        default=0,
        min=0,
        help="Timeout in seconds of metadata calls (stat, unlink, statvfs); 0 is none.",
    ),
    cfg.IntOpt(
        "filesystem_store_thread_pool_size",
        default=10,
        min=1,
        help="Threads for timed metadata calls.",
    ),
    cfg.IntOpt(
        "filesystem_store_threadpool_threshold",
        default=75,
        min=0,
        max=100,
        help="Pool usage, in percent, above which a warning is logged.",
    ),
)

HTTP_OPTS: Opts = (
    cfg.StrOpt("https_ca_certificates_file", help="CA bundle to verify https image servers."),
    cfg.BoolOpt(
        "https_insecure",
        default=False,  # glance_store: True; kglance verifies TLS by default
        help="Do not verify the TLS certificates of https image servers.",
    ),
    cfg.DictOpt(
        "http_proxy_information",
        default={},
        help="Proxies by scheme, as scheme:proxy pairs.",
    ),
)

S3_OPTS: Opts = (
    cfg.StrOpt("s3_store_host", help="S3 endpoint (host[:port] or URL)."),
    cfg.StrOpt("s3_store_region_name", default="", help="S3 region."),
    cfg.StrOpt("s3_store_access_key", secret=True, help="S3 access key."),
    cfg.StrOpt("s3_store_secret_key", secret=True, help="S3 secret key."),
    cfg.StrOpt("s3_store_bucket", help="S3 bucket images go to."),
    cfg.BoolOpt("s3_store_create_bucket_on_put", default=False, help="Create a missing bucket."),
    cfg.StrOpt("s3_store_bucket_url_format", default="auto", help="auto, virtual or path."),
    cfg.IntOpt("s3_store_large_object_size", default=100, min=0, help="Multipart threshold in MB."),
    cfg.IntOpt("s3_store_large_object_chunk_size", default=10, help="Part size in MB."),
    cfg.IntOpt("s3_store_thread_pools", default=10, help="Concurrent part uploads."),
    cfg.StrOpt("s3_store_cacert", default="", help="CA bundle for the S3 endpoint."),
    cfg.BoolOpt(
        "s3_store_enable_data_integrity_protection",
        default=False,
        help="Send and verify S3 checksums.",
    ),
    cfg.StrOpt(
        "s3_store_request_checksum_calculation",
        default="when_required",
        choices=["when_required", "when_supported"],
        help="When to compute request checksums.",
    ),
    cfg.StrOpt(
        "s3_store_response_checksum_validation",
        default="when_required",
        choices=["when_required", "when_supported"],
        help="When to validate response checksums.",
    ),
)

RBD_OPTS: Opts = (
    cfg.IntOpt("rbd_store_chunk_size", default=8, min=1, help="RBD object size in MiB."),
    cfg.StrOpt("rbd_store_pool", default="images", help="RADOS pool for images."),
    cfg.StrOpt("rbd_store_user", help="RADOS user (cephx id)."),
    cfg.StrOpt("rbd_store_ceph_conf", default="", help="Ceph configuration file."),
    cfg.IntOpt("rados_connect_timeout", default=-1, help="Connect timeout; -1 uses ceph.conf."),
    cfg.BoolOpt("rbd_thin_provisioning", default=False, help="Skip writing all-zero chunks."),
)

CINDER_OPTS: Opts = (
    cfg.StrOpt("cinder_catalog_info", default="volumev3::publicURL", help="Catalog lookup."),
    cfg.StrOpt("cinder_endpoint_template", help="Cinder endpoint template."),
    cfg.StrOpt("cinder_os_region_name", deprecated_name="os_region_name", help="Region."),
    cfg.StrOpt("cinder_ca_certificates_file", help="CA bundle for Cinder."),
    cfg.IntOpt("cinder_http_retries", default=3, min=0, help="Cinder API retries."),
    cfg.IntOpt(
        "cinder_state_transition_timeout", default=300, min=0, help="Volume state timeout (s)."
    ),
    cfg.BoolOpt("cinder_api_insecure", default=False, help="Skip TLS verification."),
    cfg.StrOpt("cinder_store_auth_address", help="Keystone URL of the service user."),
    cfg.StrOpt("cinder_store_user_name", help="Service user name."),
    cfg.StrOpt("cinder_store_user_domain_name", default="Default", help="User domain."),
    cfg.StrOpt("cinder_store_password", secret=True, help="Service user password."),
    cfg.StrOpt("cinder_store_application_credential_id", help="Application credential id."),
    cfg.StrOpt(
        "cinder_store_application_credential_secret",
        secret=True,
        help="Application credential secret.",
    ),
    cfg.StrOpt("cinder_store_project_name", help="Service project name."),
    cfg.StrOpt("cinder_store_project_domain_name", default="Default", help="Project domain."),
    cfg.StrOpt("rootwrap_config", default="/etc/glance/rootwrap.conf", help="Rootwrap config."),
    cfg.StrOpt("cinder_volume_type", help="Volume type of new image volumes."),
    cfg.BoolOpt("cinder_enforce_multipath", default=False, help="Require multipath."),
    cfg.BoolOpt("cinder_use_multipath", default=False, help="Use multipath when available."),
    cfg.StrOpt("cinder_mount_point_base", default="/var/lib/glance/mnt", help="NFS mounts."),
    cfg.BoolOpt("cinder_do_extend_attached", default=False, help="Extend attached volumes."),
    cfg.IntOpt("cinder_attachment_retry_attempts", default=5, min=1, help="Attach retries."),
)

SWIFT_OPTS: Opts = (
    cfg.BoolOpt("swift_store_auth_insecure", default=False, help="Skip TLS verification."),
    cfg.StrOpt("swift_store_cacert", help="CA bundle for Swift and Keystone."),
    cfg.StrOpt("swift_store_region", help="Swift region."),
    cfg.StrOpt("swift_store_endpoint", help="Swift URL overriding the catalog."),
    cfg.StrOpt(
        "swift_store_endpoint_type",
        default="publicURL",
        choices=("publicURL", "adminURL", "internalURL"),
        help="Catalog interface.",
    ),
    cfg.StrOpt("swift_store_service_type", default="object-store", help="Catalog service."),
    cfg.StrOpt("swift_store_container", default="glance", help="Container (or prefix)."),
    cfg.IntOpt(
        "swift_store_large_object_size", default=5120, min=1, help="Segmenting threshold, MB."
    ),
    cfg.IntOpt("swift_store_large_object_chunk_size", default=200, min=1, help="Segment size, MB."),
    cfg.BoolOpt(
        "swift_store_create_container_on_put", default=False, help="Create missing containers."
    ),
    cfg.BoolOpt("swift_store_multi_tenant", default=False, help="Per-tenant containers."),
    cfg.IntOpt(
        "swift_store_multiple_containers_seed",
        default=0,
        min=0,
        max=32,
        help="Image-id characters appended to the container name (0: one container).",
    ),
    cfg.ListOpt("swift_store_admin_tenants", default=[], help="Tenants with write access."),
    cfg.BoolOpt("swift_store_ssl_compression", default=True, help="TLS compression."),
    cfg.IntOpt("swift_store_retry_get_count", default=0, min=0, help="Download retries."),
    cfg.IntOpt(
        "swift_store_expire_soon_interval", default=60, min=0, help="Token refresh margin (s)."
    ),
    cfg.BoolOpt("swift_store_use_trusts", default=True, help="Keystone trusts (multi-tenant)."),
    cfg.BoolOpt("swift_buffer_on_upload", default=False, help="Buffer segments on disk."),
    cfg.StrOpt("default_swift_reference", default="ref1", help="Accounts-file reference."),
    cfg.StrOpt(
        "swift_store_auth_version",
        default="3",
        choices=["1", "3"],  # glance_store: 3 only; kglance's swift driver also speaks v1
        deprecated_for_removal=True,
        help="Keystone API version.",
    ),
    cfg.StrOpt("swift_store_auth_address", deprecated_for_removal=True, help="Keystone URL."),
    cfg.StrOpt("swift_store_user", secret=True, deprecated_for_removal=True, help="User."),
    cfg.StrOpt("swift_store_key", secret=True, deprecated_for_removal=True, help="Password."),
    cfg.StrOpt(
        "swift_store_application_credential_id", secret=True, help="Application credential."
    ),
    cfg.StrOpt("swift_store_application_credential_secret", secret=True, help="Its secret."),
    cfg.StrOpt("swift_store_project_name", deprecated_for_removal=True, help="Project name."),
    cfg.StrOpt("swift_store_project_id", deprecated_for_removal=True, help="Project id."),
    cfg.StrOpt("swift_store_config_file", help="Swift accounts file (swift+config references)."),
    cfg.StrOpt("swift_upload_buffer_dir", help="Directory for segment buffers."),
)


def reserved_store_opts(name: str) -> list[cfg.Opt]:
    """The filesystem-only options glance_store registers for a reserved store ``name``."""
    return [
        cfg.StrOpt(
            "filesystem_store_datadir",
            default=f"/var/lib/glance/{name}",
            help=f"Directory of the reserved store {name}.",
        ),
        cfg.MultiStrOpt("filesystem_store_datadirs", help="Not used"),
        cfg.StrOpt("filesystem_store_metadata_file", help="Not used"),
        cfg.IntOpt("filesystem_store_file_perm", default=0, help="Not used"),
        cfg.IntOpt(
            "filesystem_store_chunk_size",
            default=64 * KiB,
            min=1,
            help=f"Chunk size in bytes of the reserved store {name}.",
        ),
        cfg.BoolOpt("filesystem_thin_provisioning", default=False, help="Not used"),
    ]


def register(conf: cfg.ConfigOpts, opts: Iterable[cfg.Opt], *, group: str) -> None:
    """Register each option, keeping any same-named option registered before.

    glance_store does the same (it swallows ``DuplicateOptError``): a reserved store's
    filesystem options, registered first with their own defaults, stay in force.
    """
    for opt in opts:
        with contextlib.suppress(cfg.DuplicateOptError):
            conf.register_opt(opt, group=group)


@dataclasses.dataclass(frozen=True, slots=True)
class Value:
    value: Any
    explicit: bool  # set by the operator (file, override, ...) rather than a default


def _is_explicit(conf: cfg.ConfigOpts, name: str, group: str) -> bool:
    try:
        where = conf.get_location(name, group=group)
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
        return False
    return where is not None and where.location is not cfg.Locations.opt_default


def _group_has(conf: cfg.ConfigOpts, name: str, group: str) -> bool:
    try:
        return name in conf[group]
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
        return False


def read(
    conf: cfg.ConfigOpts, names: Iterable[str], *, group: str, shared: bool
) -> dict[str, Value]:
    """The values of ``names`` for a store reading ``group`` (``[backend_defaults]`` if shared)."""
    values: dict[str, Value] = {}
    for name in names:
        if not _group_has(conf, name, group):
            continue
        if _is_explicit(conf, name, group):
            values[name] = Value(conf[group][name], explicit=True)
        elif (
            shared
            and _group_has(conf, name, SHARED_CONF_GROUP)
            and _is_explicit(conf, name, SHARED_CONF_GROUP)
        ):
            values[name] = Value(conf[SHARED_CONF_GROUP][name], explicit=True)
        else:
            values[name] = Value(conf[group][name], explicit=False)
    return values
