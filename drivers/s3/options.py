"""The s3 driver's options, named and defaulted as glance_store 5.7.0 names them.

Everything that can be decided without the network is decided here, so a bad backend is
refused when its configuration is read rather than on the first upload:

* ``s3_store_host`` must be ``http(s)://host[:port][/path]`` or a bare ``host[:port]``, which
  (as in glance_store) means plain http. Userinfo in the host is refused: credentials come
  only from ``s3_store_access_key``/``s3_store_secret_key``.
* ``s3_store_bucket_url_format`` is one of auto, virtual or path (glance_store accepts any
  string and fails later), and ``virtual`` needs a bucket name that is a valid DNS label.
* The sizes are MiB, as glance_store's ``units.Mi``; the chunk size has glance_store's runtime
  minimum of 5 (S3's smallest part) as a validation bound, and S3's largest part as a maximum.
* The keys are ``pydantic.SecretStr``: ``repr`` and validation errors show ``**********``.

glance_store requires the access key, secret key, bucket and host and reports a missing one
as "Could not find ... in configuration options", disabling writes; here they are required
fields and the backend is not built at all.
"""

from __future__ import annotations

import re
from typing import Literal

import pydantic
import yarl

from kglance.drivers import base

MiB = 1024 * 1024
MIN_PART_MIB = 5  # S3 refuses smaller parts (except the last)
MAX_PART_MIB = 5 * 1024  # and larger ones

ChecksumMode = Literal["when_required", "when_supported"]

# AWS's regional endpoints name their region (s3-eu-west-1.amazonaws.com, s3.eu-west-1...);
# glance_store looks a fixed list of them up when s3_store_region_name is not set.
_AWS_REGIONAL_HOST = re.compile(
    r"^s3[.-](?P<region>[a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?:\.cn)?$"
)
# S3's bucket naming rules, which virtual-hosted addressing turns into a DNS name
_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class S3Options(base.DriverOptions):
    s3_store_host: str
    s3_store_region_name: str = ""
    s3_store_access_key: pydantic.SecretStr
    s3_store_secret_key: pydantic.SecretStr
    s3_store_bucket: str
    s3_store_create_bucket_on_put: bool = False
    s3_store_bucket_url_format: Literal["auto", "virtual", "path"] = "auto"
    s3_store_large_object_size: int = pydantic.Field(default=100, ge=0)  # MiB
    s3_store_large_object_chunk_size: int = pydantic.Field(
        default=10, ge=MIN_PART_MIB, le=MAX_PART_MIB
    )  # MiB
    s3_store_thread_pools: int = pydantic.Field(default=10, ge=1, le=1000)
    s3_store_cacert: str = ""
    s3_store_enable_data_integrity_protection: bool = False
    s3_store_request_checksum_calculation: ChecksumMode = "when_required"
    s3_store_response_checksum_validation: ChecksumMode = "when_required"

    @pydantic.field_validator("s3_store_host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        host = value.strip()
        url = yarl.URL(host if "://" in host else f"http://{host}")
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("expected http(s)://host[:port] or host[:port]")
        if url.user is not None or url.password is not None:
            raise ValueError(
                "credentials do not belong in the host; "
                "set s3_store_access_key and s3_store_secret_key"
            )
        if url.query_string or url.fragment:
            raise ValueError("the host cannot have a query or a fragment")
        return host.rstrip("/")

    @pydantic.field_validator("s3_store_bucket")
    @classmethod
    def _check_bucket(cls, value: str) -> str:
        bucket = value.strip()
        if not bucket or "/" in bucket or any(ord(c) < 0x21 for c in bucket):
            raise ValueError(f"{value!r} is not a bucket name")
        return bucket

    @pydantic.field_validator("s3_store_access_key", "s3_store_secret_key")
    @classmethod
    def _not_empty(cls, value: pydantic.SecretStr) -> pydantic.SecretStr:
        if not value.get_secret_value():
            raise ValueError("must not be empty")
        return value

    @pydantic.model_validator(mode="after")
    def _check_virtual_addressing(self) -> S3Options:
        if self.s3_store_bucket_url_format == "virtual" and not _DNS_BUCKET.match(
            self.s3_store_bucket
        ):
            raise ValueError(
                f"s3_store_bucket {self.s3_store_bucket!r} cannot be used with "
                "s3_store_bucket_url_format = virtual: it is not a valid DNS name "
                "(use path or auto)"
            )
        return self

    # ------------------------------------------------------------ derived values

    @property
    def endpoint_url(self) -> str:
        """The URL boto3 connects to; a host without a scheme is http, as in glance_store."""
        host = self.s3_store_host
        return host if "://" in host else f"http://{host}"

    @property
    def uses_https(self) -> bool:
        return self.endpoint_url.startswith("https://")

    @property
    def service_url(self) -> str:
        """The host as glance_store writes it into locations: no scheme, no trailing '/'."""
        return self.endpoint_url.partition("://")[2].rstrip("/")

    @property
    def location_scheme(self) -> str:
        """``s3+https`` for an https host, ``s3`` otherwise, exactly as glance_store writes."""
        return "s3+https" if self.uses_https else "s3"

    @property
    def region(self) -> str | None:
        """The configured region, else the one an AWS regional host names, else None."""
        if self.s3_store_region_name:
            return self.s3_store_region_name
        match = _AWS_REGIONAL_HOST.match(yarl.URL(self.endpoint_url).host or "")
        return match["region"] if match else None

    @property
    def large_object_size(self) -> int:
        return self.s3_store_large_object_size * MiB

    @property
    def part_size(self) -> int:
        return self.s3_store_large_object_chunk_size * MiB

    @property
    def checksum_modes(self) -> tuple[ChecksumMode, ChecksumMode]:
        """(request calculation, response validation) as glance_store 5.7.0 decides them.

        With data-integrity protection off (the default) both are ``when_required``, which
        S3-compatible stores that reject the newer checksum headers accept.
        """
        if not self.s3_store_enable_data_integrity_protection:
            return "when_required", "when_required"
        return (
            self.s3_store_request_checksum_calculation,
            self.s3_store_response_checksum_validation,
        )
