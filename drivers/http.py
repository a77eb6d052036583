"""Read-only driver for images whose bytes stay on some web server (glance_store's "http" store).

An admin registers ``http(s)://`` URLs as image locations; nothing about the server is under
our control, so the driver believes nothing it does not check:

* Redirects are followed by hand (301/302/303/307/308, up to ``http_max_redirects``) so that
  credentials from the location never go to another host and https never turns into http.
* A ranged read sends ``Range``; a 206 must carry the ``Content-Range`` that was asked for, and
  a server that ignores ``Range`` (200) has the prefix skipped here, so the caller never gets
  the wrong bytes.
* A body that stops before its ``Content-Length`` (or before the chunked terminator) raises
  ``RemoteUnavailable`` in the middle of the stream: a short image is never a success. A
  missing ``Content-Length`` means "unknown size", never 0 as glance_store reported.
* Old locations may carry ``user:password@``; it becomes a Basic ``Authorization`` header and
  is never part of a URL we log or put into an error.

Deliberate differences from glance_store 5.7.0: TLS is verified by default
(``https_insecure`` defaults to False; glance_store defaults to True), 303/307/308 are followed
(glance_store refuses them), connect and read timeouts exist (``http_timeout``), proxies come only
from ``http_proxy_information`` (never from the environment), and the response body is fetched
with ``Accept-Encoding: identity`` so the bytes are the stored ones.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Mapping

import aiohttp
import pydantic
import yarl

from kglance.drivers import base, errors, locations

LOG = logging.getLogger(__name__)

READ_CHUNK = 256 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRYABLE_CLIENT_STATUSES = frozenset({408, 429})  # request timeout, too many requests
PROXY_SCHEMES = ("http", "https")


def _parse_proxy_information(value: object) -> object:
    """Accept glance_store's DictOpt text, ``"http:10.0.0.1:3128,https:10.0.0.1:3128"``."""
    if not isinstance(value, str):
        return value
    proxies: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        scheme, sep, proxy = item.partition(":")
        if not sep or not proxy.strip():
            raise ValueError(f"expected scheme:proxy, got {item!r}")
        proxies[scheme.strip()] = proxy.strip()
    return proxies


class HttpOptions(base.DriverOptions):
    https_ca_certificates_file: str | None = None
    # glance_store defaults to True (no verification); kglance verifies unless told not to
    https_insecure: bool = False
    http_proxy_information: dict[str, str] = pydantic.Field(default_factory=dict)
    # kglance's own: connect and per-read timeout in seconds, and how many redirects to follow
    http_timeout: float = pydantic.Field(default=60.0, gt=0)
    http_max_redirects: int = pydantic.Field(default=5, ge=0, le=50)

    @pydantic.field_validator("http_proxy_information", mode="before")
    @classmethod
    def _proxies_from_text(cls, value: object) -> object:
        return _parse_proxy_information(value)

    @pydantic.field_validator("http_proxy_information")
    @classmethod
    def _proxies_are_urls(cls, value: dict[str, str]) -> dict[str, str]:
        normalised = {}
        for scheme, proxy in value.items():
            if scheme not in PROXY_SCHEMES:
                raise ValueError(f"proxies are set for 'http' and 'https', not {scheme!r}")
            url = yarl.URL(proxy if "://" in proxy else f"http://{proxy}")
            if url.scheme != "http" or not url.host:
                raise ValueError(f"the {scheme} proxy must be an http://host:port URL")
            normalised[scheme] = str(url)
        return normalised


def _ssl_context(options: HttpOptions) -> ssl.SSLContext:
    """Verify against the CA file if one is given (glance_store then ignores https_insecure)."""
    if options.https_ca_certificates_file:
        try:
            return ssl.create_default_context(cafile=options.https_ca_certificates_file)
        except (OSError, ssl.SSLError) as exc:
            raise errors.ConfigurationError(
                f"cannot load https_ca_certificates_file "
                f"{options.https_ca_certificates_file!r}: {exc}"
            ) from exc
    context = ssl.create_default_context()
    if options.https_insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _basic_authorization(user: str, password: str) -> str:
    if ":" in user:
        raise ValueError("a user name with ':' cannot be sent with basic authentication")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _proxy_settings(proxy: str) -> tuple[yarl.URL, dict[str, str]]:
    """The proxy URL without credentials, and the header that carries them instead."""
    url = yarl.URL(proxy)
    if url.user is None:
        return url, {}
    try:
        header = _basic_authorization(url.user, url.password or "")
    except ValueError as exc:
        raise errors.ConfigurationError(f"http_proxy_information: {exc}") from None
    return url.with_user(None), {"Proxy-Authorization": header}


