"""The Ceph cluster both rbd benchmark modules use, from the environment ceph-up.sh prints.

Standard library only: ``glance_rbd`` imports it inside the glance venv, where kglance is not
installed, so neither rbd module has to import the other to know whether a cluster is there.
"""

from __future__ import annotations

import os

ENVIRONMENT = ("CEPH_CONF", "RBD_POOL")


def available() -> bool:
    return all(os.environ.get(name) for name in ENVIRONMENT)


def options() -> dict[str, object]:
    """glance_store's option names, the same for both stores (their defaults otherwise).

    ``rbd_store_user`` is set because glance's default ``None`` would become ``client.None``.
    """
    return {
        "rbd_store_ceph_conf": os.environ["CEPH_CONF"],
        "rbd_store_pool": os.environ["RBD_POOL"],
        "rbd_store_user": os.environ.get("CEPH_USER", "admin"),
    }
