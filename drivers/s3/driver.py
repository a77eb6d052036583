"""``S3Driver``: the verbs, composed from the modules of this package.

Construction builds the backend's one boto3 client and its thread pool (``s3_store_thread_pools``
threads: part uploads, body reads and every other call run there, never on the event loop).

Locations are glance_store's: ``s3://host/bucket/image_id`` for an http endpoint and
``s3+https://host/bucket/image_id`` for https, the host without its scheme, and never any
credentials (glance_store before 5.x wrote ``access:secret@`` into them). Those old
credentialed locations are still read, but their keys are ignored: like glance_store 5.7.0,
the driver always connects to the configured host with the configured keys. For the same
reason ``owns`` looks only at the bucket, not at the host in the location: a location written
before the endpoint was renamed is still served.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import botocore.exceptions

from kglance.drivers import _threads, base, errors, locations
from kglance.drivers.s3 import client, reading, writing
from kglance.drivers.s3.options import S3Options


class S3Driver(base.Driver):
    Options = S3Options
    type_name = "s3"
    schemes = locations.S3Location.schemes
    features = (
        base.Feature.READ
        | base.Feature.WRITE
        | base.Feature.RANGED_READ
        | base.Feature.UNSIZED_WRITE
        | base.Feature.MULTIPART
        | base.Feature.REUSABLE
    )

    def __init__(self, options: S3Options, *, backend_id: str) -> None:
        super().__init__(options, backend_id=backend_id)
        self._options = options
        self.bucket = options.s3_store_bucket
        if options.s3_store_cacert and not os.path.isfile(options.s3_store_cacert):
            raise errors.ConfigurationError(
                f"s3_store_cacert {options.s3_store_cacert!r} is not a readable file"
            )
        self.s3 = client.build_client(options)  # public for diagnostics and tests
        self._runner = _threads.BlockingRunner(
            options.s3_store_thread_pools, name=f"kglance-s3-{backend_id}"
        )
        self.writer = writing.Writer(s3=self.s3, runner=self._runner, options=options)

    def __repr__(self) -> str:
        return (
            f"<S3Driver {self.backend_id!r} {self._options.location_scheme}://"
            f"{self._options.service_url}/{self.bucket}>"
        )

    # ---------------------------------------------------------------- locations

    def owns(self, location: locations.Location) -> bool:
        return isinstance(location, locations.S3Location) and location.bucket == self.bucket

    async def locate(self, image_id: str) -> locations.Location:
        return self._location(image_id)

    def _location(self, key: str) -> locations.S3Location:
        return locations.S3Location(
            scheme_name=self._options.location_scheme,
            s3serviceurl=self._options.service_url,
            bucket=self.bucket,
            key=key,
        )

    def _key(self, location: locations.Location) -> str:
        if not self.owns(location):
            raise errors.InvalidLocation(
                f"location {location} is not in S3 bucket {self.bucket!r} of this backend"
            )
        assert isinstance(location, locations.S3Location)
        return location.key

    def _failed(self, exc: Exception, *, action: str, key: str) -> errors.StoreError:
        return client.translate(exc, action=action, target=f"{self.bucket}/{key}")

    # ------------------------------------------------------------------ writing

    async def add(
        self,
        image_id: str,
        data: AsyncIterator[bytes],
        *,
        size: int | None,
        mode: base.WriteMode = "create",
    ) -> base.Stored:
        written = await self.writer.add(image_id, data, size=size, create=mode == "create")
        return base.Stored(location=self._location(image_id), size=written)

    async def delete(self, location: locations.Location) -> None:
        key = self._key(location)
        try:
            await self._runner.run(self.s3.delete_object, Bucket=self.bucket, Key=key)
        except client.BOTO_ERRORS as exc:
            if client.is_missing_bucket(exc):
                return  # nothing can be left in a bucket that does not exist
            raise client.translate(
                exc, action="deletion", target=f"{self.bucket}/{key}", writing=True
            ) from exc

    # ------------------------------------------------------------------ reading

    @contextlib.asynccontextmanager
    async def get(
        self, location: locations.Location, *, byte_range: base.ByteRange = base.FULL
    ) -> AsyncIterator[base.Blob]:
        key = self._key(location)
        shown = f"{self.bucket}/{key}"
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if not byte_range.is_full:
            request["Range"] = byte_range.header_value()
        try:
            response: Mapping[str, Any] = await self._runner.acquire(
                lambda: self.s3.get_object(**request), release_with=reading.close_body
            )
        except client.BOTO_ERRORS as exc:
            raise self._failed(exc, action="read", key=key) from exc
        try:
            size, served = reading.served_range(response, asked=byte_range, shown=shown)
            yield reading.S3Blob(
                response["Body"],
                size=size,
                served=served,
                runner=self._runner,
                translate=lambda exc: self._failed(exc, action="read", key=key),
            )
        finally:
            reading.close_body(response)

    async def size(self, location: locations.Location) -> int:
        key = self._key(location)
        try:
            response = await self._runner.run(self.s3.head_object, Bucket=self.bucket, Key=key)
        except client.BOTO_ERRORS as exc:
            raise self._failed(exc, action="size query", key=key) from exc
        length = response.get("ContentLength")
        if not isinstance(length, int) or length < 0:
            raise errors.BackendError(f"S3 gave no size for {self.bucket}/{key}")
        return length

    # ---------------------------------------------------------------- lifecycle

    async def check(self) -> None:
        """The bucket is reachable with our keys (or missing, and will be created)."""
        try:
            await self._runner.run(self.s3.head_bucket, Bucket=self.bucket)
        except botocore.exceptions.ClientError as exc:
            status = client.http_status(exc)
            where = f"S3 bucket {self.bucket!r} at {self._options.service_url}"
            if status == 404:
                if self._options.s3_store_create_bucket_on_put:
                    return  # the first upload creates it
                raise errors.ConfigurationError(
                    f"{where} does not exist: create it, or set "
                    "s3_store_create_bucket_on_put = true"
                ) from exc
            if status in (400, 401, 403):
                raise errors.ConfigurationError(
                    f"{where} refused access (HTTP {status}): check s3_store_access_key, "
                    "s3_store_secret_key and s3_store_region_name"
                ) from exc
            raise self._failed(exc, action="check", key="") from exc
        except client.BOTO_ERRORS as exc:
            raise client.translate(
                exc, action="check", target=f"bucket {self.bucket} at {self._options.service_url}"
            ) from exc

    async def aclose(self) -> None:
        self._runner.close()
        self.s3.close()
