"""Every failure becomes ``{"error": {"code", "message"}}`` with the status ``drivers.errors`` set.

The status and the code of a ``StoreError`` are attributes of its class (``http_status``,
``code``); this module only renders them, it never re-decides them. aiohttp's own HTTP errors
(no such route, method not allowed) get the same shape. Anything unexpected is a ``500
internal_error`` whose body carries the request id and nothing else: no exception text, no
stack trace, no credential; the traceback goes to the (scrubbed) log.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from kglance.drivers import errors
from kglance.sidecar import keys, logs, operations

REQUEST_ID_HEADER = "X-Request-Id"
ERROR_CODE_HEADER = "X-Error-Code"
_HTTP_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    411: "length_required",
    413: "request_too_large",
    415: "unsupported_media_type",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ALWAYS_SERVED = frozenset({"/healthz", "/readyz", "/metrics"})


class ShuttingDown(errors.StoreError):
    """The sidecar is stopping and takes no new requests."""

    code = "shutting_down"
    http_status = 503
    retryable = True


# The id of the request the current task is handling. A context variable rather than request
# state: aiohttp's typed request keys need aiohttp 3.14, and string keys warn. aiohttp runs a
# request's middlewares, handler and response hooks in one task, and the middleware sets a fresh
# id at the start of each request, so one connection's requests never share an id.
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("kglance_request_id")


def request_id() -> str:
    """The id of the request being handled (set by ``errors_to_json``)."""
    try:
        return _request_id.get()
    except LookupError:
        value = secrets.token_hex(8)
        _request_id.set(value)
        return value


def error_response(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None
) -> web.Response:
    """The JSON error body; the code also goes in a header, for HEAD answers have no body."""
    return web.json_response(
        {"error": {"code": code, "message": message}},
        status=status,
        headers={**(headers or {}), ERROR_CODE_HEADER: code},
    )


def store_error_response(exc: errors.StoreError) -> web.Response:
    headers: dict[str, str] = {}
    if isinstance(exc, errors.RangeNotSatisfiable) and exc.size is not None:
        headers["Content-Range"] = f"bytes */{exc.size}"
    return error_response(exc.http_status, exc.code, exc.message, headers=headers)


@web.middleware
async def errors_to_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = secrets.token_hex(8)
    _request_id.set(rid)
    try:
        return await handler(request)
    except operations.ResponseBroken as exc:
        # headers and part of the body are out: cut the connection so the client sees a
        # short body instead of a complete-looking one
        if request.transport is not None:
            request.transport.abort()
        return exc.response
    except errors.StoreError as exc:
        return store_error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        allow = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return error_response(exc.status, code, exc.reason, headers=allow)
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception:
        logs.event(
            logs.get("errors"),
            f"unexpected error handling {request.method} {request.path}",
            level=logging.ERROR,
            exc_info=True,
            request_id=rid,
        )
        return error_response(500, "internal_error", f"internal error (request {rid})")


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Requests in flight are counted so a stop can wait for them; new ones are refused then."""
    service = request.app[keys.SERVICE]
    if service.draining and request.path not in ALWAYS_SERVED:
        raise ShuttingDown("the sidecar is shutting down")
    with service.request():
        return await handler(request)


async def prepare_response(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: name the request id; no keep-alive once the sidecar stops."""
    response.headers[REQUEST_ID_HEADER] = request_id()
    if request.app[keys.SERVICE].draining:
        response.force_close()
