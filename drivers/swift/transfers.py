"""A streamed PUT running on a transfer thread, and waiting for threads that cannot be stopped.

A ``Transfer`` starts one blocking request whose body is a ``BodyPipe`` on the driver's
transfer pool. The coroutine feeding it never awaits the thread's task directly: awaiting a
task and being cancelled cancels the task, which would forget the thread while it is still
sending. Instead ``settle`` waits until the thread is over, absorbing cancellation and raising
it again afterwards, so cleanup code knows exactly which requests may have reached Swift.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from kglance.drivers._threads import BlockingRunner
from kglance.drivers.swift.bodies import BodyPipe


async def settle(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Wait until every task is done even if cancelled meanwhile; then re-raise the cancel."""
    pending = {t for t in tasks if not t.done()}
    cancelled = False
    while pending:
        try:
            _, pending = await asyncio.wait(pending)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


async def finish(coro_task: asyncio.Task[None]) -> None:
    """Run a cleanup task to its end whatever happens to the caller meanwhile."""
    await settle([coro_task])
    coro_task.result()


class Transfer:
    """One request with a streamed body, on a thread of ``runner``."""

    def __init__(
        self,
        runner: BlockingRunner,
        send: Callable[[BodyPipe], str],
        *,
        depth: int,
    ) -> None:
        self.pipe = BodyPipe(depth=depth)
        self._send = send
        self.task: asyncio.Task[str] = asyncio.ensure_future(runner.run(self._run))

    def _run(self) -> str:
        try:
            return self._send(self.pipe)
        finally:
            self.pipe.sender_done()

    @property
    def done(self) -> bool:
        return self.task.done()

    def failure(self) -> BaseException | None:
        """The exception the request ended with, if it has ended with one."""
        if not self.task.done() or self.task.cancelled():
            return None
        return self.task.exception()

    async def result(self) -> str:
        """The request's result (an ETag) once it is over; its exception if it failed."""
        await settle([self.task])
        return self.task.result()

    async def abandon(self) -> None:
        """Fail the request if it is still sending, and wait until its thread is over."""
        self.pipe.abort()
        await settle([self.task])
        if not self.task.cancelled():
            self.task.exception()  # retrieved: never reported as "never retrieved"
