"""The Swift store module (``glance_store._drivers.swift.store``) on kglance's swift driver.

The classes glance_store documents are all here. ``SingleTenantStore`` and
``MultiTenantStore`` do their I/O through the kglance swift driver (as soon as it exists;
until then configuring them fails with ``BadStoreConfiguration`` and adds are disabled);
everything tied to ``swiftclient`` and Keystone sessions (``get_connection``,
``get_manager``, ``init_client``, ``get_store_connection``) belongs to that driver and
raises ``NotImplementedError`` here. Pure logic Glance relies on is kept: the location
grammar and ``swift_url``, ``get_container_name`` with the multiple-containers seed,
``create_location``, ``ChunkReader`` and ``swift_retry_iter``.

Locations kglance creates carry no credentials; ``swift+config`` locations keep their own
account reference when written back (glance_store expanded them to the credentials, or
rewrote them to the default reference).
"""

from __future__ import annotations

import importlib
import logging
import types
from collections.abc import Iterator
from typing import Any, ClassVar

from kglance.drivers import backends, locations
from kglance.drivers.glance_store import _options, capabilities, exceptions, location
from kglance.drivers.glance_store._adapter import AdaptedStore, ImageIterator
from kglance.drivers.glance_store._drivers.swift import _accounts

__all__ = [
    "BaseStore",
    "ChunkReader",
    "MultiTenantStore",
    "SingleTenantStore",
    "Store",
    "StoreLocation",
    "swift_retry_iter",
]

LOG = logging.getLogger(__name__)

DEFAULT_CONTAINER = "glance"
DEFAULT_LARGE_OBJECT_SIZE = 5 * 1024  # "MB" of 1,024,000 bytes, as glance_store counts
DEFAULT_LARGE_OBJECT_CHUNK_SIZE = 200
ONE_MB = 1000 * 1024

_NOT_HERE = (
    "{name} is part of glance_store's swiftclient plumbing; in kglance connections, tokens "
    "and retries belong to the kglance swift driver"
)


def _strip_scheme(url: str) -> tuple[str, bool]:
    """``url`` without ``http(s)://`` and whether it used TLS (no scheme counts as TLS)."""
    if url.startswith("http://"):
        return url[len("http://") :], False
    if url.startswith("https://"):
        return url[len("https://") :], True
    return url, True


def _naming() -> types.ModuleType:
    """The kglance swift driver's naming rules (imported when first needed; no SDK)."""
    return importlib.import_module("kglance.drivers.swift.naming")


def _with_scheme(url: str) -> str:
    return url if "://" in url else f"https://{url}"


