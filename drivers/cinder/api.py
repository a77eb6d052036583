"""The Cinder volume API through python-cinderclient on a keystoneauth1 session (blocking).

Every method here blocks and is meant to run on the backend's thread pool. One ``VolumeApi``
per backend owns its own session: glance_store kept one process-global ``CINDER_SESSION``
built from whichever cinder store was configured first, so two backends with different
service users shared credentials.

cinderclient's exceptions are translated here (``translate``) and never leave the driver:
404 is ``NotFound``, 413 and quota errors are ``StorageFull``, 401/403 ``WriteDenied`` or a
configuration problem, connection failures and 5xx ``RemoteUnavailable``.

Microversion 3.54 is what glance uses: attachments (3.27), ``attachment_complete`` (3.44)
and the attach ``mode`` (3.54).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from cinderclient import api_versions
from cinderclient import exceptions as cinder_errors
from cinderclient.v3 import client as cinder_client
from keystoneauth1 import exceptions as ks_errors
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from keystoneauth1.identity import v3 as ks_v3

from kglance.drivers import errors
from kglance.drivers.cinder import options

MICROVERSION = "3.54"
ATTACH_MOUNTPOINT = "glance_store"  # what glance sends, so operators see the same thing


@dataclasses.dataclass(frozen=True, slots=True)
class Volume:
    """What the driver needs of a volume record."""

    id: str
    name: str | None
    status: str
    size: int  # in the API's units (GiB)
    metadata: Mapping[str, str]
    created_at: str

    @classmethod
    def from_resource(cls, resource: Any) -> Volume:
        info = resource.to_dict() if hasattr(resource, "to_dict") else dict(resource)
        return cls(
            id=str(info["id"]),
            name=info.get("name"),
            status=str(info.get("status", "")),
            size=int(info.get("size") or 0),
            metadata={str(k): str(v) for k, v in (info.get("metadata") or {}).items()},
            created_at=str(info.get("created_at") or ""),
        )


def translate(exc: BaseException, *, action: str) -> errors.StoreError:
    """A cinderclient or keystoneauth error as one of ours (the caller chains it)."""
    if isinstance(exc, errors.StoreError):
        return exc
    if isinstance(exc, cinder_errors.NotFound):
        return errors.NotFound(f"{action}: not found ({exc})")
    if isinstance(exc, cinder_errors.OverLimit):
        return errors.StorageFull(f"{action}: over the quota ({exc})")
    if isinstance(exc, cinder_errors.ClientException):
        code = int(getattr(exc, "code", 0) or 0)
        if code in (401, 403):
            return errors.WriteDenied(f"{action}: refused by Cinder ({exc})")
        if code == 413:
            return errors.StorageFull(f"{action}: {exc}")
        if code >= 500:
            return errors.RemoteUnavailable(f"{action}: Cinder failed ({exc})")
        return errors.BackendError(f"{action}: {exc}")
    if isinstance(exc, ks_errors.Unauthorized | ks_errors.AuthorizationFailure):
        return errors.ConfigurationError(f"{action}: Keystone refused the credentials ({exc})")
    if isinstance(exc, ks_errors.EndpointNotFound | ks_errors.CatalogException):
        return errors.ConfigurationError(f"{action}: no Cinder endpoint in the catalog ({exc})")
    if isinstance(exc, ks_errors.ConnectionError):
        return errors.RemoteUnavailable(f"{action}: cannot reach the API ({exc})")
    if isinstance(exc, ks_errors.ClientException):
        return errors.BackendError(f"{action}: {exc}")
    return errors.BackendError(f"{action}: {type(exc).__name__}: {exc}")


def is_transitional_conflict(exc: BaseException) -> bool:
    """A 400 Cinder returns while the volume is between two states (glance retries these)."""
    if not isinstance(exc, cinder_errors.BadRequest):
        return False
    text = str(exc).lower()
    return "status" in text and any(
        state in text for state in ("attaching", "detaching", "reserved", "in-use", "extending")
    )


class VolumeApi:
    """One backend's Cinder client."""

    def __init__(self, settings: options.CinderOptions) -> None:
        self._settings = settings
        self._session = _session(settings)
        service_type, service_name, interface = settings.catalog
        endpoint = None
        if settings.cinder_endpoint_template is not None:
            endpoint = _endpoint_from_template(settings, self._session)
        self._client = cinder_client.Client(
            session=self._session,
            api_version=api_versions.APIVersion(MICROVERSION),
            service_type=service_type,
            service_name=service_name,
            endpoint_type=interface,
            region_name=settings.cinder_os_region_name,
            os_endpoint=endpoint,
            retries=settings.cinder_http_retries,
            connect_retries=settings.cinder_http_retries,
        )

    # ----------------------------------------------------------------- volumes

    def create(
        self, *, name: str, size: int, metadata: Mapping[str, str], volume_type: str | None
    ) -> Volume:
        resource = self._client.volumes.create(
            size=size, name=name, metadata=dict(metadata), volume_type=volume_type
        )
        return Volume.from_resource(resource)

    def get(self, volume_id: str) -> Volume:
        return Volume.from_resource(self._client.volumes.get(volume_id))

    def find(self, name: str) -> list[Volume]:
        resources = self._client.volumes.list(detailed=True, search_opts={"name": name})
        return [Volume.from_resource(r) for r in resources if r.name == name]

    def probe(self) -> None:
        """One authenticated request: the credentials, the catalog and the endpoint work."""
        self._client.volumes.list(detailed=False, limit=1)

    def set_metadata(self, volume_id: str, metadata: Mapping[str, str]) -> None:
        self._client.volumes.set_metadata(volume_id, dict(metadata))

    def extend(self, volume_id: str, size: int) -> None:
        self._client.volumes.extend(volume_id, size)

    def set_read_only(self, volume_id: str) -> None:
        self._client.volumes.update_readonly_flag(volume_id, True)

    def delete(self, volume_id: str) -> None:
        self._client.volumes.delete(volume_id)

    # ----------------------------------------------------------------- attachments

    def attachment_create(self, volume_id: str, *, mode: str) -> str:
        attachment = self._client.attachments.create(volume_id, None, mode=mode)
        return str(attachment["id"])

    def attachment_update(self, attachment_id: str, connector: Mapping[str, Any]) -> dict[str, Any]:
        properties = {**connector, "mountpoint": ATTACH_MOUNTPOINT}
        attachment = self._client.attachments.update(attachment_id, properties)
        info = attachment.to_dict()
        connection_info = info.get("connection_info")
        if not isinstance(connection_info, dict) or "driver_volume_type" not in connection_info:
            raise errors.BackendError(
                f"attachment {attachment_id} came back without connection information"
            )
        return connection_info

    def attachment_complete(self, attachment_id: str) -> None:
        self._client.attachments.complete(attachment_id)

    def attachment_delete(self, attachment_id: str) -> None:
        self._client.attachments.delete(attachment_id)


