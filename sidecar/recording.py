"""In a cluster, the sidecar records an ImageLocation for every image it adds.

The operator learns where bytes live from ImageLocation objects (it verifies them, copies them,
deletes the bytes through its finalizer); an image written through a sidecar would otherwise be
invisible to it. Enabled by ``KGLANCE_RECORD_LOCATIONS=true`` (``settings.recording_from_env``),
which the injecting webhook sets together with the namespace and pod name. Decisions:

* **The image operation never fails because of recording.** A successful PUT answers 201 at
  once; its record goes to a bounded queue worked by one background task. A failed attempt
  logs a warning and is retried with exponential backoff (``attempts`` times); a record that
  still fails is counted (``kglance_sidecar_location_records_total{outcome="failed"}``) and
  dropped. When the queue is full (the API server has been unreachable for a while) new records
  are dropped and counted (``outcome="dropped"``) instead of growing memory.
* **Names are deterministic**: ``<backend>-<imageId>``, which is already DNS-1123 for Glance's
  UUIDs. When lowercasing, replacing characters or truncating to 253 changes it, a hash of the
  exact pair is appended, so ``ABC`` and ``abc`` never share an object.
* **Re-adding the same image** (created 409): the object is patched with the new location,
  size and digests; its ``reclaimPolicy`` stays what it is (a user may have set Retain). If the
  object is being deleted (a finalizer still runs), the create is retried after backoff: patching
  it would lose the new record when the deletion completes. An object of that name recording
  another image or backend (made by hand) is never overwritten: the record fails with a warning.
* **A DELETE through the sidecar deletes the ImageLocation** — the bytes are gone, so the object
  would only turn Failed at the next verification. Its ``reclaimPolicy`` is first set to Retain:
  the operator's finalizer then releases the object without touching storage, so a late
  finalizer cannot delete the bytes of the same image added again right after. Only the object
  recording this very location is deleted (another location under the same name was recorded
  later, or by someone else, and is left alone); the delete carries a uid precondition.
* **One worker, in order**: records apply in the order the operations succeeded, so add,
  delete, add of one image ends with the object present.
* **Shutdown flushes** pending records for up to ``flush_timeout`` seconds, after the requests
  in flight have drained; what is left is logged (backend and image id) and counted as dropped.
* The sidecar writes ``spec`` and labels only; ``status`` belongs to the operator. RBAC: the
  pod's service account needs ``create``, ``get``, ``patch`` and ``delete`` on imagelocations in
  its namespace, nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import random
import re
from typing import Any

from kglance.drivers import backends
from kglance.operator import names
from kglance.sidecar import kubeapi, logs, metrics, settings

POD_LABEL = "kglance.io/pod"
BACKEND_LABEL = "kglance.io/backend"
CREATED_BY_LABEL = "app.kubernetes.io/created-by"
CREATED_BY = "kglance-sidecar"
MAX_NAME = 253
MAX_LABEL_VALUE = 63
_NOT_NAME = re.compile(r"[^a-z0-9-]+")
_NOT_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]+")
_LOST_SHOWN = 20  # records named in the shutdown warning; the rest are only counted


def location_name(backend: str, image_id: str) -> str:
    """The ImageLocation name recording ``image_id`` on ``backend`` (DNS-1123 subdomain)."""
    exact = f"{backend}-{image_id}"
    name = _NOT_NAME.sub("-", exact.lower()).strip("-")
    if name == exact and len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(exact.encode()).hexdigest()[:10]
    prefix = name[: MAX_NAME - len(digest) - 1].rstrip("-")
    return f"{prefix}-{digest}" if prefix else digest


def label_value(text: str) -> str:
    """``text`` made a valid label value (at most 63 characters, alphanumeric at both ends)."""
    return _NOT_LABEL_VALUE.sub("-", text)[:MAX_LABEL_VALUE].strip("-_.")


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    op: str  # "add" or "delete"
    backend: str
    image_id: str
    location: str  # without credentials
    added: backends.AddResult | None = None

    @property
    def name(self) -> str:
        return location_name(self.backend, self.image_id)


class Recorder:
    """Queues records of successful operations and applies them to the API in the background."""

    def __init__(
        self,
        options: settings.RecordingOptions,
        *,
        metrics_: metrics.Metrics,
        client: kubeapi.Client | None = None,
    ) -> None:
        self._options = options
        self._metrics = metrics_
        self._client = client or kubeapi.Client(
            options.api_url,
            service_account=kubeapi.ServiceAccount(options.serviceaccount_dir),
        )
        self._queue: asyncio.Queue[Record] = asyncio.Queue(maxsize=options.queue_size)
        self._current: Record | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self._log = logs.get("recording")
        self._collection = (
            f"/apis/{names.API_VERSION}/namespaces/{options.namespace}/{names.IMAGELOCATIONS}"
        )
        self._update_pending()  # the gauge exists from the start, at 0

    # ----------------------------------------------------------------- what the routes call

    def added(self, result: backends.AddResult) -> None:
        self._submit(
            Record(
                op="add",
                backend=result.backend,
                image_id=result.image_id,
                location=result.location.uri(),
                added=result,
            )
        )

    def deleted(self, *, backend: str, image_id: str, location: str) -> None:
        self._submit(Record(op="delete", backend=backend, image_id=image_id, location=location))

    def _submit(self, record: Record) -> None:
        if self._closed:
            self._drop([record], why="the sidecar is stopping")
            return
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._drop([record], why="too many records wait for the API server")
            return
        self._update_pending()

    # ----------------------------------------------------------------- life cycle

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        """Apply what is pending for up to ``flush_timeout`` s, then drop the rest."""
        self._closed = True
        worker, self._worker = self._worker, None
        lost: list[Record] = []
        if worker is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._options.flush_timeout):
                    await self._queue.join()
            if self._current is not None:
                lost.append(self._current)  # cancelled below, mid-attempt or backing off
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        while not self._queue.empty():
            lost.append(self._queue.get_nowait())
            self._queue.task_done()
        if lost:
            self._drop(lost, why="the flush deadline passed at shutdown")
        self._update_pending()
        await self._client.aclose()

    def _update_pending(self) -> None:
        pending = self._queue.qsize() + (1 if self._current is not None else 0)
        self._metrics.location_records_pending.set(pending)

    def _drop(self, records: list[Record], *, why: str) -> None:
        for record in records:
            self._metrics.location_records.inc(op=record.op, outcome="dropped")
        logs.event(
            self._log,
            f"image location records dropped: {why}",
            level=logging.WARNING,
            event="location_record",
            outcome="dropped",
            count=len(records),
            records=[
                {"op": r.op, "backend": r.backend, "image_id": r.image_id}
                for r in records[:_LOST_SHOWN]
            ],
        )

    # ----------------------------------------------------------------- the worker

    async def _run(self) -> None:
        while True:
            record = await self._queue.get()
            self._current = record
            self._update_pending()
            try:
                await self._apply_with_retries(record)
            finally:
                self._current = None
                self._queue.task_done()
                self._update_pending()

    def _delay(self, attempt: int) -> float:
        """Backoff before attempt ``attempt + 1``: doubling, capped, with jitter."""
        delay: float = min(self._options.backoff * 2.0 ** (attempt - 1), self._options.max_backoff)
        return delay * random.uniform(0.5, 1.0)

    async def _apply_with_retries(self, record: Record) -> None:
        fields: dict[str, Any] = {
            "event": "location_record",
            "op": record.op,
            "backend": record.backend,
            "image_id": record.image_id,
            "name": record.name,
        }
        for attempt in range(1, self._options.attempts + 1):
            try:
                outcome = await self._apply(record)
            except kubeapi.ApiError as exc:
                self._metrics.location_record_errors.inc(op=record.op, reason=exc.reason)
                final = not exc.retryable or attempt == self._options.attempts
                logs.event(
                    self._log,
                    "recording the image location failed"
                    + ("; giving up" if final else "; will retry"),
                    level=logging.WARNING,
                    attempt=attempt,
                    error=exc.message,
                    **fields,
                )
                if final:
                    break
                await asyncio.sleep(self._delay(attempt))
            except Exception:  # a bug here must not stop the records after this one
                self._metrics.location_record_errors.inc(op=record.op, reason="internal_error")
                logs.event(
                    self._log,
                    "recording the image location failed",
                    level=logging.ERROR,
                    exc_info=True,
                    **fields,
                )
                break
            else:
                self._metrics.location_records.inc(op=record.op, outcome=outcome)
                logs.event(self._log, f"image location {outcome}", outcome=outcome, **fields)
                return
        self._metrics.location_records.inc(op=record.op, outcome="failed")

    async def _apply(self, record: Record) -> str:
        """Make the API reflect ``record``; the outcome for logs and metrics."""
        if record.op == "add":
            return await self._record_add(record)
        return await self._record_delete(record)

    def _labels(self, record: Record) -> dict[str, str]:
        labels = {CREATED_BY_LABEL: CREATED_BY}
        for key, text in ((POD_LABEL, self._options.pod_name), (BACKEND_LABEL, record.backend)):
            value = label_value(text)
            if value:
                labels[key] = value
        return labels

    async def _record_add(self, record: Record) -> str:
        result = record.added
        assert result is not None, "an add record carries its result"
        spec: dict[str, Any] = {
            "imageId": result.image_id,
            "backend": result.backend,
            "location": record.location,
            "size": result.size,
            "checksum": result.checksum,
            "osHashAlgo": result.os_hash_algo,
            "osHashValue": result.os_hash_value,
            "metadata": dict(result.metadata),
        }
        body = {
            "apiVersion": names.API_VERSION,
            "kind": names.IMAGELOCATION_KIND,
            "metadata": {
                "name": record.name,
                "namespace": self._options.namespace,
                "labels": self._labels(record),
            },
            "spec": {**spec, "reclaimPolicy": "Delete"},
        }
        try:
            await self._client.call("POST", self._collection, body=body)
        except kubeapi.ApiError as exc:
            if exc.status != 409:
                raise
        else:
            return "created"
        try:
            return await self._update(record, spec)
        except kubeapi.ApiError as exc:
            if exc.status != 404:
                raise
            # deleted between our create and this update (a finalizer let go): create again
            raise kubeapi.ApiError(
                f"ImageLocation {record.name} vanished while being updated",
                reason="vanished",
                retryable=True,
            ) from None

    async def _update(self, record: Record, spec: dict[str, Any]) -> str:
        """Patch the object of the same name, if it records the same image, as ``record``."""
        existing = await self._client.call("GET", self._object(record))
        if existing.get("metadata", {}).get("deletionTimestamp"):
            raise kubeapi.ApiError(
                f"ImageLocation {record.name} is still being deleted",
                reason="being_deleted",
            )
        theirs = existing.get("spec", {})
        if (theirs.get("imageId"), theirs.get("backend")) != (record.image_id, record.backend):
            raise kubeapi.ApiError(
                f"ImageLocation {record.name} records image {theirs.get('imageId')!r} "
                f"on backend {theirs.get('backend')!r}; left as it is",
                reason="name_taken",
                retryable=False,
            )
        patch = {"metadata": {"labels": self._labels(record)}, "spec": spec}
        await self._client.call(
            "PATCH", self._object(record), body=patch, content_type=kubeapi.MERGE_PATCH
        )
        return "updated"

    async def _record_delete(self, record: Record) -> str:
        path = self._object(record)
        try:
            existing = await self._client.call("GET", path)
            metadata = existing.get("metadata", {})
            if existing.get("spec", {}).get("location") != record.location:
                return "left_alone"  # records another location now
            if metadata.get("deletionTimestamp"):
                return "deleted"  # someone deleted it already; the finalizer runs
            if existing.get("spec", {}).get("reclaimPolicy") != "Retain":
                retain = {"spec": {"reclaimPolicy": "Retain"}}
                await self._client.call(
                    "PATCH", path, body=retain, content_type=kubeapi.MERGE_PATCH
                )
            options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
            if metadata.get("uid"):
                options["preconditions"] = {"uid": metadata["uid"]}
            await self._client.call("DELETE", path, body=options)
        except kubeapi.ApiError as exc:
            if exc.status == 404:
                return "absent"
            raise
        return "deleted"

    def _object(self, record: Record) -> str:
        return f"{self._collection}/{record.name}"