def _authorization(location: locations.HttpLocation) -> str | None:
    if location.user is None:
        return None
    try:
        return _basic_authorization(location.user, location.password or "")
    except ValueError as exc:
        raise errors.InvalidLocation(f"location {location}: {exc}") from None


def _origin(url: yarl.URL) -> tuple[str, str | None, int | None]:
    return url.scheme, url.host, url.port


def _redirect_target(current: yarl.URL, *, header: str | None, shown: str) -> yarl.URL:
    if not header:
        raise errors.BackendError(f"{shown}: redirect without a Location header")
    try:
        target = current.join(yarl.URL(header))
    except ValueError as exc:
        raise errors.BackendError(f"{shown}: unusable redirect target") from exc
    if target.scheme not in ("http", "https") or not target.host:
        raise errors.BackendError(f"{shown}: redirect to a non-http URL is refused")
    if current.scheme == "https" and target.scheme != "https":
        raise errors.BackendError(f"{shown}: redirect from https to http is refused")
    return target.with_user(None).with_fragment(None)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _client_error(exc: Exception, *, shown: str) -> errors.StoreError:
    """Translate what aiohttp raises while talking to ``shown``."""
    if isinstance(exc, aiohttp.ClientSSLError):
        return errors.BackendError(f"TLS connection for {shown} failed: {exc}")
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        proxy_error = errors.RemoteUnavailable if exc.status >= 500 else errors.BackendError
        return proxy_error(f"the proxy refused {shown}: HTTP {exc.status}")
    if isinstance(exc, aiohttp.InvalidURL):
        return errors.InvalidLocation(f"invalid location {shown}")
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError | TimeoutError):
        return errors.RemoteUnavailable(f"{shown} is unreachable: {_describe(exc)}")
    return errors.BackendError(f"{shown}: {_describe(exc)}")


def _status_error(response: aiohttp.ClientResponse, *, shown: str) -> errors.StoreError:
    status = response.status
    message = f"{shown} answered HTTP {status} {response.reason or ''}".rstrip()
    if status in (404, 410):
        return errors.NotFound(message)
    if status >= 500 or status in RETRYABLE_CLIENT_STATUSES:
        return errors.RemoteUnavailable(message)
    return errors.BackendError(message)


def _content_length(response: aiohttp.ClientResponse, *, shown: str) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None:
        return None
    if not value.strip().isdigit():
        raise errors.BackendError(f"{shown}: invalid Content-Length {value!r}")
    return int(value)


def _content_range(response: aiohttp.ClientResponse, *, shown: str) -> tuple[int, int, int | None]:
    """``bytes first-last/total`` as (first, last, total or None for ``*``)."""
    value = response.headers.get("Content-Range", "")
    unit, _, spec = value.strip().partition(" ")
    span, _, total = spec.partition("/")
    first, _, last = span.partition("-")
    if unit != "bytes" or not (first.isdigit() and last.isdigit()) or int(last) < int(first):
        raise errors.BackendError(f"{shown}: 206 with invalid Content-Range {value!r}")
    if total != "*" and not (total.isdigit() and int(total) > int(last)):
        raise errors.BackendError(f"{shown}: 206 with invalid Content-Range {value!r}")
    return int(first), int(last), None if total == "*" else int(total)


def _unsatisfiable_size(response: aiohttp.ClientResponse) -> int | None:
    """The object size from a 416's ``Content-Range: bytes */size``, if the server sent it."""
    total = response.headers.get("Content-Range", "").rpartition("/")[2].strip()
    return int(total) if total.isdigit() else None


