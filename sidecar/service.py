"""The backends a running sidecar serves, swapped atomically on reload; readiness; draining.

Neither a reload nor a stop may drop a stream in flight:

* a request leases the current ``Generation`` (one applied configuration) for its whole life,
  and a reload only changes which generation new requests lease; a replaced generation is
  retired, and its drivers are closed once its last lease ends;
* ``drain`` refuses new requests and waits for those in flight. The sidecar drains before it
  hands over to aiohttp's own shutdown, which stops reading request bodies and so would stall
  every upload in flight until it is cancelled.

Readiness is per generation: the sidecar is ready when the current generation's backends have
all passed ``check()``; a failed check is retried in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from kglance.drivers import backends, errors
from kglance.sidecar import logs, metrics


class Generation:
    """One applied configuration and the requests currently using it."""

    def __init__(self, backends_: backends.Backends, *, number: int) -> None:
        self.backends = backends_
        self.number = number
        self.leases = 0
        self.retired = False
        self.problems: dict[str, str] | None = None  # None until checked; {} when all passed

    @property
    def ready(self) -> bool:
        return self.problems == {}


async def check_backends(backends_: backends.Backends) -> dict[str, str]:
    """Run every backend's ``check()``; the failures by backend id."""
    problems: dict[str, str] = {}
    for backend in backends_:
        try:
            await backend.driver.check()
        except errors.StoreError as exc:
            problems[backend.id] = f"{exc.code}: {exc.message}"
        except Exception as exc:  # a driver bug must not stop the others' checks
            problems[backend.id] = f"internal_error: {type(exc).__name__}"
    return problems


class Service:
    def __init__(
        self,
        backends_: backends.Backends,
        *,
        metrics_: metrics.Metrics,
        check_retry_interval: float = 5.0,
    ) -> None:
        self.metrics = metrics_
        self._check_retry_interval = check_retry_interval
        self._current = Generation(backends_, number=1)
        self._closing: set[asyncio.Task[None]] = set()
        self._checker: asyncio.Task[None] | None = None
        self._log = logs.get("service")
        self.metrics.generation.set(1)
        self.metrics.ready.set(0)
        self.draining = False
        self._request_tasks: set[asyncio.Task[Any]] = set()
        self._no_requests = asyncio.Event()
        self._no_requests.set()

    @property
    def current(self) -> Generation:
        return self._current

    @contextlib.contextmanager
    def lease(self) -> Iterator[backends.Backends]:
        """The current backends, kept open until the ``with`` block ends."""
        generation = self._current
        generation.leases += 1
        try:
            yield generation.backends
        finally:
            generation.leases -= 1
            if generation.retired and generation.leases == 0:
                self._close_later(generation)

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Count a request as in flight for the ``with`` block."""
        task = asyncio.current_task()
        assert task is not None, "requests run in tasks"
        self._request_tasks.add(task)
        self._no_requests.clear()
        try:
            yield
        finally:
            self._request_tasks.discard(task)
            if not self._request_tasks:
                self._no_requests.set()

    async def drain(self, *, grace_period: float) -> bool:
        """Refuse new requests; wait up to ``grace_period`` s for the others. Whether all ended."""
        self.draining = True
        self.metrics.ready.set(0)
        try:
            async with asyncio.timeout(grace_period):
                await self._no_requests.wait()
        except TimeoutError:
            return False
        return True

    async def cancel_requests(self, *, cleanup_period: float) -> None:
        """Cancel the requests still in flight and give them time to clean up."""
        tasks = set(self._request_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=cleanup_period)

    def swap(self, backends_: backends.Backends, *, problems: dict[str, str]) -> Generation:
        """Serve ``backends_`` (already checked) to new requests from now on."""
        old = self._current
        self._current = Generation(backends_, number=old.number + 1)
        self._current.problems = problems
        self.metrics.generation.set(self._current.number)
        self.metrics.ready.set(1 if self._current.ready else 0)
        old.retired = True
        if old.leases == 0:
            self._close_later(old)
        self.start_checks()
        return self._current

    def _close_later(self, generation: Generation) -> None:
        task = asyncio.get_running_loop().create_task(self._close(generation))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, generation: Generation) -> None:
        try:
            await generation.backends.aclose()
        except Exception:
            self._log.exception("closing the backends of generation %d failed", generation.number)
        else:
            what = "retired backends" if generation.retired else "backends"
            logs.event(self._log, f"closed {what}", generation=generation.number)

    def start_checks(self) -> None:
        """Check the current generation until every backend passes (a background task)."""
        if self._checker is not None:
            self._checker.cancel()
        if not self._current.ready:
            self._checker = asyncio.get_running_loop().create_task(self._check(self._current))

    async def _check(self, generation: Generation) -> None:
        while True:
            generation.problems = await check_backends(generation.backends)
            if generation is self._current and not self.draining:
                self.metrics.ready.set(1 if generation.ready else 0)
            if generation.ready:
                logs.event(self._log, "backends ready", generation=generation.number)
                return
            logs.event(
                self._log,
                "backends not ready",
                level=logging.WARNING,
                generation=generation.number,
                problems=generation.problems,
            )
            await asyncio.sleep(self._check_retry_interval)

    async def aclose(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        await self._close(self._current)
