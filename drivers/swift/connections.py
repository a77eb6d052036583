"""Blocking Swift requests: pooled connections, one shared token, retries, and error translation.

swiftclient's ``Connection`` bundles a token, one HTTP connection and a retry loop, and is not
thread-safe; its retry loop sleeps, re-reads bodies it cannot rewind, and (``_RetryBody``)
silently ends a download short when its retries run out. So the driver uses swiftclient's
module-level request functions, which take an explicit URL, token and HTTP connection, and
keeps the rest here:

* ``ConnectionPool``: idle ``swiftclient.client.HTTPConnection`` objects (each a requests
  session with keep-alive) by origin. A connection serves one request at a time; one that
  failed is closed, never reused.
* ``SwiftClient.call``: borrows a connection and the current token, runs one request, retries
  what is safe to retry (connection errors, 5xx, 408/429/498/499) with a short backoff, and on a
  401 drops the token and tries once more with a new one. Calls whose request body cannot be
  replayed (a streamed PUT) are never retried here.
* ``translate``: swiftclient and requests exceptions become kglance errors, chained as causes.
  Messages name the operation and the object, never a token or a key.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

import urllib3.exceptions

from kglance.drivers import errors
from kglance.drivers.swift import auth

logger = logging.getLogger(__name__)

T = TypeVar("T")
RETRYABLE_STATUSES = frozenset({408, 429, 498, 499})
# (parsed storage URL, swiftclient HTTPConnection): what swiftclient's functions take
HttpConn = tuple[urllib.parse.ParseResult, Any]


class _NoRequestLog(logging.Filter):
    """Drops swiftclient's per-request log lines.

    swiftclient logs every failed request (a 404 on an existence check included) at INFO as a
    curl command line whose ``X-Auth-Token`` keeps its first 16 characters. Our own messages
    say what failed; a token, even in part, must not reach the logs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("REQ:", "RESP "))


