"""The one boto3 client a backend uses, and the translation of boto3's errors into ours.

glance_store builds a new boto3 Session and client for every operation, which costs tens of
milliseconds of CPU and a fresh connection pool each time. A low-level boto3 client is
thread-safe, so each driver builds one at construction, with a connection pool as large as
its thread pool, and every call reuses its keep-alive connections.

The client is given everything explicitly (endpoint, region, keys, CA bundle, addressing
style, checksum modes), so the settings in the configuration file are the ones in force.

Errors: botocore raises ``ClientError`` (an S3 error response, with a code and a status)
or a ``BotoCoreError`` (connection, timeout, streaming, validation). ``translate`` maps both
onto ``kglance.drivers.errors`` so nothing above the driver sees boto3. Messages name the
operation, bucket and key, never the keys: botocore's own messages do not contain them and
the endpoint cannot carry userinfo (the options refuse it).
"""

from __future__ import annotations

from typing import Any

import boto3.session
import botocore.config
import botocore.exceptions

from kglance.drivers import errors
from kglance.drivers.s3.options import S3Options

# S3 error codes, grouped by what they mean to a caller
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchBucket"})
RANGE_CODES = frozenset({"InvalidRange", "416"})
PRECONDITION_CODES = frozenset({"PreconditionFailed", "412"})
CONFLICT_CODES = frozenset({"ConditionalRequestConflict", "OperationAborted"})
FULL_CODES = frozenset({"QuotaExceeded", "EntityTooLarge", "InsufficientCapacity"})
DENIED_CODES = frozenset(
    {"AccessDenied", "AllAccessDisabled", "AccountProblem", "403", "UserSuspended"}
)
CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
)
RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "ServiceUnavailable",
        "InternalError",
        "RequestLimitExceeded",
    }
)
BOTO_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)
UNAVAILABLE_ERRORS = (
    botocore.exceptions.HTTPClientError,  # connection closed, read timeout, streaming errors
    botocore.exceptions.ConnectionError,  # refused, connect timeout, proxy, TLS
    botocore.exceptions.IncompleteReadError,  # the body ended before its Content-Length
)


def build_client(options: S3Options) -> Any:
    """A boto3 S3 client for ``options``; thread-safe, shared by every call of one driver."""
    request_checksum, response_checksum = options.checksum_modes
    config = botocore.config.Config(
        s3={"addressing_style": options.s3_store_bucket_url_format},
        request_checksum_calculation=request_checksum,
        response_checksum_validation=response_checksum,
        max_pool_connections=options.s3_store_thread_pools,
        retries={"mode": "standard"},
        user_agent_extra="kglance",
    )
    # a private session: boto3's default session is global state and not thread-safe
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=options.endpoint_url,
        region_name=options.region,
        aws_access_key_id=options.s3_store_access_key.get_secret_value(),
        aws_secret_access_key=options.s3_store_secret_key.get_secret_value(),
        use_ssl=options.uses_https,
        verify=options.s3_store_cacert or None,
        config=config,
    )


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: botocore.exceptions.ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def header(exc: botocore.exceptions.ClientError, name: str) -> str | None:
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    value = headers.get(name.lower())
    return value if isinstance(value, str) else None


def is_missing_bucket(exc: BaseException) -> bool:
    return isinstance(exc, botocore.exceptions.ClientError) and error_code(exc) == "NoSuchBucket"


def translate(
    exc: Exception, *, action: str, target: str, writing: bool = False
) -> errors.StoreError:
    """Our error for a boto3 exception raised while doing ``action`` on ``target``.

    ``writing`` turns "access denied" into ``WriteDenied`` (reads get a ``BackendError``) and
    a 404 (a vanished multipart upload) into a ``BackendError`` instead of ``NotFound``.
    """
    what = f"S3 {action} of {target}"
    if isinstance(exc, botocore.exceptions.ClientError):
        return _translate_response(exc, what=what, writing=writing)
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return errors.RemoteUnavailable(f"{what} failed: {exc}")
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return errors.ConfigurationError(f"{what}: no S3 credentials configured")
    return errors.BackendError(f"{what} failed: {exc}")


def _translate_response(
    exc: botocore.exceptions.ClientError, *, what: str, writing: bool
) -> errors.StoreError:
    code = error_code(exc)
    status = http_status(exc)
    detail = f"{what} failed: {code or 'error'} (HTTP {status})"
    if not writing and (code in NOT_FOUND_CODES or status == 404):
        return errors.NotFound(f"{what}: not found ({code or status})")
    if code in RANGE_CODES or status == 416:
        size = _size_from_content_range(header(exc, "Content-Range"))
        return errors.RangeNotSatisfiable(f"{what}: range not satisfiable", size=size)
    if code in PRECONDITION_CODES or status == 412:
        return errors.AlreadyExists(f"{what}: the object already exists")
    if code in FULL_CODES or status == 507:
        return errors.StorageFull(detail)
    if code in RETRYABLE_CODES or code in CONFLICT_CODES or (status or 0) >= 500 or status == 429:
        return errors.RemoteUnavailable(detail)
    if code in CREDENTIAL_CODES:
        return errors.BackendError(f"{detail}: check s3_store_access_key and s3_store_secret_key")
    if code in DENIED_CODES or status == 403:
        if writing:
            return errors.WriteDenied(detail)
        return errors.BackendError(detail)
    return errors.BackendError(detail)


def _size_from_content_range(value: str | None) -> int | None:
    """The total size from ``bytes */1234`` (the form a 416 response may carry)."""
    if not value:
        return None
    total = value.rpartition("/")[2].strip()
    return int(total) if total.isdigit() else None
