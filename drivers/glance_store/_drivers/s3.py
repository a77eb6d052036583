"""The ``s3`` store; its I/O goes to kglance's s3 driver as soon as that driver exists.

Locations are ``s3[+http|+https]://host/bucket/key`` without credentials, as glance_store
5.7.0 writes them. Old ``s3://access:secret@host/bucket/key`` locations still parse (the
keys land in ``accesskey``/``secretkey``, the secret kept whole), but ``get_uri`` never
writes credentials back and the driver connects with the configured keys.
"""

from __future__ import annotations

from kglance.drivers import backends, locations
from kglance.drivers.glance_store import _options, capabilities, location
from kglance.drivers.glance_store._adapter import AdaptedStore

__all__ = ["Store", "StoreLocation"]

KiB = 1024
MiB = 1024 * KiB


def _host_and_scheme(host: str, scheme: str) -> tuple[str, str]:
    if host.startswith("https://"):
        return host[len("https://") :].strip("/"), "s3+https"
    if host.startswith("http://"):
        return host[len("http://") :].strip("/"), scheme
    return host.strip("/"), scheme


class StoreLocation(location.StoreLocation):
    """Attributes: ``scheme``, ``s3serviceurl``, ``bucket``, ``key``, ``accesskey``,
    ``secretkey`` (the last two only for old credentialed locations, else ``None``)."""

    scheme: str
    s3serviceurl: str
    bucket: str
    key: str
    accesskey: str | None = None
    secretkey: str | None = None

    def process_specs(self) -> None:
        self.s3serviceurl, self.scheme = _host_and_scheme(
            self.specs["s3serviceurl"], self.specs.get("scheme", "s3")
        )
        self.bucket = self.specs["bucket"]
        self.key = self.specs["key"]

    def get_uri(self) -> str:
        return self.to_kglance().uri()  # 5.7.0: never with credentials

    def parse_uri(self, uri: str) -> None:
        parsed = self.parse_with(locations.S3Location.parse, uri)
        self.scheme = parsed.scheme_name
        self.s3serviceurl = parsed.s3serviceurl
        self.bucket = parsed.bucket
        self.key = parsed.key
        self.accesskey = parsed.accesskey
        self.secretkey = parsed.secretkey

    def to_kglance(self) -> locations.S3Location:
        return locations.S3Location(
            scheme_name=self.scheme,
            s3serviceurl=self.s3serviceurl,
            bucket=self.bucket,
            key=self.key,
            accesskey=self.accesskey,
            secretkey=self.secretkey,
        )


class Store(AdaptedStore):
    KGLANCE_TYPE = "s3"
    SCHEMES = ("s3", "s3+http", "s3+https")
    OPTIONS = _options.S3_OPTS
    STORE_LOCATION_CLASS = StoreLocation
    EXAMPLE_URL = "s3://<S3_URL>/<BUCKET>/<OBJ>"
    READ_CHUNKSIZE = 64 * KiB
    WRITE_CHUNKSIZE = 5 * MiB
    _CAPABILITIES = capabilities.BitMasks.RW_ACCESS

    def _make_url_prefix(self, backend: backends.Backend) -> str | None:
        assert self.backend_group is not None
        group = self.conf[self.backend_group]
        host, bucket = group.get("s3_store_host"), group.get("s3_store_bucket")
        if not host or not bucket:
            return None
        scheme = "s3+https" if host.startswith("https://") else "s3"
        return f"{scheme}://{_host_and_scheme(host, scheme)[0]}/{bucket}"
