"""Attaching a volume to this host with os-brick, and detaching it on every path.

The sequence is Cinder's new attach API, as glance_store 5.7.0 drives it:
``attachment_create`` (mode ``rw`` or ``ro``; retried with backoff while the volume is
between two states) → ``attachment_update`` with this host's connector properties, which
returns the connection info → os-brick ``connect_volume`` → ``attachment_complete``.
Detaching is ``disconnect_volume(force=True)`` then ``attachment_delete`` (retried on 5xx).

``attached()`` is an async context manager, and the detach in its ``finally`` runs to the
end even when the caller is cancelled (``await_uninterrupted``): a half-finished attach is
undone step by step, whatever failed. Everything blocking runs on the backend's pool.

os-brick setup (``prepare_os_brick``): there is no privsep helper or sudo in a container,
and the sidecar runs as root where it attaches at all, so os-brick's privileged calls run
in-process (``set_client_mode(False)``); its file locks need oslo.concurrency's ``lock_path``.
Both are process-wide settings of os-brick, set once, the same for every backend.

os-brick is imported on a throwaway daemon thread, never on a pool thread. Importing it
imports oslo.privsep → eventlet, and ``eventlet.hubs`` re-executes ``threading.py`` as a
private copy (``patcher.original("threading")``); that copy's module body builds a
``_MainThread`` whose ``_thread._set_sentinel()`` call replaces the *importing* thread's
thread-state sentinel. The importing thread's own ``Thread._tstate_lock`` is then never
released when it ends: ``join()`` on it, and ``threading._shutdown`` at interpreter exit
(non-daemon pool threads are in ``_shutdown_locks``), wait forever for a thread that is long
gone. A daemon thread that nobody joins can carry the orphaned lock harmlessly.

What an attach yields is a ``Device``: a file or block device opened by path (LOCAL and
every kernel connector), or the librbd handle the RBD connector returns when it does not
map the image locally. Both offer positional ``pread``/``pwrite`` safe to call from threads.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from kglance.drivers import _threads, errors
from kglance.drivers.cinder import api

logger = logging.getLogger(__name__)

MAX_BACKOFF = 10.0  # seconds between attachment retries (glance: min(2**n, 10))
DETACH_ATTEMPTS = 5  # attachment_delete on 5xx, as glance


def prepare_os_brick(lock_path: str) -> Any:
    """Import os-brick's connector module configured for in-process privileged calls."""
    privileged, connector, lockutils = _import_os_brick()
    privileged.default.set_client_mode(False)
    os.makedirs(lock_path, mode=0o700, exist_ok=True)
    lockutils.set_defaults(lock_path)
    return connector


def _import_os_brick() -> tuple[Any, Any, Any]:
    """``(os_brick.privileged, os_brick.initiator.connector, oslo_concurrency.lockutils)``,
    imported on a daemon thread of their own (see the module docstring for why)."""
    imported: concurrent.futures.Future[tuple[Any, Any, Any]] = concurrent.futures.Future()

    def load() -> None:
        try:
            with warnings.catch_warnings():
                # oslo.privsep imports eventlet, which warns that it is deprecated
                warnings.simplefilter("ignore")
                import os_brick.privileged
                from os_brick.initiator import connector
                from oslo_concurrency import lockutils
        except BaseException as exc:
            imported.set_exception(exc)
        else:
            imported.set_result((os_brick.privileged, connector, lockutils))

    # waited for through the future: joining this thread could hang (its sentinel is replaced)
    threading.Thread(target=load, name="kglance-os-brick-import", daemon=True).start()
    return imported.result()


class Device(abc.ABC):
    """An attached volume's bytes."""

    @abc.abstractmethod
    def pread(self, offset: int, length: int) -> bytes: ...

    @abc.abstractmethod
    def pwrite(self, offset: int, data: bytes) -> None: ...

    @abc.abstractmethod
    def flush(self) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...