class StoreLocation(location.StoreLocation):
    """A Swift location.

    ``swift://user:key@authurl/container/obj``, ``swift+http://`` (http auth URL),
    ``swift+https://`` (the same as ``swift://``), ``swift://account:user:key@...`` (the
    last ``:`` separates the key), storage URLs of multi-tenant stores
    (``swift+https://host/v1/AUTH_tenant/container/obj``) and
    ``swift+config://reference/container/obj``. Attributes: ``scheme``, ``user``, ``key``,
    ``auth_or_store_url``, ``container``, ``obj``, ``reference`` (``swift+config`` only),
    ``ssl_enabled``; ``swift_url`` is the auth or storage URL with its scheme.
    """

    scheme: str
    user: str | None = None
    key: str | None = None
    auth_or_store_url: str = ""
    container: str
    obj: str
    reference: str | None = None
    ssl_enabled: bool = True
    application_credential_id: str | None = None
    application_credential_secret: str | None = None
    project_name: str | None = None
    project_id: str | None = None

    def process_specs(self) -> None:
        self.scheme = self.specs.get("scheme", "swift+https")
        self.user = self.specs.get("user")
        self.key = self.specs.get("key")
        self.application_credential_id = self.specs.get("application_credential_id")
        self.application_credential_secret = self.specs.get("application_credential_secret")
        self.project_name = self.specs.get("project_name")
        self.project_id = self.specs.get("project_id")
        self.auth_or_store_url = self.specs.get("auth_or_store_url") or ""
        self.container = self.specs["container"]
        self.obj = self.specs["obj"]
        self.reference = self.specs.get("reference")
        if self.scheme == "swift+config" and self.reference is None:
            self.reference = self.auth_or_store_url

    def get_uri(self, credentials_included: bool = True) -> str:
        """The location URI; credentials only if the parsed URI carried them and are asked for."""
        return self.to_kglance().uri(credentials=credentials_included)

    def parse_uri(self, uri: str) -> None:
        parsed = self.parse_with(locations.SwiftLocation.parse, uri)
        self.scheme = parsed.scheme_name
        self.container, self.obj = parsed.container, parsed.obj
        self.user, self.key = parsed.user, parsed.key
        self.auth_or_store_url = parsed.auth_or_store_url
        self.reference = parsed.reference
        self.ssl_enabled = parsed.scheme_name != "swift+http"
        if parsed.reference is not None:
            self._resolve(parsed.reference)

    def _resolve(self, reference: str) -> None:
        """Fill the attributes from the account reference, as glance_store does."""
        params = _accounts.references(self.conf, backend_group=self.backend_group).get(reference)
        if params is None:
            raise exceptions.BadStoreUri(
                message="Badly formed Swift URI. Credentials not found for account reference"
            )
        app_id = params.get("application_credential_id")
        app_secret = params.get("application_credential_secret")
        if bool(app_id) != bool(app_secret):
            raise exceptions.BadStoreUri(
                message="application_credential_id and application_credential_secret "
                "must be given together"
            )
        if app_id:
            self.application_credential_id, self.application_credential_secret = app_id, app_secret
            self.project_name = params.get("project_name")
            self.project_id = params.get("project_id")
            self.user = self.key = None
        else:
            self.user, self.key = params.get("user"), params.get("key")
            if not self.user or not self.key:
                raise exceptions.BadStoreUri(
                    message="Badly formed Swift URI. Credentials not found for account reference"
                )
        self.auth_or_store_url, self.ssl_enabled = _strip_scheme(params.get("auth_address", ""))

    @property
    def swift_url(self) -> str | None:
        """The auth (or storage) URL with its scheme: https unless ``swift+http``."""
        if not self.auth_or_store_url:
            return None
        if self.auth_or_store_url.startswith("http"):
            return self.auth_or_store_url
        if self.scheme == "swift+config":
            secure = self.ssl_enabled
        else:
            secure = self.scheme in ("swift", "swift+https")
        return ("https://" if secure else "http://") + self.auth_or_store_url

    def to_kglance(self) -> locations.SwiftLocation:
        if self.scheme == "swift+config":
            return locations.SwiftLocation(
                scheme_name="swift+config",
                auth_or_store_url=self.reference or self.auth_or_store_url,
                container=self.container.strip("/"),
                obj=self.obj.strip("/"),
            )
        address, _ = _strip_scheme(self.auth_or_store_url)
        return locations.SwiftLocation(
            scheme_name=self.scheme,
            auth_or_store_url=address.strip("/"),
            container=self.container.strip("/"),
            obj=self.obj.strip("/"),
            user=self.user if self.key is not None else None,
            key=self.key if self.user is not None else None,
        )


def _from_kglance(target: locations.SwiftLocation, *, store: BaseStore) -> StoreLocation:
    specs: dict[str, Any] = {
        "scheme": target.scheme_name,
        "auth_or_store_url": target.auth_or_store_url,
        "container": target.container,
        "obj": target.obj,
    }
    if target.reference is not None:
        specs["reference"] = target.reference
    return StoreLocation(specs, store.conf, backend_group=store.backend_group)


def swift_retry_iter(
    resp_iter: Any, length: int, store: BaseStore, location: Any, manager: Any
) -> Iterator[bytes]:
    """Yield ``resp_iter``; when it fails or ends before ``length`` bytes, reopen the image
    at the byte reached, up to ``swift_store_retry_get_count`` times.

    ``manager`` is accepted for the signature and unused. Unlike glance_store, running out of
    retries raises ``BackendException`` instead of ending the stream short in silence.
    """
    retries = int(store.store_option("swift_store_retry_get_count") or 0)
    bytes_read = 0
    attempt = 0
    while True:
        failure: Exception | None = None
        try:
            for chunk in resp_iter:
                bytes_read += len(chunk)
                yield chunk
        except (exceptions.BackendException, exceptions.GlanceStoreException) as exc:
            failure = exc
        if failure is None and (not length or bytes_read >= length):
            return
        if attempt >= retries:
            raise exceptions.BackendException(
                f"Swift download stopped at byte {bytes_read} of {length} after {attempt} retries"
            ) from failure
        attempt += 1
        LOG.info("Retrying Swift download (%d/%d) from byte %d", attempt, retries, bytes_read)
        resp_iter, _ = store._get_image(location, offset=bytes_read, chunk_size=None)


