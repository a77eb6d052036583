"""The ImageLocation handlers: copy, verify, share and reclaim an image's bytes.

An ImageLocation is a claim on bytes in a backend, the way a PersistentVolume is a claim on a
disk, so its lifecycle follows what platform teams know from volumes:

* ``Pending`` until its backend is configured (and, for a copy, until the source is
  ``Available``), ``Copying`` while bytes stream from the source's backend (progress in status,
  patched at most every ``Timing.progress_interval``), ``Available`` once the bytes are verified,
  ``Failed`` when a copy failed or a verification found the bytes missing or of another size,
  ``Deleting`` while the finalizer reclaims them.
* The finalizer is kopf's, named ``names.FINALIZER`` by the operator's settings; it is held by
  the ``reclaim`` handler below (and by the verification timer). With ``reclaimPolicy: Delete``
  the bytes are deleted through the drivers (a missing object is success); with ``Retain`` they
  stay and an event says where. Bytes another live ImageLocation of the namespace still records
  are never deleted.
* A deletion that fails keeps the object with a ``Reclaimed`` condition and is retried:
  in-use, has-snapshot and outages for as long as they last, since the bytes exist and giving
  up would orphan them silently. A backend that is gone (its StoreBackend deleted or broken) is
  retried for ``Timing.release_after`` seconds after the deletion began, then the object is
  released with a ``BytesLeftBehind`` warning event naming the location, so deleting a
  namespace never hangs forever (``imagebytes.reclaim_verdict`` holds the rule).
* A copy is Glance's copy-image: streamed through the drivers with the pipeline's checks, all or
  nothing at the target, repeatable after an operator restart without storing twice
  (``copying``). Its result (location, size, digests) is recorded in status, the source's
  record being the contract it had to meet.
* Verification runs on create/resume/spec change and then every ``Timing.verify_interval``
  seconds: a size query (HEAD/stat), never a read.

Everything here talks to storage through ``Backends`` the caller provides per namespace (the
operator's in-process drivers, rendered from the namespace's StoreBackends), so the handlers
neither know driver types nor hold credentials.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any, Literal

import aiohttp
import kopf
import pydantic

from kglance.drivers import backends, errors, locations
from kglance.operator import conditions, copying, failures, imagebytes, kube, names, spec
from kglance.operator.settings import OperatorSettings

BackendsFor = Callable[[str], Awaitable[backends.Backends]]
Phase = Literal["Pending", "Copying", "Available", "Deleting", "Failed"]

RECORDS_INDEX = "kglance_imagelocation_records"  # kopf passes the index under this kwarg

# copy failures no retry can fix: the source's record and its bytes disagree, the target
# holds other bytes, or the request itself is wrong
_FINAL_COPY_ERRORS = (
    errors.ChecksumMismatch,
    errors.InvalidRequest,
    errors.AlreadyExists,
    errors.Unsupported,
    errors.NotFound,
)


@dataclasses.dataclass(frozen=True, slots=True)
class Timing:
    """How often the handlers act; the operator's settings or a test choose."""

    verify_interval: float = 600.0  # seconds between two verifications of an image
    retry_delay: float = 30.0  # before retrying what could not proceed (deletion, copy, ACLs)
    release_after: float = imagebytes.RELEASE_AFTER  # see the module docstring
    progress_interval: float = copying.PROGRESS_INTERVAL

    @classmethod
    def from_settings(cls, settings: OperatorSettings) -> Timing:
        """Retries as the rest of the operator; an image is verified every ten backend probes.

        (A verification is one HEAD or stat per image: with thousands of images, verifying at
        the probe interval would cost more than probing the backends themselves.)
        """
        return cls(retry_delay=settings.retry_delay, verify_interval=10 * settings.probe_interval)


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    """What an ImageLocation says about its image: spec, completed by what status recorded."""

    namespace: str
    name: str
    image_id: str
    backend: str
    location: str | None  # where the bytes are (spec.location, or where a copy wrote them)
    size: int | None
    checksum: str | None
    os_hash_algo: str | None
    os_hash_value: str | None
    reclaim_policy: str
    source: str | None
    acls: imagebytes.Acls | None
    phase: str | None
    deleting: bool

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Record:
        meta = body.get("metadata") or {}
        spec = body.get("spec") or {}
        status = body.get("status") or {}

        def recorded(field: str) -> Any:
            value = spec.get(field)
            return status.get(field) if value is None else value

        source = spec.get("source") or {}
        acls = spec.get("acls")
        size = recorded("size")
        return cls(
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            image_id=str(spec.get("imageId") or ""),
            backend=str(spec.get("backend") or ""),
            # what the user (or the sidecar) recorded wins over where a copy wrote
            location=spec.get("location") or status.get("location") or None,
            size=None if size is None else int(size),
            checksum=recorded("checksum") or None,
            os_hash_algo=recorded("osHashAlgo") or None,
            os_hash_value=recorded("osHashValue") or None,
            reclaim_policy=str(spec.get("reclaimPolicy") or "Delete"),
            source=source.get("name") or None,
            acls=None if acls is None else _acls(acls),
            phase=status.get("phase"),
            deleting=meta.get("deletionTimestamp") is not None,
        )

    @property
    def copied(self) -> bool:
        """A copy whose bytes are in place (an ImageLocation with a source and a location)."""
        return self.source is not None and self.location is not None

    @property
    def shown_location(self) -> str:
        """The location for messages and events: any ``user:password@`` part hidden."""
        return "(none)" if self.location is None else locations.redact(self.location)

    def parsed_location(self) -> locations.Location:
        if self.location is None:
            raise errors.InvalidLocation(f"ImageLocation {self.name} records no location yet")
        return locations.parse(self.location)


