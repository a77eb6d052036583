"""The operator's kopf handlers, registered on a registry made per operator (no global state).

``make_registry`` is the whole operator as kopf sees it: StoreBackend reconciliation and
probing, the indexes that map a Secret or ConfigMap to the backends that reference it (so a
rotation re-renders the namespace as soon as the Secret's watch event arrives) and a backend to
the ImageLocations that still use it (so its deletion waits for them), the ImageLocation
handlers and the sidecar-injection webhook. Handlers are thin: they find what changed, call
``storebackends.StoreBackends`` and let ``failures`` decide what kopf does with an error.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from kglance.drivers import registry as driver_registry
from kglance.operator import failures, imagelocations, kube, names, storebackends
from kglance.operator.settings import OperatorSettings

SECRET_USERS = "kglance_secret_users"  # (namespace, Secret name) -> backends referencing it
CONFIG_MAP_USERS = "kglance_config_map_users"  # (namespace, ConfigMap name) -> backends
BACKEND_USERS = "kglance_backend_users"  # (namespace, backend name) -> ImageLocations
STOREBACKEND = (names.GROUP, names.VERSION, names.STOREBACKENDS)
PROBE_CANCELLATION = 1.0  # seconds a probe may go on once its backend or the operator stops
IMAGELOCATION = (names.GROUP, names.VERSION, names.IMAGELOCATIONS)

logger = logging.getLogger(__name__)


def _users(index: Any, key: tuple[str, str]) -> list[str]:
    return sorted(set(index.get(key, ())))


def make_registry(
    settings: OperatorSettings,
    *,
    login: kube.Login = kube.default_login,
    drivers: driver_registry.Registry | None = None,
) -> kopf.OperatorRegistry:
    """Every handler of the operator on a new registry; ``login`` says how to reach the API."""
    registry = kopf.OperatorRegistry()
    api = kube.Api(login=login)
    controller = storebackends.StoreBackends(
        settings=settings, api=api, drivers=drivers or driver_registry.Registry.discover()
    )

    @kopf.on.login(registry=registry)
    def log_in(**_: Any) -> kopf.ConnectionInfo | None:
        return login()

    @kopf.on.cleanup(registry=registry)
    async def close(**_: Any) -> None:
        await controller.aclose()
        await api.aclose()

    _register_indexes(registry)
    _register_storebackends(registry, controller=controller, settings=settings)
    _register_references(registry, controller=controller)
    imagelocations.register(
        registry, settings=settings, backends_for=controller.backends_for, api=api
    )
    if settings.webhook:  # kopf refuses webhook handlers without a webhook server
        _register_injection(registry, settings=settings)
    return registry


def _register_injection(registry: kopf.OperatorRegistry, *, settings: OperatorSettings) -> None:
    # imported by name until operator/injection.py is committed alongside (it is written in
    # parallel); then this becomes a plain import at the top
    if importlib.util.find_spec("kglance.operator.injection") is None:
        logger.warning("kglance.operator.injection is not installed: no sidecar injection")
        return
    injection = importlib.import_module("kglance.operator.injection")
    injection.register(registry, settings=settings)


def _register_indexes(registry: kopf.OperatorRegistry) -> None:
    @kopf.index(*STOREBACKEND, id=SECRET_USERS, registry=registry)
    def secret_users(
        name: str, namespace: str | None, spec: Mapping[str, Any], **_: Any
    ) -> dict[tuple[str, str], str]:
        refs = storebackends.referenced(spec, storebackends.SECRET_REF)
        return {(namespace or "", secret): name for secret in refs}

    @kopf.index(*STOREBACKEND, id=CONFIG_MAP_USERS, registry=registry)
    def config_map_users(
        name: str, namespace: str | None, spec: Mapping[str, Any], **_: Any
    ) -> dict[tuple[str, str], str]:
        refs = storebackends.referenced(spec, storebackends.CONFIG_MAP_REF)
        return {(namespace or "", config_map): name for config_map in refs}

    @kopf.index(*IMAGELOCATION, id=BACKEND_USERS, registry=registry)
    def backend_users(
        name: str, namespace: str | None, spec: Mapping[str, Any], **_: Any
    ) -> dict[tuple[str, str], str]:
        backend = spec.get("backend")
        return {(namespace or "", str(backend)): name} if backend else {}


def _register_storebackends(
    registry: kopf.OperatorRegistry,
    *,
    controller: storebackends.StoreBackends,
    settings: OperatorSettings,
) -> None:
    async def reconcile(namespace: str | None, retry: int, **_: Any) -> None:
        with failures.translated(retry=retry):
            await controller.sync(namespace or "")

    for on in (kopf.on.create, kopf.on.resume, kopf.on.update):
        on(*STOREBACKEND, id="reconcile", registry=registry)(reconcile)

    @kopf.on.delete(*STOREBACKEND, id="release", registry=registry)
    async def release(
        body: kopf.Body, name: str, namespace: str | None, retry: int, **kwargs: Any
    ) -> None:
        namespace = namespace or ""
        users = _users(kwargs[BACKEND_USERS], (namespace, name))
        with failures.translated(retry=retry):
            if users:
                message = await controller.block_deletion(body, users=users)
                raise kopf.TemporaryError(message, delay=settings.retry_delay)
            await controller.sync(namespace, leaving={name})

    @kopf.daemon(
        *STOREBACKEND, id="probe", cancellation_timeout=PROBE_CANCELLATION, registry=registry
    )
    async def probe(body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any) -> None:
        # a daemon rather than a timer: kopf cancels daemons on exit, never a running timer
        while not stopped:
            if not body.meta.get("deletionTimestamp"):
                try:
                    await controller.probe(body)
                except Exception as exc:  # retried at the next interval
                    name = body.meta.get("name")
                    logger.warning("Probing StoreBackend %s failed: %s", name, exc)
            await stopped.wait(settings.probe_interval)


def _register_references(
    registry: kopf.OperatorRegistry, *, controller: storebackends.StoreBackends
) -> None:
    async def rerender(namespace: str | None, name: str, index: Any, what: str) -> None:
        if not namespace:
            return
        users = _users(index, (namespace, name))
        if not users:
            return
        logger.info("%s %s/%s changed: re-rendering for %s", what, namespace, name, users)
        try:
            await controller.sync(namespace)
        except Exception as exc:  # event handlers are not retried: the next event or resume is
            logger.warning("Re-rendering namespace %s failed: %s", namespace, exc)

    # filtered with the indexes: other Secrets' events do not even reach a handler (or the log)
    @kopf.on.event(
        "v1", "secrets", id="rotation", when=_referenced(SECRET_USERS), registry=registry
    )
    async def secret_changed(name: str, namespace: str | None, **kwargs: Any) -> None:
        await rerender(namespace, name, kwargs[SECRET_USERS], "Secret")

    @kopf.on.event(
        "v1", "configmaps", id="rotation", when=_referenced(CONFIG_MAP_USERS), registry=registry
    )
    async def config_map_changed(name: str, namespace: str | None, **kwargs: Any) -> None:
        await rerender(namespace, name, kwargs[CONFIG_MAP_USERS], "ConfigMap")


def _referenced(index_id: str) -> Callable[..., bool]:
    """A kopf ``when`` filter: the object is referenced by a StoreBackend of its namespace."""

    def when(name: str, namespace: str | None, **kwargs: Any) -> bool:
        return bool(namespace) and (namespace, name) in kwargs[index_id]

    return when
