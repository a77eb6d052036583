"""Writing an image: one ``PutObject`` when it fits in a part, else a bounded multipart upload.

What glance_store does, and what changes here:

* Small images: glance_store concatenates the whole image in memory, then sends one PUT; an
  image of unknown size also went this way. Here the first part is read (at most the part
  size, or the declared size below ``s3_store_large_object_size``); if the stream ends
  there it is one PUT, otherwise the upload becomes multipart. So an image of unknown size
  is never held whole in memory.
* Large images: glance_store submits every part to a thread pool without limit (all of the
  image can queue in memory) and never aborts the upload if reading the input fails. Here
  at most ``s3_store_thread_pools`` parts upload at once while the next one is filled, so
  memory is about (threads + 1) x part size whatever the image size, and the multipart upload
  is aborted on every failure: a bad stream (size or checksum errors arrive that way), a part
  or complete that fails, a duplicate, a cancellation. Part uploads still running are waited
  for first, so no part lands after the abort.
* Duplicates: glance_store checks with ``HeadObject`` and then writes, which two uploads of
  one id can both pass. Here the early ``HeadObject`` only saves a useless upload; the commit
  itself carries ``If-None-Match: *`` (PutObject, CompleteMultipartUpload), which the server
  refuses with 412 if the key exists. A server that rejects the header (501/NotImplemented)
  is remembered and checked with ``HeadObject`` instead. Some servers ignore the header on
  CompleteMultipartUpload (Ceph radosgw 16 does; AWS and newer radosgw honour it), so a
  second ``HeadObject`` right before the commit narrows that window, and uploads of one id
  in one backend are refused while another is in progress. On such a server two processes
  completing a multipart upload of one id at the same moment can still both succeed.
* A missing bucket is created on the first write that finds it missing, when
  ``s3_store_create_bucket_on_put`` is set (no ``HeadBucket`` before every upload), else the
  error names the bucket and the option.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import botocore.exceptions

from kglance.drivers import _threads, errors
from kglance.drivers.s3 import client
from kglance.drivers.s3.options import S3Options
from kglance.drivers.s3.parts import MAX_PART_SIZE, PartPlan, PartReader, plan_parts

logger = logging.getLogger(__name__)

Part = dict[str, Any]  # {"PartNumber": n, "ETag": etag}, as CompleteMultipartUpload takes it


def rejects_condition(exc: botocore.exceptions.ClientError) -> bool:
    """Whether the server refused a request because it does not support ``If-None-Match``."""
    code = client.error_code(exc)
    if client.http_status(exc) == 501 or code == "NotImplemented":
        return True
    error = exc.response.get("Error", {})
    named = f"{error.get('ArgumentName', '')} {error.get('Message', '')}".lower()
    return code == "InvalidArgument" and "none-match" in named


class ConditionalWrites:
    """Which commits carry ``If-None-Match: *``; switched off when the server rejects it."""

    def __init__(self) -> None:
        self.put = True
        self.complete = True


class PartUploads:
    """At most ``concurrency`` part uploads in flight; the first failure is raised."""

    def __init__(
        self, upload: Callable[[int, bytearray], Awaitable[str]], *, concurrency: int
    ) -> None:
        self._upload = upload
        self._concurrency = concurrency
        self._running: set[asyncio.Task[None]] = set()
        self._etags: dict[int, str] = {}

    async def submit(self, number: int, body: bytearray) -> None:
        """Start uploading part ``number`` once a slot is free."""
        await self._collect(block=False)
        while len(self._running) >= self._concurrency:
            await self._collect(block=True)
        self._running.add(asyncio.create_task(self._one(number, body)))

    async def _one(self, number: int, body: bytearray) -> None:
        self._etags[number] = await self._upload(number, body)

    async def _collect(self, *, block: bool) -> None:
        """Drop finished uploads, raising the first failure among them."""
        if block:
            await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)
        done = {task for task in self._running if task.done()}
        self._running -= done
        failures = [task.exception() for task in done]  # retrieves every one
        for failure in failures:
            if failure is not None:
                raise failure

    async def finish(self) -> list[Part]:
        """Wait for every upload; the parts in order for CompleteMultipartUpload."""
        while self._running:
            await self._collect(block=True)
        return [{"PartNumber": n, "ETag": etag} for n, etag in sorted(self._etags.items())]

    async def settle(self) -> None:
        """Wait for uploads still running, whatever their outcome (before an abort)."""
        if self._running:
            await asyncio.wait(self._running)
        for task in self._running:
            task.exception()  # retrieved, so asyncio does not report it as lost
        self._running.clear()


class Writer:
    """The write path of one backend: ``add`` and the bucket it may create."""

    def __init__(self, *, s3: Any, runner: _threads.BlockingRunner, options: S3Options) -> None:
        self._s3 = s3
        self._runner = runner
        self._options = options
        self._bucket = options.s3_store_bucket
        self.conditional = ConditionalWrites()
        self._in_progress: set[str] = set()

    def _target(self, key: str) -> str:
        return f"{self._bucket}/{key}"

    def _failed(self, exc: Exception, *, action: str, key: str) -> Exception:
        return client.translate(exc, action=action, target=self._target(key), writing=True)

    def plan(self, size: int | None) -> PartPlan:
        """Parts for an image; below ``s3_store_large_object_size`` one part of its size."""
        if size is not None and size < self._options.large_object_size and size <= MAX_PART_SIZE:
            return PartPlan(first=max(size, 1), grows=False)
        return plan_parts(size, chunk_size=self._options.part_size)

    async def add(
        self, key: str, data: AsyncIterator[bytes], *, size: int | None, create: bool
    ) -> int:
        """Store ``data`` under ``key``; the number of bytes stored."""
        with self._claim(key) if create else contextlib.nullcontext():
            if create:
                await self.refuse_existing(key)
            reader = PartReader(data, self.plan(size))
            first = await reader.next_part()
            if await reader.confirm_end():
                await self._put(key, first or bytearray(), create=create)
                return reader.bytes_read
            assert first is not None  # the source has more, so the first part was full
            reader.unread(first)
            del first  # the reader holds it now; nothing else may keep it alive
            return await self._multipart(key, reader, create=create)

    @contextlib.contextmanager
    def _claim(self, key: str) -> Iterator[None]:
        if key in self._in_progress:
            raise errors.AlreadyExists(
                f"{self._target(key)} is already being uploaded through this backend"
            )
        self._in_progress.add(key)
        try:
            yield
        finally:
            self._in_progress.discard(key)

    async def refuse_existing(self, key: str) -> None:
        """``AlreadyExists`` if the key is there (glance_store's check, not atomic)."""
        try:
            await self._runner.run(self._s3.head_object, Bucket=self._bucket, Key=key)
        except client.BOTO_ERRORS as exc:
            if isinstance(exc, botocore.exceptions.ClientError) and client.http_status(exc) == 404:
                return  # no such key, or no such bucket yet
            raise self._failed(exc, action="existence check", key=key) from exc
        raise errors.AlreadyExists(f"{self._target(key)} already exists")

    # ------------------------------------------------------------------ one PUT

    async def _put(self, key: str, body: bytearray, *, create: bool) -> None:
        for _attempt in range(3):  # at most: create the bucket, drop the condition, succeed
            conditional = create and self.conditional.put
            extra = {"IfNoneMatch": "*"} if conditional else {}
            try:
                await self._runner.run(
                    self._s3.put_object, Bucket=self._bucket, Key=key, Body=body, **extra
                )
                return
            except botocore.exceptions.ClientError as exc:
                if client.is_missing_bucket(exc):
                    await self.create_bucket(cause=exc)
                    continue
                if conditional and rejects_condition(exc):
                    self._condition_rejected("PutObject")
                    self.conditional.put = False
                    await self.refuse_existing(key)
                    continue
                raise self._failed(exc, action="upload", key=key) from exc
            except client.BOTO_ERRORS as exc:
                raise self._failed(exc, action="upload", key=key) from exc
        raise errors.BackendError(f"S3 upload of {self._target(key)} did not succeed")

    def _condition_rejected(self, operation: str) -> None:
        logger.warning(
            "S3 at %s rejects If-None-Match on %s; duplicates of bucket %s are checked with "
            "HeadObject instead, which is not atomic",
            self._options.service_url,
            operation,
            self._bucket,
        )

    # ---------------------------------------------------------------- multipart

    async def _multipart(self, key: str, reader: PartReader, *, create: bool) -> int:
        upload_id = await self._start_upload(key)
        uploads = PartUploads(
            lambda number, body: self._upload_part(key, upload_id, number, body),
            concurrency=self._options.s3_store_thread_pools,
        )
        try:
            part = await reader.next_part()
            while part is not None:
                await uploads.submit(reader.parts_read, part)
                part = None  # released before the next one is read
                part = await reader.next_part()
            parts = await uploads.finish()
            if create:
                await self.refuse_existing(key)  # for servers that ignore If-None-Match
            await self._complete(key, upload_id, parts, create=create)
        except BaseException:
            await _threads.await_uninterrupted(self._abandon(key, upload_id, uploads))
            raise
        return reader.bytes_read

    async def _start_upload(self, key: str) -> str:
        for _attempt in range(2):
            try:
                response = await self._runner.run(
                    self._s3.create_multipart_upload, Bucket=self._bucket, Key=key
                )
                return str(response["UploadId"])
            except botocore.exceptions.ClientError as exc:
                if client.is_missing_bucket(exc):
                    await self.create_bucket(cause=exc)
                    continue
                raise self._failed(exc, action="start of a multipart upload", key=key) from exc
            except client.BOTO_ERRORS as exc:
                raise self._failed(exc, action="start of a multipart upload", key=key) from exc
        raise errors.BackendError(f"S3 multipart upload of {self._target(key)} did not start")

    async def _upload_part(self, key: str, upload_id: str, number: int, body: bytearray) -> str:
        try:
            response = await self._runner.run(
                self._s3.upload_part,
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=body,
            )
        except client.BOTO_ERRORS as exc:
            raise self._failed(exc, action=f"upload of part {number}", key=key) from exc
        return str(response["ETag"])

    async def _complete(self, key: str, upload_id: str, parts: list[Part], *, create: bool) -> None:
        for _attempt in range(2):
            conditional = create and self.conditional.complete
            extra = {"IfNoneMatch": "*"} if conditional else {}
            try:
                await self._runner.run(
                    self._s3.complete_multipart_upload,
                    Bucket=self._bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                    **extra,
                )
                return
            except botocore.exceptions.ClientError as exc:
                if conditional and rejects_condition(exc):
                    self._condition_rejected("CompleteMultipartUpload")
                    self.conditional.complete = False
                    continue
                raise self._failed(exc, action="completion", key=key) from exc
            except client.BOTO_ERRORS as exc:
                raise self._failed(exc, action="completion", key=key) from exc
        raise errors.BackendError(f"S3 multipart upload of {self._target(key)} did not complete")

    async def _abandon(self, key: str, upload_id: str, uploads: PartUploads) -> None:
        """Abort a failed multipart upload once no part of it is still uploading."""
        await uploads.settle()
        try:
            await self._runner.run(
                self._s3.abort_multipart_upload,
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
            )
        except client.BOTO_ERRORS as exc:
            if isinstance(exc, botocore.exceptions.ClientError) and (
                client.error_code(exc) == "NoSuchUpload"
            ):
                return  # completed or aborted already
            logger.warning(
                "could not abort multipart upload %s of %s (%s); its parts stay in the bucket "
                "until a lifecycle rule or an operator aborts it",
                upload_id,
                self._target(key),
                exc,
            )

    # ------------------------------------------------------------------- bucket

    async def create_bucket(self, *, cause: Exception) -> None:
        """Create the missing bucket if configured to, else explain what to do."""
        if not self._options.s3_store_create_bucket_on_put:
            raise errors.ConfigurationError(
                f"S3 bucket {self._bucket!r} does not exist at {self._options.service_url}: "
                "create it, or set s3_store_create_bucket_on_put = true"
            ) from cause
        region = self._options.region
        extra: dict[str, Any] = {}
        if region and region != "us-east-1":  # us-east-1 is S3's default and is refused
            extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            await self._runner.run(self._s3.create_bucket, Bucket=self._bucket, **extra)
        except botocore.exceptions.ClientError as exc:
            code = client.error_code(exc)
            if code == "BucketAlreadyOwnedByYou":
                return  # another upload created it first
            if code == "BucketAlreadyExists":
                raise errors.ConfigurationError(
                    f"S3 bucket name {self._bucket!r} is taken by another account"
                ) from exc
            raise client.translate(
                exc, action="creation", target=f"bucket {self._bucket}", writing=True
            ) from exc
        except client.BOTO_ERRORS as exc:
            raise client.translate(
                exc, action="creation", target=f"bucket {self._bucket}", writing=True
            ) from exc
        logger.info("created S3 bucket %s at %s", self._bucket, self._options.service_url)