def _acls(spec: Mapping[str, Any]) -> imagebytes.Acls:
    return imagebytes.Acls(
        public=bool(spec.get("public", False)),
        read_tenants=tuple(str(t) for t in spec.get("readTenants") or ()),
        write_tenants=tuple(str(t) for t in spec.get("writeTenants") or ()),
    )


# ---------------------------------------------------------------------- status


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _timestamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class StatusUpdate:
    """The status changes of one handler run, merged over what the object already says.

    kopf hands every handler of one processing cycle the same ``patch``; conditions are a list
    a merge patch replaces whole, so each change starts from what the patch already holds.
    """

    def __init__(self, body: Mapping[str, Any], patch: kopf.Patch) -> None:
        self._body = body
        self._patch = patch
        meta = body.get("metadata") or {}
        generation = meta.get("generation")
        self.generation = None if generation is None else int(generation)

    @property
    def fields(self) -> MutableMapping[str, Any]:
        return self._patch.status

    def _conditions(self) -> list[Mapping[str, Any]]:
        if "conditions" in self.fields:
            return list(self.fields["conditions"])
        return list((self._body.get("status") or {}).get("conditions") or [])

    def condition(self, type_: str, status: conditions.Status, reason: str, message: str) -> None:
        self.fields["conditions"] = conditions.merge(
            self._conditions(),
            [conditions.Condition(type_, status, reason, message)],
            generation=self.generation,
        )

    def phase(self, phase: Phase, *, reason: str, message: str) -> None:
        """Set the phase and the ``Ready`` condition that summarises it."""
        self.fields["phase"] = phase
        ready: conditions.Status = "True" if phase == "Available" else "False"
        self.condition("Ready", ready, reason, message)
        if self.generation is not None:
            self.fields["observedGeneration"] = self.generation


# ---------------------------------------------------------------------- handlers


def _deleted_for(meta: Mapping[str, Any], *, now: datetime.datetime) -> float:
    """Seconds since the object was marked for deletion (0 when it is not)."""
    stamp = meta.get("deletionTimestamp")
    if not stamp:
        return 0.0
    try:
        since = datetime.datetime.fromisoformat(str(stamp))
    except ValueError:
        return 0.0
    if since.tzinfo is None:
        since = since.replace(tzinfo=datetime.UTC)
    return max(0.0, (now - since).total_seconds())


def _namespace_records(index: Any, namespace: str) -> list[Record]:
    """The records of the namespace's ImageLocations from the kopf index."""
    store = index.get(namespace) if index is not None else None
    return list(store or ())