def hide_request_logs() -> None:
    """Install the filter on the ``swiftclient`` logger once per process."""
    swift_logger = logging.getLogger("swiftclient")
    if not any(isinstance(f, _NoRequestLog) for f in swift_logger.filters):
        swift_logger.addFilter(_NoRequestLog())


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class ConnectionPool:
    """Idle HTTP connections by origin, handed to one request at a time."""

    def __init__(self, *, tls: auth.Tls, timeout: float, max_idle: int) -> None:
        self._tls = tls
        self._timeout = timeout
        self._max_idle = max_idle
        self._idle: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def take(self, url: str) -> HttpConn:
        import swiftclient.client

        origin = _origin(url)
        with self._lock:
            idle = self._idle.get(origin)
            conn = idle.pop() if idle else None
        if conn is None:
            _, conn = swiftclient.client.http_connection(
                origin,
                cacert=self._tls.cacert,
                insecure=self._tls.insecure,
                timeout=self._timeout,
            )
        # the functions build request paths from the storage URL's path, the host from conn
        return urllib.parse.urlparse(url), conn

    def give_back(self, http_conn: HttpConn, *, healthy: bool) -> None:
        conn = http_conn[1]
        if healthy:
            origin = f"{conn.parsed_url.scheme}://{conn.parsed_url.netloc}"
            with self._lock:
                idle = self._idle.setdefault(origin, [])
                if not self._closed and len(idle) < self._max_idle:
                    idle.append(conn)
                    return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a swiftclient ``ClientException`` (None for anything else)."""
    status = getattr(exc, "http_status", None)
    return status if isinstance(status, int) else None


def _is_client_exception(exc: BaseException) -> bool:
    from swiftclient.exceptions import ClientException

    return isinstance(exc, ClientException)


def _is_tls_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError | urllib3.exceptions.SSLError):
            return True
        if type(current).__name__ == "SSLError":  # requests.exceptions.SSLError
            return True
        current = current.__cause__ or current.__context__
    return False


def is_transient(exc: BaseException) -> bool:
    """Whether repeating the same request may succeed."""
    if _is_client_exception(exc):
        status = status_of(exc)
        return status is not None and (status >= 500 or status in RETRYABLE_STATUSES)
    if _is_tls_failure(exc):
        return False
    return isinstance(exc, OSError | urllib3.exceptions.HTTPError)


def is_network_error(exc: BaseException) -> bool:
    """Errors of the connection itself (requests' errors are OSErrors), not HTTP statuses."""
    return isinstance(exc, OSError | urllib3.exceptions.HTTPError) and not _is_client_exception(exc)


def _content_range_size(exc: BaseException) -> int | None:
    headers = getattr(exc, "http_response_headers", None) or {}
    value = str(headers.get("content-range") or headers.get("Content-Range") or "")
    total = value.rpartition("/")[2].strip()
    return int(total) if total.isdigit() else None


def translate(exc: BaseException, *, what: str, write: bool = False) -> errors.StoreError:
    """A kglance error for what swiftclient or requests raised while doing ``what``."""
    if isinstance(exc, errors.StoreError):
        return exc
    if _is_client_exception(exc):
        status = status_of(exc)
        reason = getattr(exc, "http_reason", "") or ""
        shown = f"{what}: HTTP {status} {reason}".rstrip()
        if status is None:
            return errors.BackendError(f"{what}: {getattr(exc, 'msg', None) or exc}")
        if status in (404, 410):
            return errors.NotFound(shown)
        if status == 413:
            return errors.StorageFull(shown)
        if status == 416:
            return errors.RangeNotSatisfiable(shown, size=_content_range_size(exc))
        if status == 403 and write:
            return errors.WriteDenied(shown)
        if status >= 500 or status in RETRYABLE_STATUSES:
            return errors.RemoteUnavailable(shown)
        return errors.BackendError(shown)
    if _is_tls_failure(exc):
        return errors.BackendError(f"{what}: TLS failure ({type(exc).__name__})")
    if isinstance(exc, OSError | urllib3.exceptions.HTTPError):
        return errors.RemoteUnavailable(f"{what}: {type(exc).__name__}")
    return errors.BackendError(f"{what}: {type(exc).__name__}: {exc}")


@dataclasses.dataclass
class Lease:
    """A borrowed connection and the token it was used with; mark it broken on errors."""

    http_conn: HttpConn
    token: auth.Token
    url: str
    healthy: bool = True


class SwiftClient:
    """Thread-safe entry point for every blocking request of one driver."""

    def __init__(
        self,
        *,
        tokens: auth.TokenCache,
        pool: ConnectionPool,
        retries: int = 3,
        backoff: float = 0.25,
    ) -> None:
        self.tokens = tokens
        self._pool = pool
        self._retries = retries
        self._backoff = backoff

    def storage_url(self) -> str:
        return self.tokens.get().storage_url

    def _acquire(self, url: str | None) -> Lease:
        token = self.tokens.get()
        target = url or token.storage_url
        return Lease(http_conn=self._pool.take(target), token=token, url=target)

    def release(self, lease: Lease) -> None:
        """Give a connection back (closed instead when it failed or holds an unread body)."""
        self._pool.give_back(lease.http_conn, healthy=lease.healthy)

    def call(
        self,
        request: Callable[[str, str, HttpConn], T],
        *,
        what: str,
        url: str | None = None,
        replayable: bool = True,
        write: bool = False,
    ) -> T:
        """``request(storage_url, token, http_conn)``, retried when that is safe.

        ``url`` is a storage URL other than the account's own (multi-tenant locations).
        What finally fails is raised as swiftclient or requests raised it: the caller
        interprets the statuses it expects (412 on a create-only PUT, 409 on a container
        delete) and passes the rest through ``translate``.
        """
        result, lease = self._call(request, what=what, url=url, replayable=replayable)
        self.release(lease)
        return result

    def open(
        self,
        request: Callable[[str, str, HttpConn], T],
        *,
        what: str,
        url: str | None = None,
    ) -> tuple[T, Lease]:
        """Like ``call`` for a request whose response body is read later: the connection
        stays leased until ``release``."""
        return self._call(request, what=what, url=url, replayable=True)

    def _call(
        self,
        request: Callable[[str, str, HttpConn], T],
        *,
        what: str,
        url: str | None,
        replayable: bool,
    ) -> tuple[T, Lease]:
        attempt = 0
        reauthenticated = False
        while True:
            attempt += 1
            try:
                lease = self._acquire(url)
            except errors.RemoteUnavailable as exc:  # the auth service did not answer
                if not (replayable and attempt <= self._retries):
                    raise
                self._pause(what, exc.message, attempt)
                continue
            try:
                return request(lease.url, lease.token.value, lease.http_conn), lease
            except BaseException as exc:
                # an HTTP error answer to a request sent whole leaves the connection usable
                lease.healthy = (
                    replayable
                    and _is_client_exception(exc)
                    and status_of(exc) not in (None, *RETRYABLE_STATUSES)
                )
                self.release(lease)
                if not isinstance(exc, Exception):
                    raise
                if status_of(exc) == 401:
                    self.tokens.invalidate(lease.token)
                    if replayable and not reauthenticated:
                        logger.info("%s: token refused (HTTP 401), authenticating again", what)
                        reauthenticated = True
                        continue
                if replayable and attempt <= self._retries and is_transient(exc):
                    self._pause(what, translate(exc, what=what).message, attempt)
                    continue
                raise

    def _pause(self, what: str, reason: str, attempt: int) -> None:
        delay = min(self._backoff * 2 ** (attempt - 1), 2.0)
        logger.info(
            "%s failed (%s), retry %d of %d in %.2f s", what, reason, attempt, self._retries, delay
        )
        time.sleep(delay)

    def close(self) -> None:
        self._pool.close()
