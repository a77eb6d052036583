"""The cinder driver's options: glance_store 5.7.0's 22 cinder options, plus a few of ours.

Every glance option is accepted under its own name and default so an existing
``glance-api.conf`` section works unchanged. Secrets (``cinder_store_password``,
``cinder_store_application_credential_secret`` and our ``cinder_store_token``) are
``pydantic.SecretStr``: they never show in a ``repr``, a log line or a validation error.

Options that have no effect here are accepted and documented as inert:

* ``rootwrap_config``: os-brick runs in-process (``set_client_mode(False)``), so there is no
  rootwrap; nothing else is run as root (no ``chown`` of the device, as glance did).
* ``cinder_mount_point_base``: only the NFS connector mounts, and it is not supported here.
* ``cinder_do_extend_attached``: volumes are always extended offline (detach, extend,
  re-attach), because the LOCAL and RBD connectors have no online ``extend_volume``.

Authentication, as glance: the service user (``cinder_store_auth_address`` plus user name and
password, or an application credential) with the endpoint from the catalog
(``cinder_catalog_info``) or from ``cinder_endpoint_template``. glance's other mode, the
request's own token, has no equivalent in a sidecar without a request context; our
``cinder_store_token`` (a fixed token) together with ``cinder_endpoint_template`` takes its place.

Ours:

* ``cinder_lock_path``: the directory of os-brick's file locks (oslo.concurrency's
  ``lock_path``; glance reads it from ``[oslo_concurrency]``).
* ``cinder_my_ip``: the address put into the connector properties (glance uses its ``my_ip``).
* ``cinder_volume_size_unit``: bytes per unit of a volume's size. Cinder sizes are GiB, the
  default; **only tests** set it lower (1 MiB) so that extending an unknown-size image can
  be exercised with megabytes instead of gigabytes.
* ``cinder_state_poll_interval``: the first wait between two status polls, in seconds; it
  doubles up to 15 s (glance: 0.5 s doubling to 15 s).
* ``cinder_writes_in_flight``: device writes of one upload running at once on threads.
* ``cinder_thread_pool_size``: threads for this backend's blocking calls (cinderclient,
  os-brick, device I/O).
"""

from __future__ import annotations

import pydantic

from kglance.drivers import base

GiB = 1024**3


class CinderOptions(base.DriverOptions):
    # --- where the API is
    cinder_catalog_info: str = "volumev3::publicURL"
    cinder_endpoint_template: str | None = None
    cinder_os_region_name: str | None = None
    cinder_ca_certificates_file: str | None = None
    cinder_http_retries: int = pydantic.Field(default=3, ge=0)
    cinder_state_transition_timeout: int = pydantic.Field(default=300, ge=1)
    cinder_api_insecure: bool = False

    # --- the service user
    cinder_store_auth_address: str | None = None
    cinder_store_user_name: str | None = None
    cinder_store_user_domain_name: str = "Default"
    cinder_store_password: pydantic.SecretStr | None = None
    cinder_store_application_credential_id: str | None = None
    cinder_store_application_credential_secret: pydantic.SecretStr | None = None
    cinder_store_project_name: str | None = None
    cinder_store_project_domain_name: str = "Default"

    # --- placement and attachment
    rootwrap_config: str = "/etc/glance/rootwrap.conf"  # inert: no rootwrap here
    cinder_volume_type: str | None = None
    cinder_enforce_multipath: bool = False
    cinder_use_multipath: bool = False
    cinder_mount_point_base: str = "/var/lib/glance/mnt"  # inert: no NFS connector
    cinder_do_extend_attached: bool = False  # inert: extends are offline
    cinder_attachment_retry_attempts: int = pydantic.Field(default=5, ge=1)

    # --- kglance's own
    cinder_store_token: pydantic.SecretStr | None = None
    cinder_lock_path: str | None = None
    cinder_my_ip: str = "127.0.0.1"
    cinder_volume_size_unit: int = pydantic.Field(default=GiB, ge=4096)  # tests only
    cinder_state_poll_interval: float = pydantic.Field(default=0.5, gt=0, le=15)
    cinder_writes_in_flight: int = pydantic.Field(default=4, ge=1, le=64)
    cinder_thread_pool_size: int = pydantic.Field(default=16, ge=4, le=256)

    @pydantic.field_validator(
        "cinder_endpoint_template",
        "cinder_os_region_name",
        "cinder_ca_certificates_file",
        "cinder_store_auth_address",
        "cinder_store_user_name",
        "cinder_store_application_credential_id",
        "cinder_store_project_name",
        "cinder_volume_type",
        "cinder_lock_path",
    )
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return value.strip()

    @pydantic.field_validator(
        "cinder_store_password", "cinder_store_application_credential_secret", "cinder_store_token"
    )
    @classmethod
    def _empty_secret_is_unset(cls, value: pydantic.SecretStr | None) -> pydantic.SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        return value

    @pydantic.field_validator("cinder_catalog_info")
    @classmethod
    def _check_catalog_info(cls, value: str) -> str:
        parts = value.split(":")
        if len(parts) != 3 or not parts[0] or not parts[2]:
            raise ValueError(
                "cinder_catalog_info must be <service_type>:<service_name>:<interface>"
            )
        return value

    @pydantic.model_validator(mode="after")
    def _check_credentials(self) -> CinderOptions:
        if self.cinder_store_token is not None and self.cinder_endpoint_template is None:
            raise ValueError("cinder_store_token needs cinder_endpoint_template")
        if self.cinder_store_token is None and self.cinder_store_auth_address is None:
            raise ValueError(
                "set cinder_store_auth_address with the service user's credentials "
                "(or cinder_endpoint_template with cinder_store_token)"
            )
        if self.cinder_store_auth_address is not None and self.cinder_store_token is None:
            app = self.cinder_store_application_credential_id
            if app is not None:
                if self.cinder_store_application_credential_secret is None:
                    raise ValueError("cinder_store_application_credential_id needs its secret")
            elif (
                self.cinder_store_user_name is None
                or self.cinder_store_password is None
                or self.cinder_store_project_name is None
            ):
                raise ValueError(
                    "cinder_store_auth_address needs cinder_store_user_name, "
                    "cinder_store_password and cinder_store_project_name "
                    "(or an application credential)"
                )
        return self

    @property
    def catalog(self) -> tuple[str, str | None, str]:
        """``(service_type, service_name or None, interface)`` from ``cinder_catalog_info``."""
        service_type, service_name, interface = self.cinder_catalog_info.split(":")
        return service_type, service_name or None, interface.removesuffix("URL")
