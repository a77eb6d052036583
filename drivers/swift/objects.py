"""The blocking Swift requests the driver makes, each translated into kglance's errors.

Every function takes the ``SwiftClient`` of the account and the ``Target`` it acts on and runs
on a driver thread. Statuses a caller must tell apart are mapped here once: 412 on a
create-only PUT is ``AlreadyExists``, 404 on a delete is success, 409 on a container delete
("not empty") is reported as ``False``.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Mapping
from typing import Any

from kglance.drivers import errors
from kglance.drivers.swift import connections
from kglance.drivers.swift.bodies import Body
from kglance.drivers.swift.locating import Target

logger = logging.getLogger(__name__)

CREATE_ONLY = {"If-None-Match": "*"}


def _sc() -> Any:
    import swiftclient.client

    return swiftclient.client


def _fail(exc: BaseException, *, what: str, write: bool = False) -> errors.StoreError:
    return connections.translate(exc, what=what, write=write)


def head_object(
    client: connections.SwiftClient, target: Target, *, newest: bool = False
) -> dict[str, str] | None:
    """The object's headers (lower-case names), or None when it does not exist."""
    what = f"HEAD {target}"
    headers = {"X-Newest": "true"} if newest else None

    def request(url: str, token: str, conn: connections.HttpConn) -> dict[str, str]:
        result: dict[str, str] = _sc().head_object(
            url, token, target.container, target.obj, http_conn=conn, headers=headers
        )
        return result

    try:
        return client.call(request, what=what, url=target.url)
    except Exception as exc:
        if connections.status_of(exc) == 404:
            return None
        raise _fail(exc, what=what) from exc


def ensure_container(
    client: connections.SwiftClient, target: Target, *, create: bool, headers: Mapping[str, str]
) -> None:
    """The target's container exists afterwards, or an error names the option to set."""
    what = f"HEAD container {target.container}"

    def head(url: str, token: str, conn: connections.HttpConn) -> None:
        _sc().head_container(url, token, target.container, http_conn=conn)

    try:
        client.call(head, what=what, url=target.url)
        return
    except Exception as exc:
        if connections.status_of(exc) != 404:
            raise _fail(exc, what=what) from exc
    if not create:
        raise errors.BackendError(
            f"the container {target.container} does not exist in Swift; create it or set "
            "swift_store_create_container_on_put = True"
        )
    what = f"PUT container {target.container}"

    def put(url: str, token: str, conn: connections.HttpConn) -> None:
        _sc().put_container(url, token, target.container, http_conn=conn, headers=dict(headers))

    try:
        client.call(put, what=what, url=target.url, write=True)
    except Exception as exc:
        raise _fail(exc, what=what, write=True) from exc
    logger.info("created Swift container %s", target.container)


def _object_path(parsed: urllib.parse.ParseResult, target: Target) -> str:
    return "{}/{}/{}".format(
        parsed.path.rstrip("/"),
        urllib.parse.quote(target.container, safe=""),
        urllib.parse.quote(target.obj),
    )


def put_streamed(
    client: connections.SwiftClient,
    target: Target,
    body: Body,
    *,
    headers: Mapping[str, str],
) -> str:
    """PUT ``target`` with a streamed ``body``; Swift's ETag of what it stored.

    A ``SizedBody`` goes with ``Content-Length``, a plain ``Body`` chunked. The request is made
    on swiftclient's HTTP connection directly (see ``bodies``). Never retried: the body is gone.
    """
    what = f"PUT {target}"

    def request(url: str, token: str, conn: connections.HttpConn) -> str:
        from swiftclient.exceptions import ClientException

        parsed, http = conn
        http.request("PUT", _object_path(parsed, target), body, {**headers, "X-Auth-Token": token})
        response = http.getresponse()
        content = response.read()
        if not 200 <= response.status < 300:
            raise ClientException.from_response(response, "Object PUT failed", content)
        etag: str = (response.getheader("etag") or "").strip('"')
        return etag

    try:
        return client.call(request, what=what, url=target.url, replayable=False, write=True)
    except Exception as exc:
        if connections.status_of(exc) == 412:
            raise errors.AlreadyExists(f"Swift already has an image at {target}") from exc
        raise _fail(exc, what=what, write=True) from exc


def put_manifest(
    client: connections.SwiftClient,
    target: Target,
    entries: list[dict[str, object]],
    *,
    headers: Mapping[str, str],
) -> str:
    """PUT a static large object manifest; its ETag (md5 of the segment ETags)."""
    what = f"PUT manifest {target}"
    body = json.dumps(entries).encode()

    def request(url: str, token: str, conn: connections.HttpConn) -> str:
        etag: str = _sc().put_object(
            url,
            token,
            target.container,
            target.obj,
            contents=body,
            content_length=len(body),
            query_string="multipart-manifest=put",
            headers=dict(headers),
            http_conn=conn,
        )
        return etag

    try:
        # not replayed: a lost answer to a create-only PUT must not turn into a 412
        return client.call(request, what=what, url=target.url, replayable=False, write=True)
    except Exception as exc:
        if connections.status_of(exc) == 412:
            raise errors.AlreadyExists(f"Swift already has an image at {target}") from exc
        raise _fail(exc, what=what, write=True) from exc


