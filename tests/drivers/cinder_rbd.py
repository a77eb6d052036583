"""RBD images as the fake Cinder's volumes, for the RBD connector test (blocking helpers)."""

from __future__ import annotations

import contextlib
import re

from tests.fakes import cinder_api


def backing(*, conf: str, pool: str, keyring: str) -> cinder_api.RbdBacking:
    import rados

    with open(conf) as handle:
        text = handle.read()
    with open(keyring) as handle:
        keyring_text = handle.read()
    # mon_host = [v2:127.0.0.1:23300,v1:127.0.0.1:26789]: the connector speaks v1 addresses
    addresses = re.findall(r"v1:([0-9.]+):(\d+)", text) or re.findall(
        r"mon[ _]host\s*=\s*([0-9.]+):(\d+)", text
    )
    hosts = [host for host, _ in addresses]
    ports = [port for _, port in addresses]

    def run(operation: str, name: str, size: int) -> bool:
        import rbd

        cluster = rados.Rados(conffile=conf)
        cluster.connect(timeout=30)
        try:
            with cluster.open_ioctx(pool) as ioctx:
                if operation == "create":
                    rbd.RBD().create(ioctx, name, size, old_format=False, features=1)
                elif operation == "resize":
                    with rbd.Image(ioctx, name) as image:
                        image.resize(size)
                elif operation == "remove":
                    with contextlib.suppress(rbd.ImageNotFound):
                        rbd.RBD().remove(ioctx, name)
                elif operation == "exists":
                    return name in rbd.RBD().list(ioctx)
        finally:
            cluster.shutdown()
        return True

    return cinder_api.RbdBacking(
        conf=conf,
        pool=pool,
        keyring=keyring_text,
        user="admin",
        hosts=hosts,
        ports=ports,
        run=run,
    )


def remove_all(rbd_backing: cinder_api.RbdBacking, volume_ids: list[str]) -> None:
    for volume_id in volume_ids:
        rbd_backing.run("remove", f"volume-{volume_id}", 0)