class ImageLocationHandlers:
    """The handlers' shared dependencies; ``register`` binds its methods into a kopf registry."""

    def __init__(self, *, backends_for: BackendsFor, api: kube.Api, timing: Timing) -> None:
        self._backends_for = backends_for
        self._api = api
        self.timing = timing

    async def _backend(self, namespace: str, backend_id: str) -> backends.Backend:
        return (await self._backends_for(namespace)).get(backend_id)

    # ------------------------------------------------------------------ index

    @staticmethod
    def index(body: kopf.Body, **_: Any) -> dict[str, Record]:
        record = Record.of(body)
        return {record.namespace: record}

    # ------------------------------------------------------------------ create/resume/update

    async def reconcile(
        self,
        *,
        body: kopf.Body,
        patch: kopf.Patch,
        logger: Any,
        **kwargs: Any,
    ) -> None:
        """Bring the bytes in place (copy) and verify them."""
        with failures.translated(retry=int(kwargs.get("retry") or 0)):
            await self._reconcile(body=body, patch=patch, logger=logger, **kwargs)

    async def _reconcile(
        self, *, body: kopf.Body, patch: kopf.Patch, logger: Any, **kwargs: Any
    ) -> None:
        update = StatusUpdate(body, patch)
        problem = spec_problem(body)
        if problem is not None:
            update.phase("Failed", reason="InvalidSpec", message=problem)
            raise kopf.PermanentError(problem)
        record = Record.of(body)
        if record.source is not None and record.location is None:
            if _copy_failed_for_good(body, update.generation):
                return  # a final copy failure stays until the spec changes
            sources = _namespace_records(kwargs.get(RECORDS_INDEX), record.namespace)
            record = await self._copy(
                record, sources=sources, body=body, update=update, logger=logger
            )
        await self._verify(record, update=update, logger=logger)

    async def _copy(
        self,
        record: Record,
        *,
        sources: Sequence[Record],
        body: kopf.Body,
        update: StatusUpdate,
        logger: Any,
    ) -> Record:
        source = next((r for r in sources if r.name == record.source), None)
        if source is None or source.location is None or source.phase != "Available":
            state = "does not exist" if source is None else f"is {source.phase or 'Pending'}"
            message = f"waiting for the source ImageLocation {record.source} (it {state})"
            update.condition("Copied", "False", "SourceNotAvailable", message)
            update.phase("Pending", reason="SourceNotAvailable", message=message)
            raise kopf.TemporaryError(message, delay=self.timing.retry_delay)
        try:
            target = await self._backend(record.namespace, record.backend)
            origin = await self._backend(record.namespace, source.backend)
        except errors.UnknownBackend as exc:
            message = f"{exc.message}: the StoreBackend is missing or not ready"
            update.condition("Copied", "False", "UnknownBackend", message)
            update.phase("Pending", reason="UnknownBackend", message=message)
            raise kopf.TemporaryError(message, delay=self.timing.retry_delay) from exc

        status_path = kube.custom_path(
            names.GROUP,
            names.VERSION,
            names.IMAGELOCATIONS,
            namespace=record.namespace,
            name=record.name,
            subresource="status",
        )
        describe = f"from ImageLocation {source.name} (backend {source.backend})"

        async def report(progress: copying.Progress) -> None:
            # mid-handler: kopf applies the handler's patch only when it returns. A failed
            # progress report must not abort a copy that is going well.
            shown = {"status": {"phase": "Copying", "progress": progress.as_status()}}
            try:
                await self._api.patch(status_path, shown)
            except (kube.ApiError, aiohttp.ClientError, TimeoutError) as exc:
                logger.warning(f"progress of the copy not reported: {exc}")

        try:
            result = await copying.copy_image(
                copying.SourceImage(
                    backend=origin,
                    location=source.parsed_location(),
                    size=source.size,
                    checksum=source.checksum,
                    os_hash_algo=source.os_hash_algo,
                    os_hash_value=source.os_hash_value,
                ),
                target=target,
                image_id=record.image_id,
                report=report,
                interval=self.timing.progress_interval,
            )
        except errors.StoreError as exc:
            reason = imagebytes.reason_of(exc)
            message = f"copy {describe} failed: {exc.message}"
            update.condition("Copied", "False", reason, message)
            update.phase("Failed", reason=reason, message=message)
            kopf.warn(body, reason="CopyFailed", message=message)
            if isinstance(exc, _FINAL_COPY_ERRORS):
                raise kopf.PermanentError(message) from exc
            raise kopf.TemporaryError(message, delay=self.timing.retry_delay) from exc

        location = result.location.uri()
        update.fields.update(
            {
                "location": location,
                "size": result.size,
                "checksum": result.checksum,
                "osHashAlgo": result.os_hash_algo,
                "osHashValue": result.os_hash_value,
                "progress": copying.Progress(result.size, result.size).as_status(),
            }
        )
        message = f"copied {result.size} bytes {describe} to {location}"
        update.condition("Copied", "True", "Copied", message)
        kopf.info(body, reason="Copied", message=message)
        return dataclasses.replace(
            record,
            location=location,
            size=result.size if record.size is None else record.size,
            checksum=record.checksum or result.checksum,
            os_hash_algo=record.os_hash_algo or result.os_hash_algo,
            os_hash_value=record.os_hash_value or result.os_hash_value,
        )

    async def _verify(self, record: Record, *, update: StatusUpdate, logger: Any) -> None:
        if record.location is None:
            message = "no location: set spec.location or spec.source"
            update.condition("Verified", "False", "NoLocation", message)
            update.phase("Failed", reason="NoLocation", message=message)
            raise kopf.PermanentError(message)
        try:
            backend = await self._backend(record.namespace, record.backend)
            location = record.parsed_location()
        except errors.UnknownBackend as exc:
            message = f"{exc.message}: the StoreBackend is missing or not ready"
            update.condition("Verified", "Unknown", "UnknownBackend", message)
            if record.phase not in ("Available", "Failed"):
                update.phase("Pending", reason="UnknownBackend", message=message)
            raise kopf.TemporaryError(message, delay=self.timing.retry_delay) from exc
        except errors.InvalidLocation as exc:
            update.condition("Verified", "False", "InvalidLocation", exc.message)
            update.phase("Failed", reason="InvalidLocation", message=exc.message)
            raise kopf.PermanentError(exc.message) from exc
        outcome = await imagebytes.verify(backend, location, expected_size=record.size)
        update.condition("Verified", outcome.status, outcome.reason, outcome.message)
        if outcome.status == "Unknown":
            logger.warning(f"cannot verify {location}: {outcome.message}")
            if record.phase not in ("Available", "Failed"):
                update.phase("Pending", reason=outcome.reason, message=outcome.message)
            return
        update.fields["location"] = record.location
        update.fields["lastVerified"] = _timestamp(_now())
        if outcome.status == "True":
            update.phase("Available", reason="Verified", message=outcome.message)
        else:
            update.phase("Failed", reason=outcome.reason, message=outcome.message)

    # ------------------------------------------------------------------ timer

    async def reverify(self, *, body: kopf.Body, patch: kopf.Patch, logger: Any, **_: Any) -> None:
        record = Record.of(body)
        if record.deleting or record.location is None or spec_problem(body) is not None:
            return
        update = StatusUpdate(body, patch)
        try:
            await self._verify(record, update=update, logger=logger)
        except (kopf.TemporaryError, kopf.PermanentError) as exc:
            logger.warning(f"verification: {exc}")  # the conditions say it; the timer goes on

    # ------------------------------------------------------------------ ACLs

    async def acls(self, *, body: kopf.Body, patch: kopf.Patch, **kwargs: Any) -> None:
        with failures.translated(retry=int(kwargs.get("retry") or 0)):
            await self._acls(body=body, patch=patch)

    async def _acls(self, *, body: kopf.Body, patch: kopf.Patch) -> None:
        record = Record.of(body)
        if record.acls is None or record.deleting:
            return
        update = StatusUpdate(body, patch)
        if record.location is None:
            message = "waiting for the bytes before setting ACLs"
            update.condition("AclsApplied", "Unknown", "NoLocation", message)
            raise kopf.TemporaryError(message, delay=self.timing.retry_delay)
        try:
            backend = await self._backend(record.namespace, record.backend)
            location = record.parsed_location()
        except errors.StoreError as exc:
            reason = imagebytes.reason_of(exc)
            update.condition("AclsApplied", "Unknown", reason, exc.message)
            raise kopf.TemporaryError(exc.message, delay=self.timing.retry_delay) from exc
        outcome = await imagebytes.apply_acls(backend, location, record.acls)
        update.condition("AclsApplied", outcome.status, outcome.reason, outcome.message)
        if outcome.status == "Unknown":
            raise kopf.TemporaryError(outcome.message, delay=self.timing.retry_delay)
        if outcome.status == "False":
            kopf.warn(body, reason="AclsNotApplied", message=outcome.message)

    # ------------------------------------------------------------------ deletion

    async def _reclaiming_backend(self, record: Record) -> backends.Backend:
        """The record's backend; any failure to get it counts as the backend being unusable.

        The namespace's backends come from its StoreBackends and Secrets through the API; when
        that fails (API refusals, a rendering that cannot build), the deletion is retried, and
        released after the grace period like for a backend that is gone.
        """
        try:
            return await self._backend(record.namespace, record.backend)
        except errors.StoreError:
            raise
        except Exception as exc:
            raise errors.ConfigurationError(
                f"the backends of namespace {record.namespace} cannot be built: {exc}"
            ) from exc

    async def reclaim(
        self, *, body: kopf.Body, patch: kopf.Patch, logger: Any, **kwargs: Any
    ) -> None:
        """The finalizer: delete the bytes (Delete), keep them (Retain), never hang forever."""
        record = Record.of(body)
        if record.reclaim_policy == "Retain":
            if record.location is not None:
                message = f"reclaimPolicy is Retain: {record.shown_location} was not deleted"
                kopf.info(body, reason="Retained", message=message)
            return
        if record.location is None:
            return  # nothing was ever written for it (a copy that did not complete)
        sharing = [
            other.name
            for other in _namespace_records(kwargs.get(RECORDS_INDEX), record.namespace)
            if other.name != record.name
            and not other.deleting
            and other.backend == record.backend
            and other.location == record.location
        ]
        if sharing:
            kopf.info(
                body,
                reason="Retained",
                message=f"bytes at {record.shown_location} kept: ImageLocation "
                f"{', '.join(sorted(sharing))} records them too",
            )
            return
        update = StatusUpdate(body, patch)
        update.fields["phase"] = "Deleting"
        waited = _deleted_for(body.get("metadata") or {}, now=_now())
        try:
            backend = await self._reclaiming_backend(record)
            await backend.delete(record.parsed_location())
        except errors.StoreError as exc:
            verdict = imagebytes.reclaim_verdict(
                exc, waited=waited, release_after=self.timing.release_after
            )
            if verdict is imagebytes.Verdict.RELEASE:
                message = (
                    f"bytes at {record.shown_location} in backend {record.backend} were NOT "
                    f"deleted and are left behind: {exc.message}"
                )
                logger.warning(message)
                kopf.warn(body, reason="BytesLeftBehind", message=message)
                return
            reason = imagebytes.reason_of(exc)
            message = f"cannot delete {record.shown_location} yet: {exc.message}"
            update.condition("Reclaimed", "False", reason, message)
            raise kopf.TemporaryError(message, delay=self.timing.retry_delay) from exc
        kopf.info(body, reason="BytesDeleted", message=f"deleted {record.shown_location}")


