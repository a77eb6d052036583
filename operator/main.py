"""``kglance operator``: run kopf with settings chosen from what kopf's users have hit.

* Watches time out on both ends (``server_timeout`` < ``client_timeout``) and reconnect: a
  watch that silently stops delivering events is the most reported kopf problem, and a bounded
  watch turns it into a reconnect within minutes.
* Progress and the last-handled spec are kept in annotations under ``kglance.io/``, not in
  ``status``, so our status stays ours and the CRD's status schema need not allow kopf's keys.
* The finalizer is ``names.FINALIZER`` on both kinds, so ``kubectl get -o yaml`` tells users
  which operator holds an object.
* Peering (``settings.peering``) lets a second replica stand by; ``standalone`` skips it.
* kopf posts Kubernetes Events only for what handlers post explicitly (``kopf.info``/``warn``
  with reasons a user can act on), not for every log line.
* A liveness endpoint lets the kubelet restart an operator whose event loop hangs.
"""

from __future__ import annotations

import asyncio
import os

import kopf

from kglance.operator import handlers, names
from kglance.operator.settings import OperatorSettings

WATCH_SERVER_TIMEOUT = 270  # seconds the API server keeps a watch open
WATCH_CLIENT_TIMEOUT = 300  # seconds before the client gives up on a silent watch
CONNECT_TIMEOUT = 30
REQUEST_TIMEOUT = 120


def kopf_settings(settings: OperatorSettings) -> kopf.OperatorSettings:
    tuned = kopf.OperatorSettings()
    tuned.watching.server_timeout = WATCH_SERVER_TIMEOUT
    tuned.watching.client_timeout = WATCH_CLIENT_TIMEOUT
    tuned.watching.connect_timeout = CONNECT_TIMEOUT
    tuned.watching.reconnect_backoff = 1.0
    tuned.networking.connect_timeout = CONNECT_TIMEOUT
    tuned.networking.request_timeout = REQUEST_TIMEOUT
    tuned.persistence.finalizer = names.FINALIZER
    tuned.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.GROUP)
    tuned.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.GROUP, key="last-handled-configuration"
    )
    tuned.posting.enabled = True
    tuned.posting.loggers = False  # events only from kopf.info/warn, never from log lines
    tuned.posting.reporting_component = names.MANAGED_BY
    tuned.posting.reporting_instance = os.environ.get("HOSTNAME", "kglance-operator")
    tuned.peering.name = settings.peering
    tuned.peering.standalone = settings.standalone
    tuned.peering.mandatory = not settings.standalone  # the chart ships kopf's peering CRDs
    tuned.peering.clusterwide = settings.clusterwide
    if settings.webhook:
        tuned.admission.server = kopf.WebhookServer(
            addr="0.0.0.0",
            port=settings.webhook_port,
            certfile=os.path.join(settings.webhook_cert_dir, "tls.crt"),
            pkeyfile=os.path.join(settings.webhook_cert_dir, "tls.key"),
        )
    return tuned


async def serve(settings: OperatorSettings, *, stop: asyncio.Event | None = None) -> None:
    await kopf.operator(
        registry=handlers.make_registry(settings),
        settings=kopf_settings(settings),
        standalone=settings.standalone,
        # kopf makes peering mandatory when it is given a name: it would pause every watch
        # of a standalone operator, waiting for a peering CRD it never uses
        peering_name=None if settings.standalone else settings.peering,
        clusterwide=settings.clusterwide,
        namespaces=list(settings.namespaces),
        liveness_endpoint=settings.liveness_endpoint or None,
        stop_flag=stop,
    )


def run(settings: OperatorSettings) -> int:
    """Run until SIGTERM/SIGINT; the exit status for the command line."""
    kopf.configure(verbose=False)
    asyncio.run(serve(settings))
    return 0
