"""Tokens and storage URLs for a Swift account, cached, shared and refreshed before they expire.

One ``TokenCache`` per driver: every request borrows its token, so the backend authenticates
once rather than once per connection (swiftclient's ``Connection`` authenticates per object).
A token is refreshed when it would expire within ``swift_store_expire_soon_interval`` seconds of
the moment it is asked for: each segment of a long upload asks anew, so a token never runs out
in the middle of a multi-hour upload (glance_store's "expire soon" re-authentication). A request
answered 401 anyway (a revoked token, a token store restarted) drops the token it used, and the
caller authenticates again and retries once (``connections``).

Two ways to authenticate:

* Auth v1 (tempauth, swauth): ``GET auth_address`` with ``X-Auth-User`` and ``X-Auth-Key``;
  the answer carries ``X-Storage-Url``, ``X-Auth-Token`` and (tempauth) ``X-Auth-Token-Expires``.
  glance_store 5.7.0 removed v1; kglance keeps it because Swift clusters without Keystone use it.
* Auth v3 (Keystone), through a ``keystoneauth1`` session: a password (``project:user`` as
  glance writes it, domains from the account) or an application credential. The storage URL
  comes from the catalog (service type, interface, region) unless ``swift_store_endpoint``
  overrides it, as in glance.

All calls here block; the driver runs them on its threads.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from kglance.drivers import errors
from kglance.drivers.swift import accounts

_VERSIONED_PATH = re.compile(r"^v\d+(\.\d+)?$")
_INTERFACES = {"publicURL": "public", "adminURL": "admin", "internalURL": "internal"}


@dataclasses.dataclass(frozen=True, slots=True)
class Tls:
    """How certificates are checked: verified by default, against ``cacert`` when given."""

    cacert: str | None = None
    insecure: bool = False

    @property
    def verify(self) -> bool | str:
        """The ``verify`` argument of requests and keystoneauth sessions."""
        if self.insecure:
            return False
        return self.cacert or True


@dataclasses.dataclass(frozen=True, slots=True)
class Token:
    storage_url: str
    value: str = dataclasses.field(repr=False)
    expires_at: float | None = None  # on the cache's clock; None when the server does not say


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the storage URL comes from when it is not the one the auth service returns."""

    override: str | None = None  # swift_store_endpoint
    service_type: str = "object-store"
    interface: str = "publicURL"
    region: str | None = None


class Authenticator(abc.ABC):
    """Exchanges an account's credentials for a token; blocking."""

    def __init__(self, account: accounts.Account) -> None:
        self.account = account

    @abc.abstractmethod
    def authenticate(self, *, now: float) -> Token:
        """A new token, its storage URL and its deadline on the clock that gave ``now``."""

    def forget(self) -> None:
        """Drop any state kept between calls (a session's cached token)."""


class V1Authenticator(Authenticator):
    def __init__(self, account: accounts.Account, *, tls: Tls, timeout: float) -> None:
        super().__init__(account)
        self._tls = tls
        self._timeout = timeout

    def authenticate(self, *, now: float) -> Token:
        import swiftclient.client  # the driver package is importable without the SDK

        account = self.account
        assert account.user is not None and account.key is not None  # accounts._checked
        parsed, conn = swiftclient.client.http_connection(
            account.auth_address,
            cacert=self._tls.cacert,
            insecure=self._tls.insecure,
            timeout=self._timeout,
        )
        headers = {"X-Auth-User": account.user, "X-Auth-Key": account.key.get_secret_value()}
        try:
            conn.request("GET", parsed.path or "/", "", headers)
            response = conn.getresponse()
            response.read()
        except OSError as exc:  # requests' errors are OSErrors too
            raise errors.RemoteUnavailable(
                f"Swift authentication for {account.name} failed: {type(exc).__name__}"
            ) from exc
        finally:
            conn.close()
        status = response.status
        if status in (401, 403):
            raise errors.BackendError(
                f"Swift authentication for {account.name} was refused (HTTP {status})"
            )
        if not 200 <= status < 300:
            error = errors.RemoteUnavailable if status >= 500 else errors.BackendError
            raise error(f"Swift authentication for {account.name} failed with HTTP {status}")
        storage_url = response.getheader("x-storage-url")
        token = response.getheader("x-auth-token") or response.getheader("x-storage-token")
        if not storage_url or not token:
            raise errors.BackendError(
                f"the auth service of {account.name} returned no storage URL or no token"
            )
        lifetime = response.getheader("x-auth-token-expires")
        expires_at = now + float(lifetime) if lifetime and lifetime.isdigit() else None
        return Token(storage_url=storage_url, value=token, expires_at=expires_at)