class _HttpBlob(base.Blob):
    """A response body, delivering exactly ``served`` or raising."""

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        *,
        size: int | None,
        served: base.ByteRange,
        exact: bool,
        skip: int,
        shown: str,
    ) -> None:
        super().__init__(size=size, served=served)
        self._response = response
        # exact: the server vouched for ``served`` (a size or a Content-Range), so a shorter
        # body is a broken transfer; otherwise ``served`` is only what was asked of an object
        # of unknown size, and a shorter body means the object ends first
        self._exact = exact
        self._skip = skip  # leading bytes of the body that are not part of the range
        self._shown = shown

    async def _read(self, limit: int) -> bytes:
        try:
            return await self._response.content.read(limit)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise errors.RemoteUnavailable(
                f"reading {self._shown} failed: {_describe(exc)}"
            ) from exc

    async def skip_prefix(self) -> None:
        """Discard the bytes before the range of a server that ignored ``Range``."""
        left = self._skip
        while left:
            data = await self._read(min(left, READ_CHUNK))
            if not data:
                if not self._exact:  # the object is shorter than the offset
                    raise errors.RangeNotSatisfiable(
                        f"range {self.served} starts past the end of {self._shown}",
                        size=self._skip - left,
                    )
                raise errors.RemoteUnavailable(f"{self._shown} ended early")
            left -= len(data)
        self._skip = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        left = self.served.length
        while left is None or left > 0:
            chunk = await self._read(READ_CHUNK if left is None else min(left, READ_CHUNK))
            if not chunk:
                break
            if left is not None:
                left -= len(chunk)
            yield chunk
        if left:
            if not self._exact:
                raise errors.BackendError(
                    f"{self._shown} ended {left} bytes before the end of range {self.served}"
                )
            raise errors.RemoteUnavailable(
                f"{self._shown} ended {left} bytes before the end of range {self.served}"
            )


def _partial_blob(
    response: aiohttp.ClientResponse, *, asked: base.ByteRange, shown: str
) -> _HttpBlob:
    """A 206: it must serve the range asked for (as cut by the end of the object)."""
    first, last, total = _content_range(response, shown=shown)
    served = base.ByteRange(first, last - first + 1)
    if total is not None:
        matches = served == asked.resolve(total)
    else:  # size unknown: the server may have cut the range at the end of the object
        matches = first == asked.offset and (asked.end is None or last < asked.end)
    if not matches:
        raise errors.BackendError(f"{shown}: asked for bytes {asked}, got {served}")
    length = _content_length(response, shown=shown)
    if length is not None and length != served.length:
        raise errors.BackendError(f"{shown}: Content-Length {length} for bytes {served}")
    return _HttpBlob(response, size=total, served=served, exact=True, skip=0, shown=shown)


def _whole_blob(
    response: aiohttp.ClientResponse, *, asked: base.ByteRange, shown: str
) -> _HttpBlob:
    size = _content_length(response, shown=shown)
    served = asked if size is None else asked.resolve(size)
    return _HttpBlob(
        response,
        size=size,
        served=served,
        exact=size is not None,
        skip=served.offset,
        shown=shown,
    )


