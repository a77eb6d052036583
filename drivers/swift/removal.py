"""Deleting images, whatever kind of object holds them, and the segments of failed uploads.

``delete_image`` looks at the object first (``HEAD``):

* a static large object is deleted with ``?multipart-manifest=delete``, which removes the
  manifest and every segment it lists (nested manifests included); Swift reports the outcome in
  the body, which is checked (``objects.delete_static_large_object``);
* a dynamic large object (``X-Object-Manifest: <container>/<prefix>``, what glance_store wrote)
  has its segments listed page after page (glance read only the first page, leaking segments of
  images with more than 10,000) and deleted concurrently, then the manifest;
* anything else is one ``DELETE``.

Segments go first and the manifest last, so an interrupted delete leaves a manifest that a
retried delete finds again, never orphaned segments. A missing object is success.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Iterable

from kglance.drivers._threads import BlockingRunner
from kglance.drivers.swift import connections, objects
from kglance.drivers.swift.locating import Target

logger = logging.getLogger(__name__)


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes", "on")


async def delete_objects(
    runner: BlockingRunner,
    client: connections.SwiftClient,
    targets: Iterable[Target],
    *,
    concurrency: int,
) -> None:
    """DELETE every target, ``concurrency`` at a time; missing ones are fine."""
    slots = asyncio.Semaphore(concurrency)

    async def one(target: Target) -> None:
        async with slots:
            await runner.run(objects.delete_object, client, target)

    results = await asyncio.gather(*(one(t) for t in targets), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise failures[0]


async def delete_dlo_segments(
    runner: BlockingRunner,
    client: connections.SwiftClient,
    target: Target,
    manifest: str,
    *,
    page_size: int,
    concurrency: int,
) -> int:
    """Delete every object under a DLO's ``container/prefix``; how many were listed."""
    container, _, prefix = urllib.parse.unquote(manifest).lstrip("/").partition("/")
    if not container or not prefix:
        # an empty prefix would be the whole container: refuse rather than guess
        logger.warning("%s: X-Object-Manifest %r names no prefix; segments kept", target, manifest)
        return 0
    listed = 0
    marker = ""
    while True:
        names = await runner.run(
            objects.list_prefix,
            client,
            target,
            container=container,
            prefix=prefix,
            marker=marker,
            limit=page_size,
        )
        if not names:
            return listed
        listed += len(names)
        segments = [Target(target.account, container, name, url=target.url) for name in names]
        await delete_objects(runner, client, segments, concurrency=concurrency)
        marker = names[-1]


async def delete_image(
    runner: BlockingRunner,
    client: connections.SwiftClient,
    target: Target,
    *,
    page_size: int,
    concurrency: int,
) -> bool:
    """Delete the image at ``target`` and its segments; False when there was none."""
    headers = await runner.run(objects.head_object, client, target)
    if headers is None:
        return False
    if _true(headers.get("x-static-large-object")):
        await runner.run(objects.delete_static_large_object, client, target)
        return True
    manifest = headers.get("x-object-manifest")
    if manifest:
        await delete_dlo_segments(
            runner, client, target, manifest, page_size=page_size, concurrency=concurrency
        )
    await runner.run(objects.delete_object, client, target)
    return True
