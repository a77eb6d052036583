"""Hot reload: notice that the configuration or a secret file changed, and apply it safely.

Kubernetes updates a mounted ConfigMap or Secret by writing a new hidden directory and swapping
the ``..data`` symlink in one rename; the visible path never changes and its own mtime may not
either. So each watched path is fingerprinted by the real path it resolves to plus that file's
device, inode, size and mtime, polled every second: this sees in-place edits, editor-style
replace-by-rename and the symlink swap alike, with no inotify dependency.

A change is applied only if the new configuration parses, every backend builds and every
backend passes ``check()``; otherwise the error is logged and the old backends keep serving.
A failed attempt is retried after ``retry_interval`` (the failure may have been a backend
briefly unreachable) or as soon as the files change again. Streams in flight are never touched:
``Service.swap`` only changes what new requests get.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable

from kglance.drivers import errors, registry
from kglance.sidecar import config, logs, service

Stat = tuple[int, int, int, int] | None  # device, inode, size, mtime
Fingerprint = tuple[tuple[str, Stat], ...]


def fingerprint(paths: Iterable[str]) -> Fingerprint:
    entries: list[tuple[str, Stat]] = []
    for path in paths:
        real = os.path.realpath(path)
        try:
            st = os.stat(real)
        except OSError:
            entries.append((real, None))
        else:
            entries.append((real, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)))
    return tuple(entries)


class Reloader:
    def __init__(
        self,
        *,
        config_path: str,
        watched: Iterable[str],
        drivers: registry.Registry,
        service_: service.Service,
        interval: float = 1.0,
        retry_interval: float = 30.0,
    ) -> None:
        self._config_path = config_path
        self._drivers = drivers
        self._service = service_
        self._interval = interval
        self._retry_interval = retry_interval
        self._paths = (config_path, *watched)
        self._applied = fingerprint(self._paths)
        self._failed: tuple[Fingerprint, float] | None = None
        self._lock = asyncio.Lock()
        self._log = logs.get("reload")

    async def run(self) -> None:
        """Poll forever (cancel to stop)."""
        while True:
            await asyncio.sleep(self._interval)
            if self._due():
                await self.reload(reason="files changed")

    def _due(self) -> bool:
        current = fingerprint(self._paths)
        if current == self._applied:
            return False
        if self._failed is None:
            return True
        failed, at = self._failed
        return current != failed or time.monotonic() - at >= self._retry_interval

    async def reload(self, *, reason: str) -> bool:
        """Read, build and check the configuration; swap it in if all of that worked."""
        async with self._lock:
            return await self._reload(reason)

    async def _reload(self, reason: str) -> bool:
        metrics = self._service.metrics
        paths = self._paths
        before = fingerprint(paths)  # taken first: a change while reading is seen next poll
        new = None
        try:
            loaded = config.read(self._config_path, drivers=self._drivers)
            self._paths = (self._config_path, *loaded.watched)
            for warning in loaded.warnings:
                logs.event(self._log, warning, level=30, event="config_warning")
            new = await config.build(loaded, drivers=self._drivers)
            problems = await service.check_backends(new)
            if problems:
                raise errors.ConfigurationError(
                    "; ".join(f"[{bid}] {problem}" for bid, problem in sorted(problems.items()))
                )
        except (errors.StoreError, OSError) as exc:
            if new is not None:
                await new.aclose()
            self._failed = (self._seen(paths, before), time.monotonic())
            metrics.reloads.inc(outcome="error")
            message = exc.message if isinstance(exc, errors.StoreError) else str(exc)
            logs.event(
                self._log,
                "configuration reload failed; the previous configuration stays in use",
                level=40,
                event="reload",
                outcome="error",
                reason=reason,
                error=message,
            )
            return False
        self._applied = self._seen(paths, before)
        self._failed = None
        generation = self._service.swap(new, problems={})
        metrics.reloads.inc(outcome="ok")
        logs.event(
            self._log,
            "configuration reloaded",
            event="reload",
            outcome="ok",
            reason=reason,
            generation=generation.number,
            backends=[b.id for b in new],
        )
        return True

    def _seen(self, paths: tuple[str, ...], before: Fingerprint) -> Fingerprint:
        """The fingerprint the attempt corresponds to (the one taken before reading if the
        set of watched files did not change)."""
        return before if paths == self._paths else fingerprint(self._paths)