class HttpDriver(base.Driver):
    Options = HttpOptions
    type_name = "http"
    schemes = ("http", "https")
    features = base.Feature.READ | base.Feature.RANGED_READ | base.Feature.REUSABLE

    def __init__(self, options: base.DriverOptions, *, backend_id: str) -> None:
        if not isinstance(options, HttpOptions):
            raise TypeError(f"HttpDriver needs HttpOptions, not {type(options).__name__}")
        super().__init__(options, backend_id=backend_id)
        self._timeout = options.http_timeout
        self._max_redirects = options.http_max_redirects
        self._ssl = _ssl_context(options)
        self._proxies = {
            scheme: _proxy_settings(proxy)
            for scheme, proxy in options.http_proxy_information.items()
        }
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> aiohttp.ClientSession:
        """The one session of this driver, made inside the loop that uses it."""
        loop = asyncio.get_running_loop()
        if self._session is not None and not self._session.closed:
            if loop is not self._loop:
                raise RuntimeError("an HttpDriver cannot be shared between event loops")
            return self._session
        self._loop = loop
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl),
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=self._timeout, sock_read=self._timeout
            ),
            headers={"Accept-Encoding": "identity"},
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def owns(self, location: locations.Location) -> bool:
        # the store reads whatever URL it is given; there is no confinement to check
        return isinstance(location, locations.HttpLocation)

    def _http_location(self, location: locations.Location) -> locations.HttpLocation:
        if not isinstance(location, locations.HttpLocation):
            raise errors.InvalidLocation(f"location {location} is not an http(s) URL")
        return location

    async def _send(
        self, method: str, *, url: yarl.URL, headers: Mapping[str, str], shown: str
    ) -> aiohttp.ClientResponse:
        proxy, proxy_headers = self._proxies.get(url.scheme, (None, {}))
        try:
            return await self._client().request(
                method,
                url,
                headers=headers,
                allow_redirects=False,
                proxy=proxy,
                proxy_headers=proxy_headers or None,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _client_error(exc, shown=shown) from exc

    async def _request(
        self, location: locations.HttpLocation, *, method: str, headers: Mapping[str, str]
    ) -> aiohttp.ClientResponse:
        """The first response that is not a redirect; the caller releases it."""
        shown = str(location)
        try:
            url = yarl.URL(location.url())
        except ValueError as exc:
            raise errors.InvalidLocation(f"invalid location {shown}") from exc
        authorization = _authorization(location)
        origin = _origin(url)
        redirects = 0
        while True:
            sent = dict(headers)
            if authorization is not None:
                sent["Authorization"] = authorization
            response = await self._send(method, url=url, headers=sent, shown=shown)
            if response.status not in REDIRECT_STATUSES:
                return response
            target = response.headers.get("Location")
            response.release()
            if redirects == self._max_redirects:
                raise errors.TooManyRedirects(f"{shown}: more than {self._max_redirects} redirects")
            redirects += 1
            url = _redirect_target(url, header=target, shown=shown)
            LOG.debug("%s: HTTP %d to %s", shown, response.status, url.with_query(None))
            if _origin(url) != origin:
                authorization = None  # and it stays dropped, even if redirected back

    @contextlib.asynccontextmanager
    async def get(
        self, location: locations.Location, *, byte_range: base.ByteRange = base.FULL
    ) -> AsyncIterator[base.Blob]:
        http_location = self._http_location(location)
        shown = str(http_location)
        headers = {} if byte_range.is_full else {"Range": byte_range.header_value()}
        response = await self._request(http_location, method="GET", headers=headers)
        try:
            if response.status == 206:
                blob = _partial_blob(response, asked=byte_range, shown=shown)
            elif response.status == 200:
                blob = _whole_blob(response, asked=byte_range, shown=shown)
                await blob.skip_prefix()
            elif response.status == 416:
                raise errors.RangeNotSatisfiable(
                    f"range {byte_range} is past the end of {shown}",
                    size=_unsatisfiable_size(response),
                )
            else:
                raise _status_error(response, shown=shown)
            yield blob
        finally:
            if response.content.at_eof():
                response.release()  # the connection goes back to the pool
            else:
                response.close()

    async def size(self, location: locations.Location) -> int:
        http_location = self._http_location(location)
        shown = str(http_location)
        response = await self._request(http_location, method="HEAD", headers={})
        try:
            if response.status != 200:
                raise _status_error(response, shown=shown)
            size = _content_length(response, shown=shown)
        finally:
            response.release()
        if size is None:
            raise errors.Unsupported(f"{shown} does not say its size (no Content-Length)")
        return size

    async def add(
        self,
        image_id: str,
        data: AsyncIterator[bytes],
        *,
        size: int | None,
        mode: base.WriteMode = "create",
    ) -> base.Stored:
        raise errors.Unsupported("the http store is read-only: images cannot be added to it")

    async def delete(self, location: locations.Location) -> None:
        raise errors.Unsupported("the http store is read-only: images cannot be deleted from it")
