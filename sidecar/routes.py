"""The HTTP API, version 1 (``docs/`` holds its OpenAPI description).

Handlers are thin: they turn a request into calls on ``drivers.backends`` and the result into
a response. Errors are raised as ``StoreError`` and rendered by ``middleware``. Decisions:

* ``DELETE`` of an id that does not exist is ``404`` (Glance raises ``NotFound``); the driver's
  delete underneath stays idempotent, so two racing deletes never fail on the storage side.
* A ``PUT`` without ``Content-Length`` and without chunked encoding has an empty body (HTTP/1.1);
  ``X-Image-Size`` declares the size of a chunked upload and must agree with
  ``Content-Length`` when both are given (``400 size_mismatch`` otherwise).
* Bodies of file-backed images are sent with ``sendfile(2)`` straight from the page cache;
  other bodies are streamed chunk by chunk, each write waiting for the socket to drain.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.http import HttpProcessingError

from kglance.drivers import backends, base, errors, locations, pipeline
from kglance.sidecar import keys, middleware, operations, ranges

BYTES_CONTENT = "application/octet-stream"


def _operation(request: web.Request, op: str, **fields: str | None) -> operations.Operation:
    return operations.Operation(
        request.app[keys.SERVICE].metrics,
        op=op,
        request_id=middleware.request_id(),
        streaming=op in ("put", "get"),
        **fields,
    )


# --------------------------------------------------------------------------- images


async def put_image(request: web.Request) -> web.Response:
    image_id = request.match_info["image_id"]
    service = request.app[keys.SERVICE]
    with _operation(request, "put", image_id=image_id) as op, service.lease() as current:
        backends.validate_image_id(image_id)
        backend = current.get(request.query.get("backend"))
        op.bind(backend.id)
        size = _declared_size(request)
        checksum = request.headers.get("X-Image-Checksum")
        result = await backend.add(
            image_id,
            _body(
                request,
                op,
                piece=backend.driver.write_chunk_size,
                idle=request.app[keys.SETTINGS].upload_idle_timeout,
            ),
            size=size,
            hash_algo=request.query.get("hash", pipeline.DEFAULT_HASH_ALGORITHM),
            expected=pipeline.ExpectedDigest.parse(checksum) if checksum else None,
        )
        if keys.RECORDER in request.app:  # in a cluster: an ImageLocation, in the background
            request.app[keys.RECORDER].added(result)
        return web.json_response(result.as_json(), status=201)


def _int_header(request: web.Request, name: str) -> int | None:
    value = request.headers.get(name)
    if value is None:
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()):
        raise errors.InvalidRequest(f"{name} must be a non-negative integer, got {value[:40]!r}")
    return int(value)


def _declared_size(request: web.Request) -> int | None:
    declared = _int_header(request, "X-Image-Size")
    length = request.content_length
    if length is None and "chunked" not in request.headers.get("Transfer-Encoding", "").lower():
        length = 0  # no length and not chunked: HTTP/1.1 says there is no body
    if declared is not None and length is not None and declared != length:
        raise errors.SizeMismatch(
            f"X-Image-Size says {declared} bytes but the body has {length}",
            expected=declared,
            received=length,
        )
    return declared if declared is not None else length


async def _body(
    request: web.Request, op: operations.Operation, *, piece: int, idle: float
) -> AsyncIterator[bytes]:
    """The request body in pieces of ``piece`` bytes; a client that leaves or stalls fails it.

    The pieces have the size the driver writes (1 MiB by default), joined here from what the
    socket delivers, so the pipeline passes them on without another copy and a stream holds
    about two of them: the one being written and the one being received. aiohttp stops reading
    the socket while more than twice its read buffer (64 KiB) waits, so a fast client is held
    back by backpressure instead of filling memory.
    """
    content = request.content
    pieces: list[bytes] = []
    held = 0
    while True:
        try:
            async with asyncio.timeout(idle):
                chunk = await content.read(piece - held)
        except TimeoutError:
            raise operations.UploadInterrupted(f"no data received for {idle:g} s") from None
        except OSError as exc:  # ConnectionResetError when the client leaves
            raise operations.UploadInterrupted("the client went away mid-upload") from exc
        except HttpProcessingError as exc:  # a body cut short or with broken chunk framing
            raise operations.UploadInterrupted(f"the body is malformed: {exc.message}") from exc
        if not chunk:
            break
        op.count(len(chunk))
        pieces.append(chunk)
        held += len(chunk)
        if held >= piece:
            joined = b"".join(pieces)
            pieces.clear()
            held = 0
            yield joined
    if pieces:
        yield b"".join(pieces)


async def get_image(request: web.Request) -> web.StreamResponse:
    image_id = request.match_info["image_id"]
    service = request.app[keys.SERVICE]
    with _operation(request, "get", image_id=image_id) as op, service.lease() as current:
        backends.validate_image_id(image_id)
        backend = current.get(request.query.get("backend"))
        op.bind(backend.id)
        location = await backend.locate(image_id)
        return await _send(request, backend, location, op)


async def head_image(request: web.Request) -> web.StreamResponse:
    image_id = request.match_info["image_id"]
    service = request.app[keys.SERVICE]
    with _operation(request, "head", image_id=image_id) as op, service.lease() as current:
        backends.validate_image_id(image_id)
        backend = current.get(request.query.get("backend"))
        op.bind(backend.id)
        location = await backend.locate(image_id)
        return await _send_head(request, backend, location)


async def delete_image(request: web.Request) -> web.Response:
    image_id = request.match_info["image_id"]
    service = request.app[keys.SERVICE]
    with _operation(request, "delete", image_id=image_id) as op, service.lease() as current:
        backends.validate_image_id(image_id)
        backend = current.get(request.query.get("backend"))
        op.bind(backend.id)
        location = await backend.locate(image_id)
        await backend.size(location)  # NotFound when there is no such image
        await backend.delete(location)
        if keys.RECORDER in request.app:
            request.app[keys.RECORDER].deleted(
                backend=backend.id, image_id=image_id, location=location.uri()
            )
        return web.Response(status=204)


# --------------------------------------------------------------------------- data by location


def _location(request: web.Request) -> locations.Location:
    uri = request.query.get("location")
    if not uri:
        raise errors.InvalidRequest("the 'location' query parameter is required")
    return locations.parse(uri)


async def get_data(request: web.Request) -> web.StreamResponse:
    service = request.app[keys.SERVICE]
    with _operation(request, "get") as op, service.lease() as current:
        location = _location(request)
        op.location = str(location)
        backend = current.for_location(location, backend_id=request.query.get("backend"))
        op.bind(backend.id)
        return await _send(request, backend, location, op)


async def head_data(request: web.Request) -> web.StreamResponse:
    service = request.app[keys.SERVICE]
    with _operation(request, "head") as op, service.lease() as current:
        location = _location(request)
        op.location = str(location)
        backend = current.for_location(location, backend_id=request.query.get("backend"))
        op.bind(backend.id)
        return await _send_head(request, backend, location)


# --------------------------------------------------------------------------- sending bytes


async def _send_head(
    request: web.Request, backend: backends.Backend, location: locations.Location
) -> web.StreamResponse:
    size = await backend.size(location)
    response = web.StreamResponse(headers={"Accept-Ranges": "bytes"})
    response.content_type = BYTES_CONTENT
    response.content_length = size
    await response.prepare(request)
    return response


async def _requested_range(
    request: web.Request, backend: backends.Backend, location: locations.Location
) -> ranges.RangeSpec | None:
    if "If-Range" in request.headers:
        return None
    try:
        return ranges.parse(request.headers.get("Range"))
    except errors.RangeNotSatisfiable as exc:
        size = await backend.size(location)
        raise errors.RangeNotSatisfiable(exc.message, size=size) from None


async def _send(
    request: web.Request,
    backend: backends.Backend,
    location: locations.Location,
    op: operations.Operation,
) -> web.StreamResponse:
    spec = await _requested_range(request, backend, location)
    byte_range = base.FULL
    if spec is not None:
        op.range = str(spec)
        size = await backend.size(location) if spec.needs_size else None
        byte_range = spec.to_byte_range(size)
    async with backend.get(location, byte_range=byte_range) as blob:
        served = blob.served
        length = served.length
        if length is None and blob.size is not None:
            length = blob.size - served.offset
        if spec is not None and length == 0:  # "bytes=0-" of an empty object
            raise errors.RangeNotSatisfiable("the object is empty", size=0)
        response = web.StreamResponse(status=206 if spec else 200)
        response.headers["Accept-Ranges"] = "bytes"
        response.content_type = BYTES_CONTENT
        if length is not None:
            response.content_length = length
        if spec is not None and length is not None:
            total = "*" if blob.size is None else str(blob.size)
            last = served.offset + length - 1
            response.headers["Content-Range"] = f"bytes {served.offset}-{last}/{total}"
        await response.prepare(request)
        try:
            await _write_body(request, response, blob, op)
            await response.write_eof()
        except Exception as exc:
            raise operations.ResponseBroken(response) from exc
        return response


async def _write_body(
    request: web.Request,
    response: web.StreamResponse,
    blob: base.Blob,
    op: operations.Operation,
) -> None:
    local = blob.local_file()
    transport = request.transport
    if local is not None and transport is not None and local.length > 0:
        loop = asyncio.get_running_loop()
        sent = await loop.sendfile(transport, local.file, local.offset, local.length)
        op.count(sent)
        if sent != local.length:
            raise errors.BackendError(f"sent {sent} of {local.length} bytes: the file shrank")
        return
    async for chunk in blob:
        await response.write(chunk)  # waits for the socket to drain past 64 KiB
        op.count(len(chunk))


# --------------------------------------------------------------------------- service


async def list_backends(request: web.Request) -> web.Response:
    with request.app[keys.SERVICE].lease() as current:
        body = [b.describe(default=b.id == current.default_id) for b in current]
    return web.json_response(body)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    service = request.app[keys.SERVICE]
    generation = service.current
    if service.draining:
        return web.json_response(
            {"status": "draining", "generation": generation.number}, status=503
        )
    if generation.ready:
        return web.json_response({"status": "ready", "generation": generation.number})
    problems = generation.problems
    body = {
        "status": "not_ready",
        "generation": generation.number,
        "problems": problems if problems is not None else {"*": "backends not checked yet"},
    }
    return web.json_response(body, status=503)


async def metrics(request: web.Request) -> web.Response:
    text = request.app[keys.SERVICE].metrics.render()
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


def add_routes(app: web.Application) -> None:
    app.router.add_put("/v1/images/{image_id}", put_image)
    app.router.add_get("/v1/images/{image_id}", get_image, allow_head=False)
    app.router.add_head("/v1/images/{image_id}", head_image)
    app.router.add_delete("/v1/images/{image_id}", delete_image)
    app.router.add_get("/v1/data", get_data, allow_head=False)
    app.router.add_head("/v1/data", head_data)
    app.router.add_get("/v1/backends", list_backends)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
