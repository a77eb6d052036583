"""``filesystem_store_metadata_file``: what to tell Glance about the mount an image landed on.

The file holds one JSON object or a list of them, each with a string ``id`` and
``mountpoint`` (Nova uses them to find images on shared storage). It is read and validated
once, when the driver is built, and a bad file stops the driver from starting.

glance returned the first entry whose mountpoint was a *string* prefix of the image path, so
``/mnt/a`` claimed images in ``/mnt/ab``. Here a mountpoint must contain the datadir by whole
path components, and the most specific (longest) matching mountpoint wins. Images always sit
directly in a datadir, so the entry is decided once per datadir.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from kglance.drivers import errors
from kglance.drivers.filesystem import datadirs

logger = logging.getLogger(__name__)

Entry = Mapping[str, str]


def load(path: str) -> tuple[Entry, ...]:
    """The entries of the metadata file; ``ConfigurationError`` when it is missing or bad."""
    try:
        with open(path, encoding="utf-8") as file:
            document = json.load(file)
    except OSError as exc:
        raise errors.ConfigurationError(
            f"cannot read filesystem_store_metadata_file {path}: {exc.strerror or exc}"
        ) from exc
    except ValueError as exc:
        raise errors.ConfigurationError(
            f"filesystem_store_metadata_file {path} is not valid JSON: {exc}"
        ) from exc
    items = [document] if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise errors.ConfigurationError(
            f"filesystem_store_metadata_file {path} must hold a JSON object or a list of them"
        )
    return tuple(_validated(path, index, item) for index, item in enumerate(items))


def _validated(path: str, index: int, item: Any) -> Entry:
    where = f"filesystem_store_metadata_file {path}, entry {index}"
    if not isinstance(item, dict):
        raise errors.ConfigurationError(f"{where}: not a JSON object")
    for key in ("id", "mountpoint"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise errors.ConfigurationError(f"{where}: {key!r} must be a non-empty string")
    for key, value in item.items():
        if not isinstance(value, str):
            raise errors.ConfigurationError(f"{where}: the value of {key!r} must be a string")
    return dict(item)


def entry_for(datadir: datadirs.Datadir, entries: Sequence[Entry]) -> Entry:
    """The entry whose mountpoint holds ``datadir``, the most specific one; {} when none."""
    candidates: list[tuple[int, Entry]] = []
    for entry in entries:
        mountpoint = os.path.normpath(os.path.abspath(entry["mountpoint"]))
        real_mountpoint = os.path.realpath(mountpoint)
        if any(
            datadirs.is_within(directory, root)
            for directory in (datadir.path, datadir.real)
            for root in (mountpoint, real_mountpoint)
        ):
            candidates.append((len(real_mountpoint), entry))
    if not candidates:
        logger.warning("no entry of the metadata file has a mountpoint holding %s", datadir.path)
        return {}
    return max(candidates, key=lambda candidate: candidate[0])[1]