def _session(settings: options.CinderOptions) -> ks_session.Session:
    verify: bool | str = not settings.cinder_api_insecure
    if verify and settings.cinder_ca_certificates_file is not None:
        verify = settings.cinder_ca_certificates_file
    auth: Any
    auth_url = settings.cinder_store_auth_address or ""
    if settings.cinder_store_token is not None:
        auth = token_endpoint.Token(
            settings.cinder_endpoint_template, settings.cinder_store_token.get_secret_value()
        )
    elif settings.cinder_store_application_credential_id is not None:
        secret = settings.cinder_store_application_credential_secret
        assert secret is not None  # options checked it
        auth = ks_v3.ApplicationCredential(
            auth_url=auth_url,
            application_credential_id=settings.cinder_store_application_credential_id,
            application_credential_secret=secret.get_secret_value(),
        )
    else:
        password = settings.cinder_store_password
        assert password is not None  # options checked it
        auth = ks_v3.Password(
            auth_url=auth_url,
            username=settings.cinder_store_user_name,
            password=password.get_secret_value(),
            user_domain_name=settings.cinder_store_user_domain_name,
            project_name=settings.cinder_store_project_name,
            project_domain_name=settings.cinder_store_project_domain_name,
        )
    return ks_session.Session(auth=auth, verify=verify)


def _endpoint_from_template(settings: options.CinderOptions, session: ks_session.Session) -> str:
    """glance's ``cinder_endpoint_template``: ``%(project_id)s`` is the service project."""
    template = settings.cinder_endpoint_template
    assert template is not None
    if "%(" not in template:
        return template
    if settings.cinder_store_token is not None:
        raise errors.ConfigurationError(
            "cinder_endpoint_template has placeholders, but with cinder_store_token there is "
            "no project to fill them in"
        )
    try:
        project_id = session.get_project_id()
    except Exception as exc:
        raise translate(exc, action="cannot authenticate the Cinder service user") from exc
    return template % {"project_id": project_id, "tenant": project_id}
