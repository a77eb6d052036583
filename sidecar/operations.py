"""One image operation's accounting: the log line, the counters, the latency, streams in flight.

Every handler that moves or touches image bytes runs inside an ``Operation``. Whatever way the
operation ends (success, a ``StoreError``, the client going away, a bug) it produces exactly
one structured log line and one observation per metric, so logs and metrics always agree.
"""

from __future__ import annotations

import asyncio
import time
import types
from typing import Any

import aiohttp
from aiohttp import web

from kglance.drivers import errors
from kglance.sidecar import logs, metrics

CLIENT_GONE = "client_disconnected"
CANCELLED = "cancelled"  # by the sidecar stopping, or by aiohttp when the client left


class ResponseBroken(Exception):
    """The response was already started when the stream failed: the connection must be cut."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__("the response was interrupted")
        self.response = response


class UploadInterrupted(errors.InvalidRequest):
    """The client stopped sending the body (disconnected or went silent)."""

    code = "upload_interrupted"


def outcome_of(exc: BaseException | None) -> str:
    """``ok`` or the stable error code an exception stands for."""
    if exc is None:
        return "ok"
    if isinstance(exc, ResponseBroken) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, errors.StoreError):
        return exc.code
    if isinstance(exc, asyncio.CancelledError):
        return CANCELLED
    if isinstance(exc, ConnectionError | aiohttp.ClientConnectionError):
        return CLIENT_GONE
    if isinstance(exc, web.HTTPException):
        return f"http_{exc.status}"
    return "internal_error"


class Operation:
    def __init__(
        self,
        metrics_: metrics.Metrics,
        *,
        op: str,
        request_id: str,
        image_id: str | None = None,
        location: str | None = None,
        streaming: bool = False,
    ) -> None:
        self._metrics = metrics_
        self.op = op
        self.request_id = request_id
        self.image_id = image_id
        self.location = location  # already without credentials
        self.backend = ""
        self.bytes = 0
        self.range: str | None = None
        self._streaming = streaming
        self._started = 0.0
        self._log = logs.get("operations")

    def bind(self, backend_id: str) -> None:
        """The operation runs on this (configured) backend from now on."""
        self.backend = backend_id
        if self._streaming:
            self._metrics.in_flight.inc(backend=backend_id, op=self.op)

    def count(self, nbytes: int) -> None:
        self.bytes += nbytes
        counter = self._metrics.bytes_in if self.op == "put" else self._metrics.bytes_out
        counter.inc(nbytes, backend=self.backend)

    def __enter__(self) -> Operation:
        self._started = time.monotonic()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        elapsed = time.monotonic() - self._started
        outcome = outcome_of(exc)
        backend, op = self.backend, self.op
        if self._streaming and backend:
            self._metrics.in_flight.dec(backend=backend, op=op)
        self._metrics.operations.inc(backend=backend, op=op, outcome=outcome)
        if outcome != "ok":
            self._metrics.errors.inc(backend=backend, op=op, code=outcome)
        self._metrics.duration.observe(elapsed, backend=backend, op=op)
        fields: dict[str, Any] = {
            "event": "operation",
            "request_id": self.request_id,
            "op": self.op,
            "image_id": self.image_id,
            "location": self.location,
            "backend": self.backend or None,
            "range": self.range,
            "bytes": self.bytes,
            "duration_s": round(elapsed, 6),
            "outcome": outcome,
        }
        if isinstance(exc, errors.StoreError):
            fields["error"] = exc.message
        level = 40 if outcome == "internal_error" else 20
        logs.event(
            self._log,
            f"{self.op} {outcome}",
            level=level,
            **{k: v for k, v in fields.items() if v is not None},
        )