class PathDevice(Device):
    """A device or file path (LOCAL connector, kernel block devices)."""

    def __init__(self, path: str, *, writable: bool) -> None:
        self.path = path
        self._fd = os.open(path, (os.O_RDWR if writable else os.O_RDONLY) | os.O_CLOEXEC)

    def pread(self, offset: int, length: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        if len(data) != length:
            raise errors.BackendError(
                f"short read from {self.path}: {len(data)} of {length} bytes at {offset}"
            )
        return data

    def pwrite(self, offset: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            view = view[written:]
            offset += written

    def flush(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


class HandleDevice(Device):
    """A file-like handle (os-brick's ``RBDVolumeIOWrapper``); seek+read/write under a lock."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._lock = threading.Lock()

    def pread(self, offset: int, length: int) -> bytes:
        with self._lock:
            self._handle.seek(offset)
            data = bytes(self._handle.read(length))
        if len(data) != length:
            raise errors.BackendError(f"short read: {len(data)} of {length} bytes at {offset}")
        return data

    def pwrite(self, offset: int, data: bytes) -> None:
        with self._lock:
            self._handle.seek(offset)
            self._handle.write(data)

    def flush(self) -> None:
        with self._lock:
            self._handle.flush()

    def close(self) -> None:
        """The connector's ``disconnect_volume`` closes the handle."""


class Attacher:
    """Attaches volumes of one backend to this host."""

    def __init__(
        self,
        volumes: Callable[[], api.VolumeApi],
        *,
        runner: _threads.BlockingRunner,
        connector_module: Any,
        connector_properties: Mapping[str, Any],
        use_multipath: bool,
        retry_attempts: int,
        retry_interval: float,
    ) -> None:
        self._volumes = volumes
        self._runner = runner
        self._connector_module = connector_module
        self._properties = dict(connector_properties)
        self._use_multipath = use_multipath
        self._retry_attempts = retry_attempts
        self._retry_interval = retry_interval

    @contextlib.asynccontextmanager
    async def attached(self, volume_id: str, *, mode: str) -> AsyncIterator[Device]:
        """The volume attached (``mode`` ``rw``/``ro``); detached however the block ends."""
        attach = _Attach(self, volume_id, mode=mode)
        try:
            device = await attach.connect()
            yield device
        except BaseException:
            # a detach problem is logged; it must not replace the error that made us leave
            await _threads.await_uninterrupted(attach.undo(strict=False))
            raise
        await _threads.await_uninterrupted(attach.undo(strict=True))

    # used by _Attach
    async def _create_attachment(self, volume_id: str, *, mode: str) -> str:
        volumes = self._volumes()
        action = f"cannot attach volume {volume_id}"
        delay = self._retry_interval
        for attempt in range(1, self._retry_attempts + 1):
            try:
                return await self._runner.run(volumes.attachment_create, volume_id, mode=mode)
            except Exception as exc:
                if attempt == self._retry_attempts or not api.is_transitional_conflict(exc):
                    raise api.translate(exc, action=action) from exc
                logger.info("%s (attempt %d): %s; retrying", action, attempt, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)
        raise AssertionError("unreachable")

    def _connector(self, connection_info: Mapping[str, Any]) -> Any:
        protocol = str(connection_info["driver_volume_type"]).upper()
        return self._connector_module.InitiatorConnector.factory(
            protocol,
            None,  # no root helper: privileged calls run in-process
            use_multipath=self._use_multipath,
            device_scan_attempts=3,
            conn=dict(connection_info),
            do_local_attach=False,
        )


class _Attach:
    """One attach in progress: remembers how far it got, so ``undo`` reverses just that."""

    def __init__(self, attacher: Attacher, volume_id: str, *, mode: str) -> None:
        self._attacher = attacher
        self._runner = attacher._runner
        self.volume_id = volume_id
        self.mode = mode
        self._lock = asyncio.Lock()
        self.attachment_id: str | None = None
        self.connection_info: dict[str, Any] | None = None
        self.connector: Any = None
        self.device_info: dict[str, Any] | None = None
        self.device: Device | None = None

    async def connect(self) -> Device:
        async with self._lock:
            volumes = self._attacher._volumes()
            action = f"cannot attach volume {self.volume_id}"
            self.attachment_id = await self._attacher._create_attachment(
                self.volume_id, mode=self.mode
            )
            try:
                self.connection_info = await self._runner.run(
                    volumes.attachment_update, self.attachment_id, self._attacher._properties
                )
                self.connector = self._attacher._connector(self.connection_info)
                self.device_info = await self._runner.acquire(
                    self._connect_volume, release_with=self._disconnect_orphan
                )
                self.device = await self._runner.acquire(
                    self._open_device, release_with=lambda device: device.close()
                )
                await self._runner.run(volumes.attachment_complete, self.attachment_id)
            except errors.StoreError:
                raise
            except Exception as exc:
                raise api.translate(exc, action=action) from exc
            return self.device

    def _connect_volume(self) -> dict[str, Any]:
        assert self.connection_info is not None
        info = self.connector.connect_volume(self.connection_info["data"])
        return dict(info)

    def _disconnect_orphan(self, device_info: dict[str, Any]) -> None:
        assert self.connection_info is not None
        self.connector.disconnect_volume(self.connection_info["data"], device_info, force=True)

    def _open_device(self) -> Device:
        assert self.device_info is not None
        path = self.device_info.get("path")
        if isinstance(path, str):
            return PathDevice(path, writable=self.mode == "rw")
        if path is not None and hasattr(path, "read"):
            return HandleDevice(path)
        raise errors.BackendError(f"os-brick returned no usable device for {self.volume_id}")

    async def undo(self, *, strict: bool) -> None:
        """Close, disconnect and delete the attachment: whatever of it exists."""
        async with self._lock:
            problems: list[BaseException] = []
            if self.device is not None:
                device, self.device = self.device, None
                await _collect(problems, self._runner.run(device.close))
            if self.device_info is not None:
                device_info, self.device_info = self.device_info, None
                await _collect(problems, self._runner.run(self._disconnect_orphan, device_info))
            if self.attachment_id is not None:
                attachment_id, self.attachment_id = self.attachment_id, None
                await _collect(problems, self._delete_attachment(attachment_id))
            for problem in problems:
                logger.error("detaching volume %s failed: %s", self.volume_id, problem)
            if strict and problems:
                first = problems[0]
                if isinstance(first, errors.StoreError):
                    raise first
                raise errors.BackendError(
                    f"cannot detach volume {self.volume_id}: {first}"
                ) from first

    async def _delete_attachment(self, attachment_id: str) -> None:
        volumes = self._attacher._volumes()
        delay = self._attacher._retry_interval
        for attempt in range(1, DETACH_ATTEMPTS + 1):
            try:
                await self._runner.run(volumes.attachment_delete, attachment_id)
                return
            except Exception as exc:
                error = api.translate(exc, action=f"cannot delete attachment {attachment_id}")
                if isinstance(error, errors.NotFound):
                    return
                if attempt == DETACH_ATTEMPTS or not isinstance(error, errors.RemoteUnavailable):
                    raise error from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)


async def _collect(problems: list[BaseException], step: Any) -> None:
    try:
        await step
    except Exception as exc:
        problems.append(exc)