class BaseStore(AdaptedStore):
    KGLANCE_TYPE = "swift"
    SCHEMES = ("swift+https", "swift", "swift+http", "swift+config")
    OPTIONS = _options.SWIFT_OPTS
    STORE_LOCATION_CLASS = StoreLocation
    CHUNKSIZE: ClassVar[int] = 65536
    _CAPABILITIES = capabilities.BitMasks.RW_ACCESS

    def store_option(self, name: str) -> Any:
        """A swift option of this store (``[backend_defaults]`` fallback applies)."""
        return _accounts.store_option(self.conf, name, backend_group=self.backend_group)

    def configure(self, re_raise_bsc: bool = False) -> None:
        super().configure(re_raise_bsc=re_raise_bsc)

    @capabilities.check
    def get(  # type: ignore[override]  # glance_store's swift signature has `connection`
        self,
        location: location.Location,
        connection: Any = None,
        offset: int = 0,
        chunk_size: int | None = None,
        context: Any = None,
    ) -> tuple[ImageIterator, int]:
        return self._get_image(location, offset=offset, chunk_size=chunk_size)

    def get_size(  # type: ignore[override]  # glance_store's swift signature
        self, location: location.Location, connection: Any = None, context: Any = None
    ) -> int:
        return self._image_size(location)

    @capabilities.check
    def delete(  # type: ignore[override]  # glance_store's swift signature
        self, location: location.Location, connection: Any = None, context: Any = None
    ) -> None:
        self._delete_image(location)

    def create_location(self, image_id: str, context: Any = None) -> StoreLocation:
        raise NotImplementedError

    def get_connection(self, location: Any, context: Any = None) -> Any:
        raise NotImplementedError(_NOT_HERE.format(name="get_connection"))

    def get_manager(
        self, store_location: Any, context: Any = None, allow_reauth: bool = False
    ) -> Any:
        raise NotImplementedError(_NOT_HERE.format(name="get_manager"))

    def init_client(self, location: Any, context: Any = None) -> Any:
        raise NotImplementedError(_NOT_HERE.format(name="init_client"))

    def get_store_connection(self, auth_token: str, storage_url: str) -> Any:
        raise NotImplementedError(_NOT_HERE.format(name="get_store_connection"))

    def _make_url_prefix(self, backend: backends.Backend) -> str | None:
        """``<scheme>://<auth or storage URL>/<container>/``, or ``.../<container>_`` when
        containers carry a suffix (a seed, or one container per image)."""
        try:
            sample = self.create_location("x")
        except (exceptions.GlanceStoreException, NotImplementedError):
            return None
        uri = sample.get_uri(credentials_included=False)
        head = uri[: -len(f"{sample.container}/x")]
        container = self.store_option("swift_store_container") or DEFAULT_CONTAINER
        if sample.container == container:
            return f"{head}{container}/"
        return f"{head}{container}_"


class SingleTenantStore(BaseStore):
    EXAMPLE_URL = "swift://<USER>:<KEY>@<AUTH_ADDRESS>/<CONTAINER>/<FILE>"

    def configure(self, re_raise_bsc: bool = False) -> None:
        super().configure(re_raise_bsc=re_raise_bsc)

    def configure_add(self) -> None:
        super().configure_add()

    def create_location(self, image_id: str, context: Any = None) -> StoreLocation:
        """Where ``add(image_id)`` puts the image, without credentials (the driver's naming)."""
        naming = _naming()
        container = self.get_container_name(
            image_id, self.store_option("swift_store_container") or DEFAULT_CONTAINER
        )
        if _accounts.uses_accounts_file(self.conf, backend_group=self.backend_group):
            reference = self.store_option("default_swift_reference") or "ref1"
            return _from_kglance(
                naming.config_location(str(reference), container, str(image_id)), store=self
            )
        address = self.store_option("swift_store_auth_address")
        if not address:
            raise exceptions.BadStoreConfiguration(
                store_name="swift", reason="set swift_store_config_file or swift_store_auth_address"
            )
        return _from_kglance(
            naming.url_location(_with_scheme(str(address)), container, str(image_id)), store=self
        )

    def get_container_name(self, image_id: str, default_image_container: str) -> str:
        """The container for ``image_id``.

        With ``swift_store_multiple_containers_seed`` 0 it is ``default_image_container``;
        with N in 1..32 it is ``<default_image_container>_`` followed by the first N
        characters of the lower-cased image id, dashes not counted (``glance_fdae39a1-ba``
        for seed 10). The rule is the kglance swift driver's, so both always agree.
        """
        seed = self.store_option("swift_store_multiple_containers_seed")
        try:
            return str(_naming().get_container_name(str(image_id), default_image_container, seed))
        except (TypeError, ValueError) as exc:
            raise exceptions.BadStoreConfiguration(
                store_name="swift",
                reason="An integer value between 0 and 32 is required for "
                "swift_store_multiple_containers_seed.",
            ) from exc


