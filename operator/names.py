"""Names shared by the CRDs, the operator, the webhook, the sidecar and the chart.

The operator's parts are written separately and meet only through the Kubernetes API: a
label spelled one way in the handlers and another in the chart, or a mount path that differs
between the webhook and the rendered config, fails only in a cluster. Every such name lives
here once, so the parts cannot disagree.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

GROUP: Final = "kglance.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

STOREBACKENDS: Final = "storebackends"
IMAGELOCATIONS: Final = "imagelocations"
STOREBACKEND_KIND: Final = "StoreBackend"
IMAGELOCATION_KIND: Final = "ImageLocation"

# Held on an ImageLocation with reclaimPolicy Delete until the image bytes are gone.
FINALIZER: Final = "kglance.io/delete-bytes"

# The per-namespace Secret the operator renders and the sidecars mount.
CONFIG_SECRET: Final = "kglance-sidecar-config"
CONFIG_KEY: Final = "glance-store.conf"

INJECT_ANNOTATION: Final = "kglance.io/inject"
INJECTED_ANNOTATION: Final = "kglance.io/injected"

SIDECAR_CONFIG_DIR: Final = "/etc/kglance"
SOCKET_DIR: Final = "/run/kglance"
SOCKET_PATH: Final = f"{SOCKET_DIR}/kglance.sock"
# A file backend named <name> is mounted into the sidecar at <SIDECAR_VOLUME_ROOT>/<name>.
SIDECAR_VOLUME_ROOT: Final = "/var/lib/kglance/volumes"

WEBHOOK_PATH: Final = "/inject"

MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "kglance-operator"
# Read-only: copy it (dict(LABELS)) before merging it into a body.
LABELS: Final[Mapping[str, str]] = MappingProxyType({MANAGED_BY_LABEL: MANAGED_BY})