def get_manifest(client: connections.SwiftClient, target: Target) -> list[dict[str, Any]] | None:
    """The segments a static large object lists, or None when the object is gone."""
    what = f"GET manifest {target}"

    def request(url: str, token: str, conn: connections.HttpConn) -> bytes:
        _, body = _sc().get_object(
            url,
            token,
            target.container,
            target.obj,
            query_string="multipart-manifest=get",
            http_conn=conn,
        )
        data: bytes = body
        return data

    try:
        body = client.call(request, what=what, url=target.url)
    except Exception as exc:
        if connections.status_of(exc) == 404:
            return None
        raise _fail(exc, what=what) from exc
    try:
        entries = json.loads(body)
    except ValueError as exc:
        raise errors.BackendError(f"{what}: the manifest is not JSON") from exc
    if not isinstance(entries, list):
        raise errors.BackendError(f"{what}: the manifest is not a list")
    return entries


def delete_object(client: connections.SwiftClient, target: Target) -> bool:
    """DELETE one object; False when it was already gone."""
    what = f"DELETE {target}"

    def request(url: str, token: str, conn: connections.HttpConn) -> None:
        _sc().delete_object(url, token, target.container, target.obj, http_conn=conn)

    try:
        client.call(request, what=what, url=target.url, write=True)
    except Exception as exc:
        if connections.status_of(exc) == 404:
            return False
        raise _fail(exc, what=what, write=True) from exc
    return True


def delete_static_large_object(client: connections.SwiftClient, target: Target) -> None:
    """``DELETE ?multipart-manifest=delete``: the manifest and every segment it lists.

    Swift answers 200 before it knows how the bulk delete went and reports the outcome in the
    body, so the JSON body is read and checked; swiftclient's ``delete_object`` drops it.
    """
    what = f"DELETE static large object {target}"

    def request(url: str, token: str, conn: connections.HttpConn) -> dict[str, Any]:
        parsed, http = conn
        path = _object_path(parsed, target) + "?multipart-manifest=delete"
        http.request("DELETE", path, "", {"X-Auth-Token": token, "Accept": "application/json"})
        response = http.getresponse()
        body = response.read()
        if response.status == 404:
            return {"Response Status": "404 Not Found"}
        if not 200 <= response.status < 300:
            from swiftclient.exceptions import ClientException

            raise ClientException.from_response(response, "SLO delete failed", body)
        try:
            result: dict[str, Any] = json.loads(body)
        except ValueError as exc:
            raise errors.BackendError(f"{what}: Swift's answer is not JSON") from exc
        return result

    try:
        result = client.call(request, what=what, url=target.url, write=True)
    except Exception as exc:
        raise _fail(exc, what=what, write=True) from exc
    status = str(result.get("Response Status", ""))
    problems = result.get("Errors") or []
    if status.startswith("404"):
        return
    if not status.startswith("2") or problems:
        shown = "; ".join(str(p) for p in problems[:3])
        raise errors.BackendError(f"{what}: Swift reported {status} {shown}".rstrip())


def list_prefix(
    client: connections.SwiftClient,
    target: Target,
    *,
    container: str,
    prefix: str,
    marker: str,
    limit: int,
) -> list[str]:
    """One page of object names in ``container`` starting with ``prefix``, after ``marker``."""
    what = f"GET container {container}?prefix={prefix}"

    def request(url: str, token: str, conn: connections.HttpConn) -> list[str]:
        _, listing = _sc().get_container(
            url, token, container, prefix=prefix, marker=marker, limit=limit, http_conn=conn
        )
        return [str(item["name"]) for item in listing if "name" in item]

    try:
        return client.call(request, what=what, url=target.url)
    except Exception as exc:
        if connections.status_of(exc) == 404:
            return []
        raise _fail(exc, what=what) from exc


def post_container(
    client: connections.SwiftClient, target: Target, headers: Mapping[str, str]
) -> None:
    what = f"POST container {target.container}"

    def request(url: str, token: str, conn: connections.HttpConn) -> None:
        _sc().post_container(url, token, target.container, dict(headers), http_conn=conn)

    try:
        client.call(request, what=what, url=target.url, write=True)
    except Exception as exc:
        raise _fail(exc, what=what, write=True) from exc


def head_container(client: connections.SwiftClient, target: Target) -> dict[str, str]:
    what = f"HEAD container {target.container}"

    def request(url: str, token: str, conn: connections.HttpConn) -> dict[str, str]:
        headers: dict[str, str] = _sc().head_container(url, token, target.container, http_conn=conn)
        return headers

    try:
        return client.call(request, what=what, url=target.url)
    except Exception as exc:
        raise _fail(exc, what=what) from exc


def delete_container(client: connections.SwiftClient, target: Target) -> bool:
    """DELETE the target's container; False when it is not empty (409) or already gone."""
    what = f"DELETE container {target.container}"

    def request(url: str, token: str, conn: connections.HttpConn) -> None:
        _sc().delete_container(url, token, target.container, http_conn=conn)

    try:
        client.call(request, what=what, url=target.url, write=True)
    except Exception as exc:
        if connections.status_of(exc) in (404, 409):
            return False
        raise _fail(exc, what=what, write=True) from exc
    return True
