"""The filesystem driver's options, named and defaulted as glance_store 5.7.0 names them.

Everything that can be checked without touching a disk is checked here, so the operator can
reject a bad backend before a pod ever starts: datadir entries and their priorities, the two
datadir options set together, the decimal-written octal file permission. What needs the disk
(creating directories, reading the metadata file) happens when the driver is constructed.

Two glance quirks are kept because deployed configurations rely on them, and one is fixed:

* ``filesystem_store_file_perm`` is octal digits written as a decimal integer (``644`` means
  ``0o644``), and ``0`` means "leave the mode alone".
* ``filesystem_store_datadirs`` entries are ``path[:priority]`` split at the last colon.
* glance refuses ``filesystem_store_datadirs`` unless ``filesystem_store_datadir`` is
  explicitly emptied, because the latter has a non-empty default. Here only a datadir that was
  set explicitly conflicts; the default gives way to ``filesystem_store_datadirs``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat

import pydantic

from kglance.drivers import base

DEFAULT_DATADIR = "/var/lib/glance/images"
_PRIORITY = re.compile(r"^[+-]?\d+$")


@dataclasses.dataclass(frozen=True, slots=True)
class DatadirEntry:
    """One configured directory: its absolute path and its priority (higher is tried first)."""

    path: str
    priority: int = 0


def parse_datadir_entry(entry: str) -> DatadirEntry:
    """``"path[:priority]"`` as glance splits it: the priority follows the last colon."""
    text = entry.strip()
    path, priority = text, 0
    if ":" in text:
        path, _, raw = text.rpartition(":")
        if not _PRIORITY.match(raw.strip()):
            raise ValueError(
                f"filesystem_store_datadirs entry {entry!r}: priority {raw!r} is not an integer"
            )
        priority = int(raw)
    path = path.strip()
    if not path:
        raise ValueError(f"filesystem_store_datadirs entry {entry!r} has no path")
    if "\x00" in path:
        raise ValueError(f"filesystem_store_datadirs entry {entry!r} contains a NUL byte")
    return DatadirEntry(path=os.path.abspath(path), priority=priority)


def octal_file_mode(perm: int) -> int | None:
    """glance's ``filesystem_store_file_perm`` (``644``) as a mode (``0o644``); 0 is None."""
    if perm == 0:
        return None
    digits = str(perm)
    if perm < 0 or len(digits) > 4 or any(d not in "01234567" for d in digits):
        raise ValueError(
            f"filesystem_store_file_perm {perm} is not a file mode written in octal digits "
            "(for example 644 or 640)"
        )
    mode = int(digits, 8)
    if not mode & stat.S_IRUSR:
        raise ValueError(
            f"filesystem_store_file_perm {perm} must let the owner read the file (4xx or more)"
        )
    return mode


class FilesystemOptions(base.DriverOptions):
    filesystem_store_datadir: str | None = DEFAULT_DATADIR
    filesystem_store_datadirs: tuple[str, ...] = ()
    filesystem_store_metadata_file: str | None = None
    filesystem_store_file_perm: int = 0
    # the read chunk size; glance_store defaults to 64 KiB, kglance to 1 MiB (per-chunk overhead
    # dominates at 64 KiB: warm reads measured 7.3 GB/s there against 10.6 GB/s at 1 MiB)
    filesystem_store_chunk_size: int = pydantic.Field(default=1024 * 1024, ge=1)
    filesystem_thin_provisioning: bool = False
    filesystem_store_timeout: int = pydantic.Field(default=0, ge=0)
    filesystem_store_thread_pool_size: int = pydantic.Field(default=10, ge=1)
    filesystem_store_threadpool_threshold: int = pydantic.Field(default=75, ge=0, le=100)

    @pydantic.field_validator("filesystem_store_file_perm")
    @classmethod
    def _check_perm(cls, perm: int) -> int:
        octal_file_mode(perm)
        return perm

    @pydantic.field_validator("filesystem_store_datadir", "filesystem_store_metadata_file")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return value.strip()

    @pydantic.model_validator(mode="after")
    def _check_datadirs(self) -> FilesystemOptions:
        explicit_datadir = (
            "filesystem_store_datadir" in self.model_fields_set
            and self.filesystem_store_datadir is not None
        )
        if self.filesystem_store_datadirs and explicit_datadir:
            raise ValueError(
                "set either filesystem_store_datadir or filesystem_store_datadirs, not both"
            )
        if not self.filesystem_store_datadirs and self.filesystem_store_datadir is None:
            raise ValueError("set filesystem_store_datadir or filesystem_store_datadirs")
        self.datadir_entries()  # raises on bad entries and conflicting duplicates
        return self

    def datadir_entries(self) -> tuple[DatadirEntry, ...]:
        """The configured directories, duplicates folded, in configuration order."""
        if not self.filesystem_store_datadirs:
            assert self.filesystem_store_datadir is not None  # checked by the validator
            return (DatadirEntry(path=os.path.abspath(self.filesystem_store_datadir)),)
        seen: dict[str, DatadirEntry] = {}
        for raw in self.filesystem_store_datadirs:
            entry = parse_datadir_entry(raw)
            earlier = seen.get(entry.path)
            if earlier is not None and earlier.priority != entry.priority:
                raise ValueError(
                    f"filesystem_store_datadirs lists {entry.path} with priorities "
                    f"{earlier.priority} and {entry.priority}"
                )
            seen.setdefault(entry.path, entry)
        return tuple(seen.values())

    @property
    def file_mode(self) -> int | None:
        return octal_file_mode(self.filesystem_store_file_perm)
