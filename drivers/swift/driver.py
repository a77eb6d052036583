"""``SwiftDriver``: the verbs, composed from the modules of this package.

Construction reads the accounts file and prepares authenticators, the connection pool and two
thread pools (short calls, and request bodies that stream for as long as an upload lasts), with
no network traffic; ``check`` authenticates. Every swiftclient call runs on those threads.

Writes follow one rule: the image becomes visible with the last request, and only after the
image stream ended cleanly (size and checksum checked by the pipeline). A single PUT holds back
the last chunk until then, so Swift cannot complete the object early; a large image is visible
only when its manifest is PUT. Duplicates are refused with a ``HEAD`` before any byte is sent,
and by ``If-None-Match: *`` on the committing PUT. Swift evaluates that header when a PUT
starts, so two overlapping uploads of one name would both succeed (last writer wins): uploads
of one image id through one driver are therefore serialised, and the second finds the first's
image. Across processes Glance's own image state machine keeps uploads of one image apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
from collections.abc import AsyncIterator, Iterable
from typing import Any

from kglance.drivers import base, errors, locations
from kglance.drivers._threads import BlockingRunner
from kglance.drivers.swift import (
    accounts,
    auth,
    connections,
    naming,
    objects,
    options,
    reading,
    removal,
    segments,
)
from kglance.drivers.swift.bodies import BodyAborted, BodyPipe
from kglance.drivers.swift.locating import Locator, Target
from kglance.drivers.swift.transfers import Transfer, settle

logger = logging.getLogger(__name__)


async def _shielded(coro: Any) -> Any:
    """Run cleanup to its end even if the caller is cancelled again meanwhile."""
    task = asyncio.ensure_future(coro)
    await settle([task])
    return task.result()


@dataclasses.dataclass
class _Replaced:
    """The pieces of an image that an overwrite leaves without a manifest."""

    segments: list[Target] = dataclasses.field(default_factory=list)
    sub_manifests: list[Target] = dataclasses.field(default_factory=list)
    dlo_manifest: str | None = None  # X-Object-Manifest: container/prefix


def _ambiguous(exc: BaseException | None) -> bool:
    """A failure after which the request may still have taken effect in Swift."""
    return isinstance(exc, errors.RemoteUnavailable)


class SwiftDriver(base.Driver):
    Options = options.SwiftOptions
    type_name = "swift"
    schemes = locations.SwiftLocation.schemes
    features = (
        base.Feature.READ
        | base.Feature.WRITE
        | base.Feature.RANGED_READ
        | base.Feature.UNSIZED_WRITE
        | base.Feature.MULTIPART
        | base.Feature.REUSABLE
    )
    write_chunk_size = 1024 * 1024

    # internal knobs, class-level defaults that tests lower on an instance
    listing_page_size = 10_000  # objects per container listing page (Swift's maximum)
    max_manifest_segments = 1_000  # Swift's default max_manifest_segments
    pipe_depth = 2  # chunks queued per streamed request body
    delete_concurrency = 8  # segment DELETEs in flight

    def __init__(self, options: options.SwiftOptions, *, backend_id: str) -> None:
        if not isinstance(options, SwiftDriver.Options):
            raise TypeError(f"SwiftDriver needs SwiftOptions, not {type(options).__name__}")
        super().__init__(options, backend_id=backend_id)
        self._options = options
        if options.swift_store_cacert is not None and not os.access(
            options.swift_store_cacert, os.R_OK
        ):
            raise errors.ConfigurationError(
                f"swift_store_cacert {options.swift_store_cacert!r} is not a readable file"
            )
        connections.hide_request_logs()
        default, references = accounts.configured(options)
        self._locator = Locator(
            default=default,
            references=references,
            multi_tenant=options.swift_store_multi_tenant,
        )
        tls = auth.Tls(
            cacert=options.swift_store_cacert, insecure=options.swift_store_auth_insecure
        )
        endpoint = auth.Endpoint(
            override=options.swift_store_endpoint,
            service_type=options.swift_store_service_type,
            interface=options.swift_store_endpoint_type,
            region=options.swift_store_region,
        )
        pool_size = options.swift_store_thread_pool_size
        self._pool = connections.ConnectionPool(
            tls=tls, timeout=options.swift_store_timeout, max_idle=pool_size
        )
        self._clients: dict[str | None, connections.SwiftClient] = {}
        for account in [default, *references.values()]:
            source = auth.authenticator(
                account,
                tls=tls,
                timeout=options.swift_store_timeout,
                endpoint=endpoint,
                expire_soon=options.swift_store_expire_soon_interval,
            )
            tokens = auth.TokenCache(
                source,
                expire_soon=options.swift_store_expire_soon_interval,
                storage_url=options.swift_store_endpoint,
            )
            self._clients[account.reference] = connections.SwiftClient(
                tokens=tokens, pool=self._pool
            )
        self._calls = BlockingRunner(pool_size, name=f"kglance-swift-{backend_id}")
        self._transfers = BlockingRunner(pool_size, name=f"kglance-swift-put-{backend_id}")
        self._writing: dict[tuple[str | None, str | None, str, str], list[Any]] = {}

    # ------------------------------------------------------------------ plumbing

    def _client(self, target: Target) -> connections.SwiftClient:
        return self._clients[target.account.reference]

    @property
    def _service(self) -> connections.SwiftClient:
        return self._clients[self._locator.default.reference]

    async def _storage_url(self) -> str:
        known = self._service.tokens.known_storage_url
        if known is not None:
            return known
        return await self._calls.run(self._service.storage_url)

    async def _target(self, location: locations.Location) -> Target:
        storage_url = None
        if self._locator.multi_tenant:
            storage_url = await self._storage_url()
        return self._locator.target(location, storage_url=storage_url)

    async def _new_target(self, image_id: str) -> tuple[Target, locations.SwiftLocation]:
        opts = self._options
        default = self._locator.default
        if self._locator.multi_tenant:
            container = naming.multi_tenant_container(image_id, opts.swift_store_container)
            storage_url = await self._storage_url()
            target = Target(default, container, image_id, url=storage_url)
        else:
            container = naming.get_container_name(
                image_id, opts.swift_store_container, opts.swift_store_multiple_containers_seed
            )
            storage_url = None
            target = Target(default, container, image_id)
        location = self._locator.new_location(container, image_id, storage_url=storage_url)
        return target, location

    @contextlib.asynccontextmanager
    async def _exclusive(self, target: Target) -> AsyncIterator[None]:
        """Uploads of one object through this driver, one at a time."""
        key = (target.account.reference, target.url, target.container, target.obj)
        entry = self._writing.setdefault(key, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._writing[key]

    async def _head(self, target: Target, *, newest: bool = False) -> dict[str, str] | None:
        return await self._calls.run(
            objects.head_object, self._client(target), target, newest=newest
        )

    # ------------------------------------------------------------------ writing

    async def add(
        self,
        image_id: str,
        data: AsyncIterator[bytes],
        *,
        size: int | None,
        mode: base.WriteMode = "create",
    ) -> base.Stored:
        target, location = await self._new_target(image_id)
        client = self._client(target)
        create = mode == "create"
        async with self._exclusive(target):
            await self._calls.run(
                objects.ensure_container,
                client,
                target,
                # a per-image container cannot exist ahead of its image
                create=self._options.swift_store_create_container_on_put
                or self._locator.multi_tenant,
                headers={},
            )
            old = await self._head(target)
            if old is not None and create:
                raise errors.AlreadyExists(f"Swift already has an image at {target}")
            replaced = await self._replaced_segments(target, old)
            if size is not None and size < self._options.large_object_bytes:
                stored = await self._put_whole(target, location, data, size=size, create=create)
            else:
                stored = await self._put_segmented(target, location, data, size=size, create=create)
            await self._forget(target, replaced)
            return stored

    async def _put_whole(
        self,
        target: Target,
        location: locations.SwiftLocation,
        data: AsyncIterator[bytes],
        *,
        size: int,
        create: bool,
    ) -> base.Stored:
        """One PUT with ``Content-Length``; the last chunk is held back until the stream is
        known to be good, so Swift cannot complete the object before that."""
        client = self._client(target)
        headers = objects.CREATE_ONLY if create else {}

        def send(pipe: BodyPipe) -> str:
            return objects.put_streamed(client, target, pipe.body(size), headers=headers)

        transfer = Transfer(self._transfers, send, depth=self.pipe_depth)
        try:
            held: bytes | None = None
            async for chunk in data:
                if transfer.done:
                    break  # the request ended early: its error is raised below
                if held is not None:
                    await transfer.pipe.put(held)
                held = chunk
            else:
                if held is not None:
                    await transfer.pipe.put(held)
                transfer.pipe.close()
            etag = await transfer.result()
        except BaseException as exc:
            salvaged = await _shielded(self._after_failed_put(transfer, target, exc, size=size))
            if salvaged is not None:
                return base.Stored(location=location, size=size, md5=salvaged)
            failure = transfer.failure()
            if isinstance(exc, BodyAborted) and failure is not None:
                raise failure from None
            raise
        return base.Stored(location=location, size=size, md5=etag)

    async def _after_failed_put(
        self, transfer: Transfer, target: Target, exc: BaseException, *, size: int
    ) -> str | None:
        """Make sure a failed single PUT left nothing; an ETag if it did succeed after all."""
        await transfer.abandon()
        failure = transfer.failure()
        succeeded = transfer.task.done() and not transfer.task.cancelled() and failure is None
        if succeeded:  # complete in Swift, but the caller gave up (cancelled) meanwhile
            await self._calls.run(objects.delete_object, self._client(target), target)
            return None
        if exc is failure and transfer.pipe.finished and _ambiguous(failure):
            # the whole body was sent and the answer was lost: look whether the PUT took
            headers = await self._head(target, newest=True)
            if headers is not None and headers.get("content-length") == str(size):
                logger.warning("%s: the PUT's answer was lost but the object is there", target)
                return headers.get("etag", "").strip('"') or None
        return None

    async def _put_segmented(
        self,
        target: Target,
        location: locations.SwiftLocation,
        data: AsyncIterator[bytes],
        *,
        size: int | None,
        create: bool,
    ) -> base.Stored:
        client = self._client(target)
        prefix = naming.segment_prefix(target.obj, secrets.token_hex(8))

        def send(name: str, pipe: BodyPipe, length: int | None) -> str:
            segment = dataclasses.replace(target, obj=name)
            return objects.put_streamed(client, segment, pipe.body(length), headers={})

        upload = segments.SegmentedUpload(
            runner=self._transfers,
            send=send,
            prefix=prefix,
            segment_size=self._options.segment_bytes,
            concurrency=self._options.swift_store_upload_concurrency,
            total_size=size,
            depth=self.pipe_depth,
        )
        headers = objects.CREATE_ONLY if create else {}
        sub_manifests: list[str] = []
        commit: asyncio.Task[Any] | None = None
        try:
            parts = await upload.run(data)
            if not parts:  # an empty image of undeclared size: no segment was started
                commit = asyncio.ensure_future(
                    self._calls.run(self._put_empty, client, target, headers)
                )
            else:
                commit = asyncio.ensure_future(
                    self._calls.run(
                        self._commit_manifest, client, target, parts, prefix, headers, sub_manifests
                    )
                )
            await settle([commit])
            commit.result()
        except BaseException as exc:
            committed = await _shielded(
                self._after_failed_upload(target, upload, sub_manifests, commit, exc)
            )
            if committed:
                return base.Stored(location=location, size=upload.size)
            raise
        return base.Stored(location=location, size=upload.size)

    @staticmethod
    def _put_empty(client: connections.SwiftClient, target: Target, headers: dict[str, str]) -> str:
        def request(url: str, token: str, conn: connections.HttpConn) -> str:
            import swiftclient.client

            etag: str = swiftclient.client.put_object(
                url,
                token,
                target.container,
                target.obj,
                contents=b"",
                content_length=0,
                headers=dict(headers),
                http_conn=conn,
            )
            return etag

        try:
            return client.call(request, what=f"PUT {target}", url=target.url, replayable=False)
        except Exception as exc:
            if connections.status_of(exc) == 412:
                raise errors.AlreadyExists(f"Swift already has an image at {target}") from exc
            raise connections.translate(exc, what=f"PUT {target}", write=True) from exc

    def _commit_manifest(
        self,
        client: connections.SwiftClient,
        target: Target,
        parts: list[segments.Segment],
        prefix: str,
        headers: dict[str, str],
        sub_manifests: list[str],
    ) -> str:
        """PUT the manifest (nested under sub-manifests past ``max_manifest_segments``)."""
        level = parts
        depth = 0
        while len(level) > self.max_manifest_segments:
            depth += 1
            grouped: list[segments.Segment] = []
            for number, group in enumerate(
                segments.groups(level, limit=self.max_manifest_segments), start=1
            ):
                name = f"{prefix}manifest-{depth}-{number:05d}"
                sub_manifests.append(name)
                etag = objects.put_manifest(
                    client,
                    dataclasses.replace(target, obj=name),
                    segments.manifest_entries(target.container, group),
                    headers={},
                )
                grouped.append(
                    segments.Segment(name=name, size=sum(s.size for s in group), etag=etag)
                )
            level = grouped
        entries = segments.manifest_entries(target.container, level)
        return objects.put_manifest(client, target, entries, headers=headers)

    async def _after_failed_upload(
        self,
        target: Target,
        upload: segments.SegmentedUpload,
        sub_manifests: list[str],
        commit: asyncio.Task[Any] | None,
        exc: BaseException,
    ) -> bool:
        """Remove what a failed segmented upload wrote; True if it had committed after all."""
        await upload.abandon()
        client = self._client(target)
        committed = commit is not None and commit.done() and not commit.cancelled()
        if committed:
            assert commit is not None
            failure = commit.exception()
            if failure is None:
                committed = True
            elif _ambiguous(failure) and exc is failure:
                committed = await self._is_our_manifest(target, upload)
            else:
                committed = False
        if committed and not isinstance(exc, asyncio.CancelledError):
            logger.warning("%s: the manifest PUT's answer was lost but the image is there", target)
            return True
        if committed:  # cancelled after the image became visible: take it away again
            await self._calls.run(objects.delete_static_large_object, client, target)
            return False
        leftovers = [*upload.started, *sub_manifests]
        if leftovers:
            await removal.delete_objects(
                self._calls,
                client,
                (dataclasses.replace(target, obj=name) for name in leftovers),
                concurrency=self.delete_concurrency,
            )
        return False

    async def _is_our_manifest(self, target: Target, upload: segments.SegmentedUpload) -> bool:
        """Whether the object at ``target`` is what ``upload`` committed: its manifest (by
        segment names), or the empty object of an empty upload."""
        headers = await self._head(target, newest=True)
        if headers is None:
            return False
        if not upload.started:
            return headers.get("content-length") == "0"
        if headers.get("x-static-large-object", "").lower() != "true":
            return False
        entries = await self._calls.run(objects.get_manifest, self._client(target), target)
        if not entries:
            return False
        first = str(entries[0].get("name", ""))
        return first.startswith(f"/{target.container}/{upload.prefix}")

    async def _replaced_segments(self, target: Target, old: dict[str, str] | None) -> _Replaced:
        """What an overwrite must remove afterwards: an SLO's segments or a DLO's segments."""
        replaced = _Replaced()
        if old is None:
            return replaced
        if old.get("x-static-large-object", "").lower() == "true":
            entries = await self._calls.run(objects.get_manifest, self._client(target), target)
            for entry in entries or []:
                container, _, name = str(entry.get("name", "")).lstrip("/").partition("/")
                if container and name:
                    found = Target(target.account, container, name, url=target.url)
                    nested = str(entry.get("sub_slo", "")).lower() == "true"
                    (replaced.sub_manifests if nested else replaced.segments).append(found)
        replaced.dlo_manifest = old.get("x-object-manifest") or None
        return replaced

    async def _forget(self, target: Target, replaced: _Replaced) -> None:
        """Best effort: the segments of an image that an overwrite replaced."""
        client = self._client(target)
        try:
            if replaced.dlo_manifest is not None:
                await removal.delete_dlo_segments(
                    self._calls,
                    client,
                    target,
                    replaced.dlo_manifest,
                    page_size=self.listing_page_size,
                    concurrency=self.delete_concurrency,
                )
            await removal.delete_objects(
                self._calls, client, replaced.segments, concurrency=self.delete_concurrency
            )
            for manifest in replaced.sub_manifests:
                await self._calls.run(objects.delete_static_large_object, client, manifest)
        except errors.StoreError as exc:
            logger.warning("%s: segments of the replaced image remain: %s", target, exc.message)

    # ------------------------------------------------------------------ reading

    @contextlib.asynccontextmanager
    async def get(
        self, location: locations.Location, *, byte_range: base.ByteRange = base.FULL
    ) -> AsyncIterator[base.Blob]:
        target = await self._target(location)
        reader = reading.ResumingReader(
            self._client(target), target, retries=self._options.swift_store_retry_get_count
        )
        blob: reading.SwiftBlob | None = None
        try:
            await self._calls.run_to_completion(reader.open, byte_range)
            blob = reading.SwiftBlob(reader, self._calls)
            yield blob
        finally:
            if blob is not None:
                await blob.close()
            else:
                await self._calls.run_to_completion(reader.close)

    async def size(self, location: locations.Location) -> int:
        target = await self._target(location)
        headers = await self._head(target)
        if headers is None:
            raise errors.NotFound(f"Swift has no object at {location}")
        value = headers.get("content-length", "")
        if not value.isdigit():
            raise errors.BackendError(f"HEAD {target}: no valid Content-Length ({value!r})")
        return int(value)

    # ------------------------------------------------------------------ deleting

    async def delete(self, location: locations.Location) -> None:
        target = await self._target(location)
        client = self._client(target)
        await removal.delete_image(
            self._calls,
            client,
            target,
            page_size=self.listing_page_size,
            concurrency=self.delete_concurrency,
        )
        if self._locator.multi_tenant:
            # the per-image container goes with its image (kept while it holds anything else)
            await self._calls.run(objects.delete_container, client, target)

    # ------------------------------------------------------------------ locations

    def owns(self, location: locations.Location) -> bool:
        return self._locator.owns(location, storage_url=self._service.tokens.known_storage_url)

    async def locate(self, image_id: str) -> locations.Location:
        _, location = await self._new_target(image_id)
        return location

    # ------------------------------------------------------------------ multi-tenant ACLs

    async def set_acls(
        self,
        location: locations.Location,
        *,
        public: bool = False,
        read_tenants: Iterable[str] = (),
        write_tenants: Iterable[str] = (),
    ) -> None:
        """Who may read and write the image's container (multi-tenant stores only).

        As glance_store: ``X-Container-Read`` is ``*:*`` when public, else ``<tenant>:*`` for each
        read tenant; ``X-Container-Write`` lists the write tenants plus
        ``swift_store_admin_tenants``. Empty lists clear the ACLs. The arguments are never
        modified (glance extended the caller's write list in place).
        """
        if not self._locator.multi_tenant:
            raise errors.Unsupported(
                f"backend {self.backend_id!r}: ACLs need swift_store_multi_tenant = True"
            )
        target = await self._target(location)
        headers = acl_headers(
            public=public,
            read_tenants=read_tenants,
            write_tenants=[*write_tenants, *self._options.swift_store_admin_tenants],
        )
        await self._calls.run(objects.post_container, self._client(target), target, headers)

    # ------------------------------------------------------------------ lifecycle

    async def check(self) -> None:
        await self._calls.run(self._probe)

    def _probe(self) -> None:
        def request(url: str, token: str, conn: connections.HttpConn) -> None:
            import swiftclient.client

            swiftclient.client.head_account(url, token, http_conn=conn)

        try:
            self._service.call(request, what="HEAD account")
        except Exception as exc:
            raise connections.translate(exc, what="HEAD account") from exc

    async def aclose(self) -> None:
        self._calls.close()
        self._transfers.close()
        self._pool.close()


def acl_headers(
    *, public: bool, read_tenants: Iterable[str], write_tenants: Iterable[str]
) -> dict[str, str]:
    """glance_store's container ACL headers for multi-tenant images."""
    readers = list(dict.fromkeys(read_tenants))
    writers = list(dict.fromkeys(write_tenants))
    read = "*:*" if public else ",".join(f"{tenant}:*" for tenant in readers)
    return {
        "X-Container-Read": read,
        "X-Container-Write": ",".join(f"{tenant}:*" for tenant in writers),
    }
