"""Helpers the s3 tests share: what a bucket holds, and removing a test bucket completely.

They use the driver's own boto3 client directly (not the driver), so they see exactly what
the server has, in-progress multipart uploads included.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import boto3.session
import botocore.exceptions

from tests.conftest import require_env


def region() -> str:
    """The region the test server's script names (radosgw accepts any; empty is fine)."""
    return os.environ.get("S3_REGION", "")


def admin_client() -> Any:
    """A plain boto3 client on the test server, for looking at buckets behind the driver."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=require_env("S3_ENDPOINT"),
        region_name=region() or None,
        aws_access_key_id=require_env("S3_ACCESS_KEY"),
        aws_secret_access_key=require_env("S3_SECRET_KEY"),
    )


def _missing_bucket(exc: botocore.exceptions.ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "NoSuchBucket")


def _contents(s3: Any, bucket: str) -> list[str]:
    names: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            names += [f"object:{item['Key']}" for item in page.get("Contents", [])]
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            names += [
                f"upload:{item['Key']}:{item['UploadId']}" for item in page.get("Uploads", [])
            ]
    except botocore.exceptions.ClientError as exc:
        if _missing_bucket(exc):
            return []
        raise
    return names


async def bucket_contents(s3: Any, bucket: str) -> list[str]:
    """``object:KEY`` for every object and ``upload:KEY:ID`` for every unfinished upload."""
    return await asyncio.to_thread(_contents, s3, bucket)


async def uploads_in_progress(s3: Any, bucket: str) -> list[str]:
    return [name for name in await bucket_contents(s3, bucket) if name.startswith("upload:")]


def remove_bucket_now(s3: Any, bucket: str) -> None:
    """``remove_bucket`` for synchronous fixtures."""
    for name in _contents(s3, bucket):
        kind, _, rest = name.partition(":")
        if kind == "object":
            s3.delete_object(Bucket=bucket, Key=rest)
        else:
            key, _, upload_id = rest.rpartition(":")
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    try:
        s3.delete_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as exc:
        if not _missing_bucket(exc):
            raise


async def remove_bucket(s3: Any, bucket: str) -> None:
    """Abort every upload, delete every object, then the bucket (a missing one is fine)."""
    await asyncio.to_thread(remove_bucket_now, s3, bucket)
