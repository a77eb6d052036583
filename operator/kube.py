"""The few Kubernetes API calls the operator makes itself, besides kopf's own watch and patch.

kopf patches the object a handler runs for; the operator also reads the Secrets and ConfigMaps
backends reference, writes the per-namespace config Secret, and patches the status of *other*
StoreBackends of a namespace when one of them changes (a new default demotes the old one).
Those calls go through this small client, which connects with the same ``kopf.ConnectionInfo``
kopf logs in with, so there is one notion of credentials (a service account in the cluster, a
kubeconfig outside) and a test points both at the same emulator. A 401 logs in again once:
projected service-account tokens rotate under a running pod.

Nothing here logs request or response bodies: Secrets pass through this client.
"""

from __future__ import annotations

import base64
import contextlib
import ssl
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import kopf

Login = Callable[[], kopf.ConnectionInfo | None]
MERGE_PATCH = "application/merge-patch+json"


class ApiError(Exception):
    """The API server refused a request; ``status`` is the HTTP status."""

    def __init__(self, *, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def retryable(self) -> bool:
        """Conflicts, throttling and server-side failures pass; other refusals do not."""
        return self.status in (409, 429) or self.status >= 500


def default_login() -> kopf.ConnectionInfo | None:
    """The pod's service account in a cluster, else the kubeconfig (``KUBECONFIG`` or ~/.kube)."""
    settings = kopf.OperatorSettings()
    info = kopf.login_with_service_account(settings=settings)
    return info if info is not None else kopf.login_with_kubeconfig(settings=settings)


def core_path(plural: str, *, namespace: str, name: str | None = None) -> str:
    path = f"/api/v1/namespaces/{namespace}/{plural}"
    return path if name is None else f"{path}/{name}"


def custom_path(
    group: str,
    version: str,
    plural: str,
    *,
    namespace: str,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    path = f"/apis/{group}/{version}/namespaces/{namespace}/{plural}"
    if name is not None:
        path = f"{path}/{name}"
    return path if subresource is None else f"{path}/{subresource}"


def decode_data(obj: Mapping[str, Any]) -> dict[str, bytes]:
    """A Secret's ``data`` (base64) and ``stringData`` as bytes."""
    decoded = {key: base64.b64decode(value) for key, value in (obj.get("data") or {}).items()}
    decoded.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
    return decoded


def encode_data(files: Mapping[str, bytes]) -> dict[str, str]:
    return {key: base64.b64encode(value).decode("ascii") for key, value in files.items()}


class _Connection:
    """An HTTP session bound to one ``ConnectionInfo`` (kopf builds the headers and TLS)."""

    def __init__(self, info: kopf.ConnectionInfo, *, timeout: float) -> None:
        self.server = str(info.server).rstrip("/")
        tls: ssl.SSLContext | bool = (
            info.as_ssl_context() if self.server.startswith("https") else True
        )
        self.session = aiohttp.ClientSession(
            headers={"Accept": "application/json", **info.as_http_headers()},
            connector=aiohttp.TCPConnector(ssl=tls),
            timeout=aiohttp.ClientTimeout(total=timeout),
            trust_env=bool(info.trust_env),
        )

    async def aclose(self) -> None:
        await self.session.close()


class Api:
    """JSON requests to the API server; ``get`` returns ``None`` for a missing object."""

    def __init__(self, *, login: Login, timeout: float = 30.0) -> None:
        self._login = login
        self._timeout = timeout
        self._connection: _Connection | None = None
        self._closed = False

    def _connect(self) -> _Connection:
        if self._closed:
            raise RuntimeError("the API client is closed")
        if self._connection is None:
            info = self._login()
            if info is None:
                raise ApiError(status=401, reason="NoCredentials", message="no way to log in")
            self._connection = _Connection(info, timeout=self._timeout)
        return self._connection

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        for attempt in (1, 2):
            connection = self._connect()
            async with connection.session.request(
                method,
                connection.server + path,
                json=body,
                headers={"Content-Type": content_type} if body is not None else None,
            ) as response:
                if response.status == 401 and attempt == 1:
                    await self._disconnect()  # the token may have rotated: log in again
                    continue
                payload = await _json(response)
                if response.status >= 400:
                    raise ApiError(
                        status=response.status,
                        reason=str(payload.get("reason") or response.reason),
                        message=str(payload.get("message") or ""),
                    )
                return payload
        raise AssertionError("unreachable")  # pragma: no cover

    async def get(self, path: str) -> dict[str, Any] | None:
        try:
            return await self.request("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("POST", path, body=body)

    async def patch(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("PATCH", path, body=body, content_type=MERGE_PATCH)

    async def delete(self, path: str) -> bool:
        """Delete; ``False`` when there was nothing to delete."""
        try:
            await self.request("DELETE", path)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.aclose()

    async def aclose(self) -> None:
        self._closed = True
        await self._disconnect()


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    with contextlib.suppress(ValueError, aiohttp.ContentTypeError):
        payload = await response.json(content_type=None)
        if isinstance(payload, dict):
            return payload
    return {}
