"""Reachability of a backend, probed by the operator through the same driver the sidecar runs.

The operator renders a second copy of the namespace's configuration for itself (its own
volume root, the same credentials) and builds the one backend being probed from it with the
sidecar's own config reader, so a probe that passes means the sidecar's configuration works,
not merely that some host answers. The rendered files hold credentials; the caller keeps them
in a private temporary directory only for the length of one probe.

A file backend's data lives on a volume the operator usually does not mount. Building its
driver would create the directory in the operator's filesystem and then report a healthy
empty disk, so a directory that is not there is ``Unknown`` (``NotMountedInOperator``), never
``True`` and never ``False``: the operator cannot see it, which says nothing about the pods.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import Any

from kglance.drivers import errors, registry
from kglance.drivers.filesystem import options as filesystem_options
from kglance.operator import names
from kglance.operator.conditions import Condition
from kglance.sidecar import config

REACHABLE = "Reachable"
PROBE_TIMEOUT = 30.0


def write_files(directory: str, files: Mapping[str, bytes]) -> str:
    for name, content in files.items():
        path = os.path.join(directory, name)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(content)
    return os.path.join(directory, names.CONFIG_KEY)


def datadirs(options: Mapping[str, Any]) -> list[str]:
    """The directories a file backend's options name."""
    entries: Sequence[str] = options.get("filesystem_store_datadirs") or ()
    paths = [filesystem_options.parse_datadir_entry(e).path for e in entries]
    single = options.get("filesystem_store_datadir")
    return paths or ([str(single)] if single else [])


def unknown(reason: str, message: str) -> Condition:
    return Condition(REACHABLE, "Unknown", reason, message)


def _load(
    directory: str, files: Mapping[str, bytes], *, backend_id: str, drivers: registry.Registry
) -> config.BackendSpec | Condition:
    """The backend's spec from the written files, or the condition saying why there is none."""
    path = write_files(directory, files)
    try:
        service = config.read(path, drivers=drivers)
    except errors.StoreError as exc:
        return unknown("ConfigurationError", _relative(exc.message, directory))
    spec = next((b for b in service.backends if b.id == backend_id), None)
    if spec is None:
        return unknown("NotRendered", f"backend {backend_id} is not in the configuration")
    if spec.type == "file":
        missing = [d for d in datadirs(spec.options) if not os.path.isdir(d)]
        if missing:
            return unknown(
                "NotMountedInOperator",
                f"the operator does not mount the volume of file backend {backend_id} "
                f"({', '.join(missing)}); pods using it are not affected",
            )
    return spec


async def probe(
    files: Mapping[str, bytes], *, directory: str, backend_id: str, drivers: registry.Registry
) -> Condition:
    """Write the rendered ``files`` into ``directory`` (the ``config_dir`` they were rendered
    for), build ``backend_id`` from them and run its driver's ``check()``."""
    loaded = await asyncio.to_thread(
        _load, directory, files, backend_id=backend_id, drivers=drivers
    )
    if isinstance(loaded, Condition):
        return loaded
    try:
        driver = drivers.build(loaded.type, loaded.options, backend_id=loaded.id)
    except errors.StoreError as exc:
        return Condition(REACHABLE, "False", type(exc).__name__, exc.message)
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await driver.check()
    except errors.StoreError as exc:
        return Condition(REACHABLE, "False", type(exc).__name__, exc.message)
    except TimeoutError:
        return Condition(REACHABLE, "False", "Timeout", f"no answer in {PROBE_TIMEOUT:g} s")
    finally:
        await driver.aclose()
    return Condition(REACHABLE, "True", "Probed", f"the {loaded.type} backend answered")


def _relative(message: str, directory: str) -> str:
    """Messages without the probe's temporary directory, which means nothing to a user."""
    return message.replace(directory + os.sep, "")