def keystone_url(auth_address: str) -> str:
    """The Keystone v3 URL of ``auth_address``, with ``/v3`` added to a versionless one."""
    parts = urllib.parse.urlsplit(auth_address)
    path = parts.path.rstrip("/")
    if not _VERSIONED_PATH.match(path.rsplit("/", 1)[-1]):
        path += "/v3"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def v3_plugin_arguments(account: accounts.Account) -> tuple[str, dict[str, Any]]:
    """The keystoneauth1 v3 plugin class name and its arguments for ``account``."""
    auth_url = keystone_url(account.auth_address)
    domains = {
        "user_domain_id": account.user_domain_id,
        "user_domain_name": account.user_domain_name,
        "project_domain_id": account.project_domain_id,
        "project_domain_name": account.project_domain_name,
    }
    if account.uses_application_credential:
        assert account.application_credential_id is not None
        assert account.application_credential_secret is not None
        return "ApplicationCredential", {
            "auth_url": auth_url,
            "application_credential_id": account.application_credential_id.get_secret_value(),
            "application_credential_secret": (
                account.application_credential_secret.get_secret_value()
            ),
        }
    assert account.user is not None and account.key is not None
    project_name, user = account.project_name, account.user
    if ":" in account.user:  # glance's "tenant:user"
        project_name, user = account.user.split(":", 1)
    arguments: dict[str, Any] = {
        "auth_url": auth_url,
        "username": user,
        "password": account.key.get_secret_value(),
        **{k: v for k, v in domains.items() if v is not None},
    }
    if account.project_id:
        arguments["project_id"] = account.project_id
    else:
        arguments["project_name"] = project_name
    return "Password", arguments


class V3Authenticator(Authenticator):
    def __init__(
        self,
        account: accounts.Account,
        *,
        tls: Tls,
        timeout: float,
        endpoint: Endpoint,
        expire_soon: float,
    ) -> None:
        super().__init__(account)
        try:
            from keystoneauth1 import session
            from keystoneauth1.identity import v3
        except ImportError as exc:
            raise errors.MissingDependency(
                driver="swift", module="keystoneauth1", extra="swift"
            ) from exc

        plugin_name, arguments = v3_plugin_arguments(account)
        self._plugin = getattr(v3, plugin_name)(**arguments)
        self._session = session.Session(auth=self._plugin, verify=tls.verify, timeout=timeout)
        self._endpoint = endpoint
        self._expire_soon = expire_soon

    @property
    def session(self) -> Any:
        return self._session

    def forget(self) -> None:
        self._plugin.invalidate()

    def authenticate(self, *, now: float) -> Token:
        from keystoneauth1 import exceptions as ks_errors

        name = self.account.name
        try:
            access = self._plugin.get_access(self._session)
            if access.will_expire_soon(stale_duration=self._expire_soon):
                self._plugin.invalidate()
                access = self._plugin.get_access(self._session)
            storage_url = self._endpoint.override or self._session.get_endpoint(
                service_type=self._endpoint.service_type,
                interface=_INTERFACES.get(self._endpoint.interface, self._endpoint.interface),
                region_name=self._endpoint.region,
            )
        except (ks_errors.ConnectFailure, ks_errors.ConnectTimeout) as exc:
            raise errors.RemoteUnavailable(
                f"Keystone for {name} is unreachable: {type(exc).__name__}"
            ) from exc
        except ks_errors.EndpointNotFound as exc:
            raise errors.BackendError(
                f"the catalog of {name} has no {self._endpoint.service_type} endpoint "
                f"(swift_store_region, swift_store_endpoint_type, swift_store_service_type)"
            ) from exc
        except ks_errors.Unauthorized as exc:
            raise errors.BackendError(f"Keystone refused the credentials of {name}") from exc
        except ks_errors.ClientException as exc:
            raise errors.BackendError(
                f"Keystone authentication for {name} failed: {type(exc).__name__}"
            ) from exc
        if not storage_url:
            raise errors.BackendError(f"the catalog of {name} has no object-store endpoint")
        expires_at = None
        if access.expires is not None:
            left = access.expires - datetime.datetime.now(datetime.UTC)
            expires_at = now + left.total_seconds()
        return Token(storage_url=storage_url, value=access.auth_token, expires_at=expires_at)


def authenticator(
    account: accounts.Account,
    *,
    tls: Tls,
    timeout: float,
    endpoint: Endpoint,
    expire_soon: float,
) -> Authenticator:
    if account.auth_version == "1":
        return V1Authenticator(account, tls=tls, timeout=timeout)
    return V3Authenticator(
        account, tls=tls, timeout=timeout, endpoint=endpoint, expire_soon=expire_soon
    )


class TokenCache:
    """The current token of one account, shared by every thread of a driver."""

    def __init__(
        self,
        source: Authenticator,
        *,
        expire_soon: float,
        storage_url: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._expire_soon = expire_soon
        self._storage_url = storage_url  # swift_store_endpoint overrides what auth returns
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Token | None = None

    @property
    def account(self) -> accounts.Account:
        return self._source.account

    @property
    def known_storage_url(self) -> str | None:
        """The storage URL if it is known without authenticating."""
        if self._storage_url is not None:
            return self._storage_url
        token = self._token
        return token.storage_url if token is not None else None

    def get(self) -> Token:
        """A token that stays valid for at least ``swift_store_expire_soon_interval`` seconds."""
        with self._lock:
            token = self._token
            now = self._clock()
            if token is None or (
                token.expires_at is not None and token.expires_at - now <= self._expire_soon
            ):
                token = self._source.authenticate(now=now)
                if self._storage_url is not None:
                    token = dataclasses.replace(token, storage_url=self._storage_url)
                self._token = token
            return token

    def invalidate(self, token: Token) -> None:
        """Forget ``token`` after Swift refused it (unless another thread already did)."""
        with self._lock:
            if self._token is token:
                self._token = None
                self._source.forget()
