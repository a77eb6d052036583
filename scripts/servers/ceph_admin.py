"""Monitor commands for ceph-up.sh, run with Debian's /usr/bin/python3 (it has python3-rados).

Why not the ``ceph`` CLI: each CLI call costs most of a second to start and connect, and a
one-node cluster needs a dozen commands. One librados session per step keeps start-up fast,
and timeouts set on the session make a broken cluster fail instead of hang.

usage:
  ceph_admin.py CONF osd-new UUID ID
  ceph_admin.py CONF setup --pool NAME:APP ... --rbd-pool NAME --restricted CLIENT KEYRING
  ceph_admin.py CONF health --wait SECONDS
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import rados
import rbd

OP_TIMEOUT_SECONDS = "30"


def connect(conf: str, *, timeout: int) -> Any:
    cluster = rados.Rados(
        conffile=conf,
        conf={"rados_mon_op_timeout": OP_TIMEOUT_SECONDS, "rados_osd_op_timeout": "60"},
    )
    cluster.connect(timeout=timeout)
    return cluster


def mon(cluster: Any, **command: Any) -> bytes:
    ret, out, err = cluster.mon_command(json.dumps(command), b"")
    if ret != 0:
        raise SystemExit(f"ceph {command['prefix']}: {err} (ret {ret})")
    return bytes(out)


def osd_new(cluster: Any, *, uuid: str, osd_id: int) -> None:
    mon(cluster, prefix="osd new", uuid=uuid, id=osd_id)


def wait_osds_up(cluster: Any, *, deadline: float) -> None:
    while True:
        dump = json.loads(mon(cluster, prefix="osd dump", format="json"))
        if dump["osds"] and all(osd["up"] for osd in dump["osds"]):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"OSDs not up: {[(o['osd'], o['up']) for o in dump['osds']]}")
        time.sleep(0.2)


def create_pools(cluster: Any, pools: list[tuple[str, str]]) -> None:
    existing = set(cluster.list_pools())
    for name, app in pools:
        if name not in existing:
            mon(cluster, prefix="osd pool create", pool=name, pg_num=8, pgp_num=8)
        mon(
            cluster,
            prefix="osd pool application enable",
            pool=name,
            app=app,
            yes_i_really_mean_it=True,
        )


def create_restricted_client(cluster: Any, *, client: str, pool: str, keyring: str) -> None:
    """A cinder/glance-style user: only what ``profile rbd`` grants, and only on POOL."""
    caps = [
        "mon",
        "profile rbd",
        "osd",
        f"profile rbd pool={pool}",
        "mgr",
        f"profile rbd pool={pool}",
    ]
    out = mon(cluster, prefix="auth get-or-create", entity=f"client.{client}", caps=caps)
    with open(keyring, "wb") as f:
        f.write(out)


def setup(cluster: Any, args: argparse.Namespace) -> None:
    wait_osds_up(cluster, deadline=time.monotonic() + args.wait)
    pools = [(name, app) for name, _, app in (spec.partition(":") for spec in args.pool)]
    create_pools(cluster, pools)
    with cluster.open_ioctx(args.rbd_pool) as ioctx:
        rbd.RBD().pool_init(ioctx, False)
    client, keyring = args.restricted
    create_restricted_client(cluster, client=client, pool=args.rbd_pool, keyring=keyring)


def cluster_state(cluster: Any) -> tuple[dict[str, Any], list[str]]:
    """The health report, plus what else keeps the cluster from being ready for tests."""
    health = json.loads(mon(cluster, prefix="health", detail="detail", format="json"))
    pending = []
    if not json.loads(mon(cluster, prefix="mgr stat", format="json"))["available"]:
        pending.append("no active mgr")  # without it PG states are unknown and `df` fails
    else:
        ret, out, err = cluster.mgr_command(
            json.dumps({"prefix": "pg stat", "format": "json"}), b""
        )
        if ret != 0:
            pending.append(f"pg stat: {err}")
        else:
            pgs = json.loads(out)["pg_summary"]
            states = {s["name"]: s["num"] for s in pgs["num_pg_by_state"]}
            if states.get("active+clean", 0) != pgs["num_pgs"]:
                pending.append(f"PGs not all active+clean: {states}")
    return health, pending


def wait_healthy(cluster: Any, *, wait: float) -> None:
    """Wait for HEALTH_OK; a full OSD or stuck PGs must fail start-up, not hang the tests."""
    deadline = time.monotonic() + wait
    while True:
        health, pending = cluster_state(cluster)
        if health["status"] == "HEALTH_OK" and not pending:
            return
        if health["status"] == "HEALTH_ERR" or time.monotonic() > deadline:
            for name, check in health.get("checks", {}).items():
                print(f"{name}: {check['summary']['message']}", file=sys.stderr)
                for line in check.get("detail", []):
                    print(f"    {line['message']}", file=sys.stderr)
            for reason in pending:
                print(reason, file=sys.stderr)
            raise SystemExit(f"cluster is {health['status']} (see above)")
        time.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("conf")
    parser.add_argument("--connect-timeout", type=int, default=60)
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("osd-new")
    new.add_argument("uuid")
    new.add_argument("id", type=int)
    st = sub.add_parser("setup")
    st.add_argument("--pool", action="append", required=True, metavar="NAME:APP")
    st.add_argument("--rbd-pool", required=True)
    st.add_argument("--restricted", nargs=2, required=True, metavar=("CLIENT", "KEYRING"))
    st.add_argument("--wait", type=float, default=60)
    hl = sub.add_parser("health")
    hl.add_argument("--wait", type=float, default=60)
    args = parser.parse_args()

    try:
        cluster = connect(args.conf, timeout=args.connect_timeout)
    except rados.Error as e:
        raise SystemExit(f"cannot connect to the cluster in {args.conf}: {e}") from e
    try:
        if args.command == "osd-new":
            osd_new(cluster, uuid=args.uuid, osd_id=args.id)
        elif args.command == "setup":
            setup(cluster, args)
        else:
            wait_healthy(cluster, wait=args.wait)
    except rados.Error as e:
        raise SystemExit(f"{args.command}: {type(e).__name__}: {e}") from e
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
