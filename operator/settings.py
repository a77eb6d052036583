"""The operator's own settings, read once from ``KGLANCE_*`` environment variables.

The chart sets these on the operator's Deployment; nothing else configures the operator, so a
value a user sees in ``kubectl describe deployment`` is the value in force. Reading happens in
one place (``OperatorSettings.from_env``) and the result is an immutable object handed to
whoever needs it (handlers, the webhook, ``main.run``); no module reads the environment later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pydantic

from kglance.operator import names

ENV_PREFIX = "KGLANCE_"


class OperatorSettings(pydantic.BaseModel):
    """Everything the operator's behaviour depends on, with the chart's defaults."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    # namespaces served; empty: every namespace (cluster-wide watch)
    namespaces: tuple[str, ...] = ()
    # the image the webhook injects as the sidecar (the operator's own image by default)
    sidecar_image: str = "kglance:0.1.0"
    sidecar_cpu_request: str = "50m"
    sidecar_memory_request: str = "64Mi"
    sidecar_memory_limit: str = "512Mi"
    # where the operator finds file backends' volumes: <volume_root>/<namespace>/<backend>
    volume_root: str = "/var/lib/kglance/operator-volumes"
    # seconds between two reachability probes of a backend
    probe_interval: float = pydantic.Field(default=60.0, gt=0)
    # seconds before a blocked deletion (backend still in use) is tried again
    retry_delay: float = pydantic.Field(default=10.0, gt=0)
    # serve the sidecar-injection webhook (off: no admission server, no webhook handler)
    webhook: bool = True
    webhook_port: int = pydantic.Field(default=9443, gt=0, lt=65536)
    webhook_cert_dir: str = "/etc/kglance/webhook-certs"
    # the kopf peering object that keeps two replicas from both acting
    peering: str = "kglance"
    # no peering at all: for a single replica, or RBAC without kopf's peering resources
    standalone: bool = False
    # the namespace the operator runs in (the webhook skips it)
    operator_namespace: str = "kglance-system"
    # the liveness endpoint kopf serves ("" or "off" to disable; an empty variable keeps it)
    liveness_endpoint: str = "http://0.0.0.0:8080/healthz"

    @pydantic.field_validator("namespaces", mode="before")
    @classmethod
    def _split_namespaces(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @pydantic.field_validator("liveness_endpoint", mode="before")
    @classmethod
    def _off(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("off", "none", "false"):
            return ""
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorSettings:
        """Settings from ``KGLANCE_<FIELD>`` variables; unset or empty ones keep the default."""
        env = os.environ if environ is None else environ
        values = {
            field: env[ENV_PREFIX + field.upper()]
            for field in cls.model_fields
            if env.get(ENV_PREFIX + field.upper(), "").strip()
        }
        return cls.model_validate(values)

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    def operator_volume_root(self, namespace: str) -> str:
        """The operator's own volume root for one namespace's file backends."""
        return os.path.join(self.volume_root, namespace)

    @property
    def sidecar_volume_root(self) -> str:
        return names.SIDECAR_VOLUME_ROOT