def spec_problem(body: Mapping[str, Any]) -> str | None:
    """What is wrong with the spec, read as the CRD's schema reads it (``None``: nothing)."""
    try:
        spec.ImageLocationSpec.model_validate(body.get("spec") or {})
    except pydantic.ValidationError as exc:
        return "invalid spec: " + "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
    return None


def _copy_failed_for_good(body: Mapping[str, Any], generation: int | None) -> bool:
    """Whether this generation's copy already failed for a reason no retry can fix."""
    status = body.get("status") or {}
    if status.get("phase") != "Failed":
        return False
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Copied" and condition.get("status") == "False":
            final = condition.get("reason") in {cls.__name__ for cls in _final_error_classes()}
            return final and condition.get("observedGeneration") == generation
    return False


def _final_error_classes() -> Iterable[type[errors.StoreError]]:
    pending = list(_FINAL_COPY_ERRORS)
    while pending:
        cls = pending.pop()
        yield cls
        pending.extend(cls.__subclasses__())


def register(
    registry: kopf.OperatorRegistry,
    *,
    settings: OperatorSettings,
    backends_for: BackendsFor,
    api: kube.Api,
    timing: Timing | None = None,
) -> ImageLocationHandlers:
    """Add the ImageLocation handlers to ``registry``; returns them (for tests)."""
    handlers = ImageLocationHandlers(
        backends_for=backends_for,
        api=api,
        timing=timing or Timing.from_settings(settings),
    )
    resource = (names.GROUP, names.VERSION, names.IMAGELOCATIONS)
    kopf.index(*resource, id=RECORDS_INDEX, registry=registry)(handlers.index)
    for decorate in (kopf.on.create, kopf.on.resume):
        decorate(*resource, id="imagelocation", registry=registry)(handlers.reconcile)
        decorate(*resource, id="acls", registry=registry)(handlers.acls)
    kopf.on.update(*resource, id="imagelocation", field="spec", registry=registry)(
        handlers.reconcile
    )
    kopf.on.update(*resource, id="acls", field="spec.acls", registry=registry)(handlers.acls)
    kopf.timer(
        *resource,
        id="verify",
        interval=handlers.timing.verify_interval,
        initial_delay=handlers.timing.verify_interval,
        registry=registry,
    )(handlers.reverify)
    kopf.on.delete(*resource, id="reclaim", registry=registry)(handlers.reclaim)
    return handlers
