"""The rbd driver's options: glance_store 5.7.0's six, plus a few of ours with ``rbd_store_`` names.

glance_store's options keep their names, defaults and units:

* ``rbd_store_chunk_size`` is MiB and sets the image's object size: the object order is
  ``floor(log2(chunk))``, as glance computes it. librbd refuses orders above 25 (32 MiB), so
  larger values are refused here instead of on the first upload.
* ``rbd_store_user`` ``None`` (or empty) means librados's default user. glance turned ``None``
  into the user ``'None'``; here it is never stringified. A ``client.`` prefix is accepted and
  dropped, since librados adds it.
* ``rados_connect_timeout`` ``-1`` leaves the timeouts to ceph.conf; ``>= 0`` sets
  ``rados_osd_op_timeout``, ``rados_mon_op_timeout`` and ``client_mount_timeout`` (0 means
  "wait forever" to Ceph, as in glance).

Ours:

* ``rbd_store_keyring``: a keyring file, for when ceph.conf does not name one for the user.
* ``rbd_store_image_features``: comma-separated feature names (``layering,exclusive-lock``)
  or a bitmask. Unset, librbd uses the cluster configuration's ``rbd default features``, which
  is also what glance_store passes (it reads that setting itself).
* ``rbd_store_trash_images_with_snapshots``: glance moves an image that still has snapshots
  to the RBD trash and calls it deleted; ``false`` refuses the delete with ``HasSnapshot``.
* ``rbd_store_thread_pool_size``: threads for the blocking librados/librbd calls of this
  backend (aio reads and writes do not hold one while in flight).
* ``rbd_store_writes_in_flight`` / ``rbd_store_reads_in_flight``: how many aio requests one
  upload (4 MiB each) or one download (2 MiB each) keeps queued in librbd. The defaults keep
  8 MiB of writes and 6 MiB of reads in flight per stream.
"""

from __future__ import annotations

import math

import pydantic

from kglance.drivers import base

MiB = 1024 * 1024
MAX_ORDER = 25  # librbd: objects of 4 KiB (order 12) to 32 MiB (order 25)

# librbd's feature bits (include/rbd/features.h); striping and data-pool are not set this way
FEATURE_BITS = {
    "layering": 1,
    "exclusive-lock": 4,
    "object-map": 8,
    "fast-diff": 16,
    "deep-flatten": 32,
    "journaling": 64,
}
_REQUIRES = {  # feature -> what librbd insists it comes with
    "object-map": "exclusive-lock",
    "fast-diff": "object-map",
    "journaling": "exclusive-lock",
}


def parse_features(value: str) -> int:
    """``"layering,exclusive-lock"`` or ``"5"`` as librbd's bitmask; ``ValueError`` if bad."""
    text = value.strip()
    if text.isdigit():
        bits = int(text)
        unknown = bits & ~sum(FEATURE_BITS.values())
        if unknown:
            raise ValueError(f"unknown or unsupported feature bits {unknown:#x}")
        names = {name for name, bit in FEATURE_BITS.items() if bits & bit}
    else:
        names = {part.strip() for part in text.split(",") if part.strip()}
        unknown_names = sorted(names - FEATURE_BITS.keys())
        if unknown_names:
            known = ", ".join(FEATURE_BITS)
            raise ValueError(f"unknown image features {unknown_names} (known: {known})")
        bits = sum(FEATURE_BITS[name] for name in names)
    for feature, needed in _REQUIRES.items():
        if feature in names and needed not in names:
            raise ValueError(f"image feature {feature} needs {needed}")
    return bits


class RbdOptions(base.DriverOptions):
    rbd_store_chunk_size: int = pydantic.Field(default=8, ge=1, le=2**MAX_ORDER // MiB)  # MiB
    rbd_store_pool: str = pydantic.Field(default="images", min_length=1)
    rbd_store_user: str | None = None
    rbd_store_ceph_conf: str = ""
    rados_connect_timeout: int = pydantic.Field(default=-1, ge=-1)
    rbd_thin_provisioning: bool = False
    # ours
    rbd_store_keyring: str | None = None
    rbd_store_image_features: str | None = None
    rbd_store_trash_images_with_snapshots: bool = True
    rbd_store_thread_pool_size: int = pydantic.Field(default=8, ge=1, le=256)
    rbd_store_writes_in_flight: int = pydantic.Field(default=2, ge=1, le=128)
    rbd_store_reads_in_flight: int = pydantic.Field(default=3, ge=1, le=128)

    @pydantic.field_validator("rbd_store_user")
    @classmethod
    def _user_id(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        user = value.strip()
        return user.removeprefix("client.") or None

    @pydantic.field_validator("rbd_store_keyring")
    @classmethod
    def _keyring(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @pydantic.field_validator("rbd_store_image_features")
    @classmethod
    def _features(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_features(value)
        return value.strip()

    @property
    def object_order(self) -> int:
        return int(math.log2(self.rbd_store_chunk_size * MiB))

    @property
    def features(self) -> int | None:
        """The bitmask for ``RBD.create``; ``None``: librbd's configured default."""
        if self.rbd_store_image_features is None:
            return None
        return parse_features(self.rbd_store_image_features)

    @property
    def growth_start(self) -> int:
        """Bytes an image of unknown size first grows by (glance: one chunk, then doubling)."""
        return self.rbd_store_chunk_size * MiB