class MultiTenantStore(BaseStore):
    EXAMPLE_URL = "swift://<SWIFT_URL>/<CONTAINER>/<FILE>"

    def create_location(self, image_id: str, context: Any = None) -> StoreLocation:
        """``<container>_<image_id>`` under ``swift_store_endpoint`` (kglance has no catalog)."""
        naming = _naming()
        container = self.store_option("swift_store_container")
        if not container:
            raise exceptions.BadStoreConfiguration(
                store_name="swift", reason="swift_store_container must be set in the configuration."
            )
        endpoint = self.store_option("swift_store_endpoint")
        if not endpoint:
            raise exceptions.BadStoreConfiguration(
                store_name="swift",
                reason="a multi-tenant store needs swift_store_endpoint in kglance",
            )
        per_image = naming.multi_tenant_container(str(image_id), str(container))
        return _from_kglance(
            naming.url_location(_with_scheme(str(endpoint)), per_image, str(image_id)), store=self
        )

    @capabilities.check
    def delete(  # type: ignore[override]  # glance_store's swift signature
        self, location: location.Location, connection: Any = None, context: Any = None
    ) -> None:
        self._delete_image(location)

    def set_acls(  # type: ignore[override]  # glance_store's swift signature
        self,
        location: location.Location,
        public: bool = False,
        read_tenants: list[str] | None = None,
        write_tenants: list[str] | None = None,
        connection: Any = None,
        context: Any = None,
    ) -> None:
        """Set the read and write ACLs of the image's container (glance_store's signature).

        Delegates to the kglance swift driver: ``X-Container-Read`` is ``*:*`` when public,
        else ``<tenant>:*`` per read tenant; ``X-Container-Write`` lists the write tenants and
        ``swift_store_admin_tenants``. A missing container raises ``NotFound`` as glance_store's
        does; the caller's lists are never modified (glance_store extended ``write_tenants``).
        """
        from kglance.drivers.swift.driver import SwiftDriver  # the SDK only when used

        backend = self._backend()
        target, shown = self._target(location)
        driver = backend.driver
        if not isinstance(driver, SwiftDriver):  # pragma: no cover - type guard
            raise exceptions.BadStoreConfiguration(
                store_name="swift", reason="the backend is not served by kglance's swift driver"
            )
        self._call(
            driver.set_acls(
                target,
                public=public,
                read_tenants=tuple(read_tenants or ()),
                write_tenants=tuple(write_tenants or ()),
            ),
            operation="set_acls",
            image=shown,
        )


class ChunkReader:
    """Reads at most ``total`` bytes of ``fd``, hashing what it returns.

    ``checksum`` (and ``os_hash_value``, if given) are hashlib objects, ``verifier`` an
    object with ``update(bytes)``. One byte is read ahead at construction so an empty input
    is known at once (``is_zero_size``). Input beyond ``total`` is never read.
    """

    def __init__(
        self,
        fd: Any,
        checksum: Any,
        total: int,
        verifier: Any = None,
        *,
        os_hash_value: Any = None,
        backend_group: str | None = None,
    ) -> None:
        self.fd = fd
        self.checksum = checksum
        self.os_hash_value = os_hash_value
        self.total = total
        self.verifier = verifier
        self.backend_group = backend_group
        self.bytes_read = 0
        self.byteone: bytes | None = fd.read(1)
        self.is_zero_size = not self.byteone

    def do_read(self, i: int) -> bytes:
        if self.byteone is not None and i > 0:
            first, self.byteone = self.byteone, None
            return bytes(first + self.fd.read(i - 1))
        return bytes(self.fd.read(i))

    def read(self, i: int) -> bytes:
        i = min(i, self.total - self.bytes_read)
        result = self.do_read(i) if i > 0 else b""
        self.bytes_read += len(result)
        for hasher in (self.checksum, self.os_hash_value, self.verifier):
            if hasher is not None:
                hasher.update(result)
        return result

    def __enter__(self) -> ChunkReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


class _StoreFactory:
    """``Store(conf, backend=None)``: a multi- or single-tenant store, as configured."""

    OPTIONS = _options.SWIFT_OPTS

    def __call__(self, conf: Any, backend: str | None = None) -> BaseStore:
        group = backend or _options.STORE_CFG_GROUP
        _options.register(conf, self.OPTIONS, group=group)
        multi_tenant = _accounts.store_option(
            conf, "swift_store_multi_tenant", backend_group=backend
        )
        if multi_tenant:
            name = "default_backend" if backend else "default_store"
            found = _options.read(conf, [name], group=_options.STORE_CFG_GROUP, shared=False)
            default = found[name].value if name in found else None
            if default == "swift+config" or _accounts.uses_accounts_file(
                conf, backend_group=backend
            ):
                raise exceptions.BadStoreConfiguration(
                    store_name="swift",
                    reason="swift_store_multi_tenant and swift_store_config_file are mutually "
                    "exclusive",
                )
            return MultiTenantStore(conf, backend)
        return SingleTenantStore(conf, backend)


Store = _StoreFactory()
