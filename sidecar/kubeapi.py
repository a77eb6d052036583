"""The few Kubernetes API calls the sidecar makes, with the pod's own service account.

aiohttp is already in the sidecar; the ``kubernetes`` client would add tens of MiB to every
application pod for four REST calls. What this module owes the cluster instead:

* TLS verified against the service account's ``ca.crt``; plain http only to a loopback
  address, and only when configured explicitly (``settings.recording_from_env``), so the
  bearer token never crosses a network in clear text;
* the token re-read when the file changes (kubelet rotates bound tokens by swapping the
  ``..data`` symlink; one ``stat`` per request notices it) and after a 401;
* the token never in an exception, a log line or a body: it lives in one header only.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

REQUEST_TIMEOUT = 10.0  # seconds per call: the API server answers these in milliseconds
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
_RETRYABLE_STATUS = frozenset({401, 408, 429, 500, 502, 503, 504})


class ApiError(Exception):
    """A call failed; ``reason`` is a short label for logs and metrics, never secret."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        status: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.status = status
        self._retryable = retryable

    @property
    def retryable(self) -> bool:
        """By default: no answer (network, token) or an answer that may change on its own."""
        if self._retryable is not None:
            return self._retryable
        return self.status is None or self.status in _RETRYABLE_STATUS


class ServiceAccount:
    """The pod's service account files: ``token``, ``ca.crt``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._token = ""
        self._token_stamp: tuple[int, int, int] | None = None

    def token(self) -> str:
        path = self.directory / "token"
        try:
            st = os.stat(path)
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp != self._token_stamp:
                self._token = path.read_text().strip()
                self._token_stamp = stamp
        except OSError as exc:
            raise ApiError(
                f"cannot read the service account token {path}: {exc.strerror}", reason="no_token"
            ) from None
        if not self._token:
            raise ApiError(f"the service account token {path} is empty", reason="no_token")
        return self._token

    def forget_token(self) -> None:
        """Read the token again on the next call (the server refused the one we had)."""
        self._token_stamp = None

    def ssl_context(self) -> ssl.SSLContext:
        ca = self.directory / "ca.crt"
        return ssl.create_default_context(cafile=str(ca) if ca.exists() else None)


class Client:
    """JSON calls to one API server; the session is made on first use, inside the loop."""

    def __init__(self, base_url: str, *, service_account: ServiceAccount) -> None:
        self._base_url = base_url.rstrip("/")
        self._service_account = service_account
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            tls: ssl.SSLContext | bool = True  # unused for http://
            if self._base_url.startswith("https:"):
                tls = self._service_account.ssl_context()
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=tls, limit=4),
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
                headers={"Accept": JSON, "User-Agent": "kglance-sidecar"},
            )
        return self._session

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        content_type: str = JSON,
    ) -> dict[str, Any]:
        """The decoded answer of ``method path``; ``ApiError`` for any failure."""
        session = self._open()
        headers = {"Authorization": f"Bearer {self._service_account.token()}"}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body).encode()
        try:
            async with session.request(
                method, self._base_url + path, data=data, headers=headers
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            detail = str(exc) or type(exc).__name__
            raise ApiError(f"{method} {path}: {detail}", reason="unreachable") from None
        if status == 401:
            self._service_account.forget_token()
        decoded = _decode(text)
        if status >= 400:
            message = decoded.get("message") if isinstance(decoded.get("message"), str) else ""
            raise ApiError(
                f"{method} {path}: HTTP {status} {message}".rstrip(),
                reason=f"http_{status}",
                status=status,
            )
        return decoded

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _decode(text: str) -> dict[str, Any]:
    try:
        decoded = json.loads(text) if text else {}
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}
