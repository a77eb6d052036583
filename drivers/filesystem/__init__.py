"""The ``file`` store: images as plain files in one or more local or mounted directories.

This is glance_store's filesystem driver rebuilt around what it got wrong: every image is
written to a hidden, locked temporary file, made durable with ``fsync`` and only then given
its name (atomically, never overwriting unless asked), so readers never see partial images
and two uploads of one id cannot both win. Locations are confined to the configured
directories, ids are never trusted as paths, and all blocking file I/O runs on threads.

Modules: ``options`` (the glance-named options), ``datadirs`` (directories, priorities,
free-space choice, confinement), ``metadata`` (the mountpoint metadata file), ``tempfiles``
(temporary names and the crash-leftover sweep), ``writing`` and ``reading`` (the data paths),
``threads`` (handing work to threads without leaking on cancellation), ``driver``.
"""

from kglance.drivers.filesystem.driver import FilesystemDriver
from kglance.drivers.filesystem.options import FilesystemOptions

__all__ = ["FilesystemDriver", "FilesystemOptions"]
