"""A wire-level fake of the Cinder v3 API and the bit of Keystone v3 in front of it.

No real Cinder can run in the test sandbox, so this aiohttp server speaks the HTTP that
python-cinderclient and keystoneauth1 send: ``POST /identity/v3/auth/tokens`` (password and
application-credential methods, a catalog pointing back here), volumes (create, show, list
with ``name``, delete, metadata, ``os-extend``, ``os-update_readonly_flag``) and attachments
(create, update, ``os-complete``, delete; microversion 3.27+ checked from the
``OpenStack-API-Version`` header), with Cinder's error bodies (``{"badRequest": {...}}``).

It is a fake of the *protocol*, not of our driver: states move on their own clock
(``creating`` → ``available`` after ``delay`` seconds, ``extending`` → ``available``,
``deleting`` → gone), attachments move volumes through ``reserved``/``attaching``/``in-use``,
read-only volumes refuse ``rw`` attachments, and a non-multiattach volume takes one
attachment at a time. Storage is real: each volume is a sparse file under ``root`` (the
LOCAL connector's ``device_path``), or, with ``backing="rbd"``, an RBD image in a real Ceph
pool (the RBD connector's connection info). Tests inject failures with ``fail_next``.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import json
import os
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

PROJECT_ID = "6f0c2b5c0e6a4e0fa1b1c0de00000001"
USER = "glance"
PASSWORD = "glance-secret"
APP_CREDENTIAL_ID = "app-cred-1"
APP_CREDENTIAL_SECRET = "app-cred-secret"
STATIC_TOKEN = "static-admin-token"
MIN_ATTACH_MICROVERSION = (3, 27)


@dataclasses.dataclass
class RbdBacking:
    """Where RBD-backed volumes live, and what the connector needs to reach them."""

    conf: str
    pool: str
    keyring: str  # the keyring file's contents, passed in connection info as cinderlib does
    user: str
    hosts: list[str]
    ports: list[str]
    run: Callable[..., Any]  # blocking helpers: create(name, bytes), resize(name, bytes), remove


@dataclasses.dataclass
class FakeVolume:
    id: str
    name: str | None
    size: int
    status: str
    metadata: dict[str, str]
    volume_type: str | None
    created_at: str
    readonly: bool = False
    multiattach: bool = False
    attachments: list[str] = dataclasses.field(default_factory=list)

    def view(self) -> dict[str, Any]:
        metadata = dict(self.metadata)
        if self.readonly:
            metadata["readonly"] = "True"  # Cinder shows the admin metadata flag here
        return {
            "id": self.id,
            "name": self.name,
            "size": self.size,
            "status": self.status,
            "metadata": metadata,
            "volume_type": self.volume_type or "__DEFAULT__",
            "created_at": self.created_at,
            "updated_at": None,
            "multiattach": self.multiattach,
            "attachments": [{"attachment_id": a, "volume_id": self.id} for a in self.attachments],
            "bootable": "false",
            "encrypted": False,
            "availability_zone": "nova",
            "links": [],
        }


@dataclasses.dataclass
class FakeAttachment:
    id: str
    volume_id: str
    mode: str
    status: str = "reserved"
    connector: dict[str, Any] | None = None

    def view(self, connection_info: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "volume_id": self.volume_id,
            "status": self.status,
            "attach_mode": self.mode,
            "instance": None,
            "attached_at": None,
            "detached_at": None,
            "connection_info": connection_info or {},
        }


class FakeCinder:
    """The server's state; tests read it directly (``volumes``, ``attachments``)."""

    def __init__(
        self,
        root: str,
        *,
        unit: int,
        delay: float = 0.05,
        backing: str = "file",
        rbd: RbdBacking | None = None,
    ) -> None:
        self.root = root
        self.unit = unit  # bytes per size unit (Cinder: GiB)
        self.delay = delay
        self.backing = backing
        self.rbd = rbd
        self.volumes: dict[str, FakeVolume] = {}
        self.attachments: dict[str, FakeAttachment] = {}
        self.tokens: set[str] = {STATIC_TOKEN}
        self.failures: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()
        self.max_attachments_seen = 0
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._timers: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------- test controls

    def fail_next(self, operation: str, times: int = 1) -> None:
        """Make the next ``times`` calls of ``operation`` fail: ``create`` (500), ``create-quota``
        (413), ``extend`` (the volume goes to ``error_extending``), ``attachment_update``
        (500), ``attachment_create-busy`` (a transitional 400), ``delete`` (500)."""
        self.failures[operation] += times

    def _take_failure(self, operation: str) -> bool:
        if self.failures[operation] > 0:
            self.failures[operation] -= 1
            return True
        return False

    @property
    def auth_url(self) -> str:
        return f"{self.url}/identity/v3"

    @property
    def endpoint(self) -> str:
        return f"{self.url}/volume/v3/{PROJECT_ID}"

    def backing_files(self) -> list[str]:
        return sorted(os.listdir(self.root)) if os.path.isdir(self.root) else []

    def leftovers(self) -> list[str]:
        names = [f"volume:{v.id}:{v.status}" for v in self.volumes.values()]
        names += [f"attachment:{a.id}" for a in self.attachments.values()]
        names += [f"file:{f}" for f in self.backing_files()]
        return names

    # ------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        os.makedirs(self.root, exist_ok=True)
        app = web.Application(middlewares=[self._errors])
        app.router.add_post("/identity/v3/auth/tokens", self._issue_token)
        app.router.add_get("/identity/v3", self._identity_version)
        base = "/volume/v3/{project}"
        app.router.add_get("/volume/", self._versions)
        app.router.add_post(base + "/volumes", self._create)
        app.router.add_get(base + "/volumes/detail", self._list)
        app.router.add_get(base + "/volumes", self._list)
        app.router.add_get(base + "/volumes/{id}", self._show)
        app.router.add_delete(base + "/volumes/{id}", self._delete)
        app.router.add_post(base + "/volumes/{id}/metadata", self._set_metadata)
        app.router.add_post(base + "/volumes/{id}/action", self._volume_action)
        app.router.add_post(base + "/attachments", self._attachment_create)
        app.router.add_get(base + "/attachments", self._attachment_list)
        app.router.add_put(base + "/attachments/{id}", self._attachment_update)
        app.router.add_post(base + "/attachments/{id}/action", self._attachment_action)
        app.router.add_delete(base + "/attachments/{id}", self._attachment_delete)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        for timer in list(self._timers):
            timer.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------- plumbing

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/volume/v3/"):
            if request.headers.get("X-Auth-Token") not in self.tokens:
                return _error(401, "unauthorized", "The request you have made requires auth.")
            if request.match_info.get("project") not in (PROJECT_ID, None):
                return _error(404, "itemNotFound", "no such project")
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except _Fault as fault:
            return _error(fault.status, fault.kind, fault.message)

    def _later(self, action: Callable[[], None]) -> None:
        async def run() -> None:
            await asyncio.sleep(self.delay)
            action()

        task = asyncio.ensure_future(run())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    def _volume(self, request: web.Request) -> FakeVolume:
        volume = self.volumes.get(request.match_info["id"])
        if volume is None:
            raise _Fault(
                404, "itemNotFound", f"Volume {request.match_info['id']} could not be found."
            )
        return volume

    def _path(self, volume_id: str) -> str:
        return os.path.join(self.root, f"volume-{volume_id}")

    async def _storage(self, operation: str, volume: FakeVolume) -> None:
        if self.backing == "rbd":
            assert self.rbd is not None
            size = volume.size * self.unit
            await asyncio.to_thread(self.rbd.run, operation, f"volume-{volume.id}", size)
            return
        await asyncio.to_thread(
            _file_storage, operation, self._path(volume.id), volume.size * self.unit
        )

    # ------------------------------------------------------------- keystone

    async def _identity_version(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "version": {
                    "id": "v3.14",
                    "status": "stable",
                    "links": [{"rel": "self", "href": self.auth_url + "/"}],
                }
            }
        )

    async def _issue_token(self, request: web.Request) -> web.Response:
        body = await request.json()
        identity = body["auth"]["identity"]
        methods = identity["methods"]
        if "password" in methods:
            user = identity["password"]["user"]
            if user.get("name") != USER or user.get("password") != PASSWORD:
                return _error(401, "error", "The request you have made requires authentication.")
        elif "application_credential" in methods:
            cred = identity["application_credential"]
            if cred.get("id") != APP_CREDENTIAL_ID or cred.get("secret") != APP_CREDENTIAL_SECRET:
                return _error(401, "error", "Invalid application credential.")
        else:
            return _error(401, "error", f"unsupported methods {methods}")
        token = uuid.uuid4().hex
        self.tokens.add(token)
        self.calls["token"] += 1
        now = datetime.datetime.now(datetime.UTC)
        expires = now + datetime.timedelta(hours=1)
        catalog = [
            {
                "type": "volumev3",
                "name": "cinderv3",
                "id": "cinder",
                "endpoints": [
                    {
                        "id": f"cinder-{interface}",
                        "interface": interface,
                        "region": "RegionOne",
                        "region_id": "RegionOne",
                        "url": self.endpoint,
                    }
                    for interface in ("public", "internal", "admin")
                ],
            }
        ]
        token_body = {
            "token": {
                "methods": methods,
                "user": {"id": "u1", "name": USER, "domain": {"id": "default", "name": "Default"}},
                "project": {
                    "id": PROJECT_ID,
                    "name": "service",
                    "domain": {"id": "default", "name": "Default"},
                },
                "roles": [{"id": "r1", "name": "member"}],
                "catalog": catalog,
                "issued_at": now.isoformat().replace("+00:00", "Z"),
                "expires_at": expires.isoformat().replace("+00:00", "Z"),
            }
        }
        return web.json_response(token_body, status=201, headers={"X-Subject-Token": token})

    # ------------------------------------------------------------- volumes

    async def _versions(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "versions": [
                    {
                        "id": "v3.0",
                        "status": "CURRENT",
                        "version": "3.70",
                        "min_version": "3.0",
                        "links": [],
                    }
                ]
            }
        )

    async def _create(self, request: web.Request) -> web.Response:
        self.calls["create"] += 1
        body = (await request.json())["volume"]
        if self._take_failure("create"):
            raise _Fault(500, "computeFault", "The server has either erred or is incapable.")
        if self._take_failure("create-quota"):
            raise _Fault(413, "overLimit", "VolumeSizeExceedsAvailableQuota: quota exceeded")
        size = int(body["size"])
        if size < 1:
            raise _Fault(400, "badRequest", "Invalid input received: size must be >= 1")
        volume = FakeVolume(
            id=str(uuid.uuid4()),
            name=body.get("name"),
            size=size,
            status="creating",
            metadata={str(k): str(v) for k, v in (body.get("metadata") or {}).items()},
            volume_type=body.get("volume_type"),
            created_at=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f"),
        )
        self.volumes[volume.id] = volume
        await self._storage("create", volume)

        def created() -> None:
            if volume.status == "creating":
                volume.status = "available"

        self._later(created)
        return web.json_response({"volume": volume.view()}, status=202)

    async def _list(self, request: web.Request) -> web.Response:
        name = request.query.get("name")
        found = [v.view() for v in self.volumes.values() if name is None or v.name == name]
        return web.json_response({"volumes": found})

    async def _show(self, request: web.Request) -> web.Response:
        return web.json_response({"volume": self._volume(request).view()})

    async def _delete(self, request: web.Request) -> web.Response:
        volume = self._volume(request)
        if volume.status not in ("available", "error", "error_extending", "error_restoring"):
            raise _Fault(
                400,
                "badRequest",
                "Invalid volume: Volume status must be available or error or error_restoring "
                f"or error_extending or error_managing and must not be migrating, attached, "
                f"belong to a group, have snapshots or be disassociated from snapshots after "
                f"volume transfer. (current status {volume.status})",
            )
        if self._take_failure("delete"):
            raise _Fault(500, "computeFault", "The server has either erred or is incapable.")
        volume.status = "deleting"

        def deleted() -> None:
            self.volumes.pop(volume.id, None)

        async def remove() -> None:
            await self._storage("remove", volume)
            await asyncio.sleep(self.delay)
            deleted()

        task = asyncio.ensure_future(remove())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)
        return web.Response(status=202)

    async def _set_metadata(self, request: web.Request) -> web.Response:
        volume = self._volume(request)
        metadata = (await request.json())["metadata"]
        volume.metadata.update({str(k): str(v) for k, v in metadata.items()})
        return web.json_response({"metadata": volume.metadata})

    async def _volume_action(self, request: web.Request) -> web.Response:
        volume = self._volume(request)
        body = await request.json()
        if "os-extend" in body:
            return await self._extend(request, volume, int(body["os-extend"]["new_size"]))
        if "os-update_readonly_flag" in body:
            flag = body["os-update_readonly_flag"]["readonly"]
            if volume.status not in ("available", "in-use"):
                raise _Fault(400, "badRequest", f"Invalid volume: status is {volume.status}")
            volume.readonly = flag in (True, "true", "True")
            return web.Response(status=202)
        raise _Fault(400, "badRequest", f"unsupported action {sorted(body)}")

    async def _extend(self, request: web.Request, volume: FakeVolume, size: int) -> web.Response:
        allowed = ("available",) if _microversion(request) < (3, 42) else ("available", "in-use")
        if volume.status not in allowed:
            raise _Fault(
                400,
                "badRequest",
                f"Invalid volume: Volume status must be {allowed} to extend, "
                f"currently {volume.status}.",
            )
        if size <= volume.size:
            raise _Fault(
                400,
                "badRequest",
                "Invalid input received: New size for extend must be greater than current size.",
            )
        self.calls["extend"] += 1
        previous = volume.status
        volume.status = "extending"
        fail = self._take_failure("extend")

        async def extended() -> None:
            await asyncio.sleep(self.delay)
            if fail:
                volume.status = "error_extending"
                return
            volume.size = size
            await self._storage("resize", volume)
            volume.status = previous

        task = asyncio.ensure_future(extended())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)
        return web.Response(status=202)

    # ------------------------------------------------------------- attachments

    def _attachment(self, request: web.Request) -> FakeAttachment:
        if _microversion(request) < MIN_ATTACH_MICROVERSION:
            raise _Fault(404, "itemNotFound", "attachments need microversion 3.27")
        attachment = self.attachments.get(request.match_info["id"])
        if attachment is None:
            raise _Fault(404, "itemNotFound", f"Attachment {request.match_info['id']} not found")
        return attachment

    async def _attachment_create(self, request: web.Request) -> web.Response:
        if _microversion(request) < MIN_ATTACH_MICROVERSION:
            raise _Fault(404, "itemNotFound", "attachments need microversion 3.27")
        body = (await request.json())["attachment"]
        volume = self.volumes.get(body["volume_uuid"])
        if volume is None:
            raise _Fault(404, "itemNotFound", f"Volume {body['volume_uuid']} could not be found.")
        mode = body.get("mode", "rw") if _microversion(request) >= (3, 54) else "rw"
        if self._take_failure("attachment_create-busy"):
            raise _Fault(
                400,
                "badRequest",
                "Invalid volume: Volume status must be available or "
                "downloading to reserve, but the current status is attaching.",
            )
        busy = volume.status != "available" and not (
            volume.multiattach and volume.status == "in-use"
        )
        if busy:
            raise _Fault(
                400,
                "badRequest",
                "Invalid volume: Volume status must be available or "
                f"downloading to reserve, but the current status is {volume.status}.",
            )
        if volume.readonly and mode == "rw":
            raise _Fault(
                400,
                "badRequest",
                f"Invalid volume: Volume {volume.id} is read-only; "
                "it cannot be attached in rw mode.",
            )
        attachment = FakeAttachment(id=str(uuid.uuid4()), volume_id=volume.id, mode=mode)
        self.attachments[attachment.id] = attachment
        volume.attachments.append(attachment.id)
        volume.status = "reserved"
        self.max_attachments_seen = max(self.max_attachments_seen, len(self.attachments))
        self.calls["attachment_create"] += 1
        return web.json_response({"attachment": attachment.view(None)})

    async def _attachment_list(self, request: web.Request) -> web.Response:
        return web.json_response({"attachments": [a.view(None) for a in self.attachments.values()]})

    async def _attachment_update(self, request: web.Request) -> web.Response:
        attachment = self._attachment(request)
        body = (await request.json())["attachment"]
        if self._take_failure("attachment_update"):
            raise _Fault(500, "computeFault", "Unable to update the attachment: driver failure")
        connector = body.get("connector")
        if not isinstance(connector, dict) or "host" not in connector:
            raise _Fault(400, "badRequest", "Invalid input received: connector needs host")
        attachment.connector = connector
        attachment.status = "attaching"
        volume = self.volumes[attachment.volume_id]
        volume.status = "attaching"
        info = self._connection_info(volume, attachment)
        return web.json_response({"attachment": attachment.view(info)})

    def _connection_info(self, volume: FakeVolume, attachment: FakeAttachment) -> dict[str, Any]:
        if self.backing == "rbd":
            assert self.rbd is not None
            return {
                "driver_volume_type": "rbd",
                "data": {
                    "name": f"{self.rbd.pool}/volume-{volume.id}",
                    "hosts": self.rbd.hosts,
                    "ports": self.rbd.ports,
                    "cluster_name": "ceph",
                    "auth_enabled": True,
                    "auth_username": self.rbd.user,
                    "keyring": self.rbd.keyring,
                    "volume_id": volume.id,
                    "discard": True,
                    "access_mode": attachment.mode,
                },
            }
        return {
            "driver_volume_type": "local",
            "data": {"device_path": self._path(volume.id), "access_mode": attachment.mode},
        }

    async def _attachment_action(self, request: web.Request) -> web.Response:
        attachment = self._attachment(request)
        body = await request.json()
        if "os-complete" not in body or _microversion(request) < (3, 44):
            raise _Fault(400, "badRequest", f"unsupported action {sorted(body)}")
        if attachment.connector is None:
            raise _Fault(400, "badRequest", "Invalid attachment: not updated with a connector")
        attachment.status = "attached"
        self.volumes[attachment.volume_id].status = "in-use"
        return web.Response(status=204)

    async def _attachment_delete(self, request: web.Request) -> web.Response:
        attachment = self._attachment(request)
        del self.attachments[attachment.id]
        volume = self.volumes.get(attachment.volume_id)
        if volume is not None:
            volume.attachments.remove(attachment.id)
            if not volume.attachments:
                volume.status = "available"
        return web.json_response({"attachments": []})


class _Fault(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps({kind: {"message": message, "code": status}}),
        content_type="application/json",
    )


def _microversion(request: web.Request) -> tuple[int, int]:
    header = request.headers.get("OpenStack-API-Version", "")
    for part in header.split(","):
        service, _, version = part.strip().partition(" ")
        if service == "volume" and "." in version:
            major, minor = version.split(".", 1)
            return int(major), int(minor)
    return (3, 0)


def _file_storage(operation: str, path: str, size: int) -> None:
    """A volume's backing file: sparse, created, grown or removed."""
    if operation == "remove":
        if os.path.exists(path):
            os.unlink(path)
        return
    with open(path, "ab") as backing:
        backing.truncate(size)
