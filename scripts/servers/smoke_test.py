"""Prove that the servers from ceph-up.sh and swift-up.sh work, with the clients the drivers use.

Why a script and not pytest: it checks the test infrastructure itself (servers, credentials,
Python bindings), so a broken setup shows up as one clear failure before any driver test runs.

usage: python smoke_test.py [ENV_FILE ...] [--only rados,rbd,s3,rgw-swift,swift,ceph-health]

ENV_FILE holds the KEY=value lines the up scripts print (DIR/env); values from the files win over
the process environment. Run with the project venv after link-ceph-bindings.sh and
`pip install -e '.[s3,swift]'`. Exits non-zero on the first failed section.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

SECTIONS = ("rados", "rbd", "s3", "rgw-swift", "swift", "ceph-health")
MiB = 1024 * 1024


class SmokeFailure(Exception):
    """A check saw the wrong answer (as opposed to a client library raising)."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


def read_env_files(paths: list[Path]) -> dict[str, str]:
    env = dict(os.environ)
    for path in paths:
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                env[key.strip()] = value.strip()
    return env


def need(env: Mapping[str, str], *names: str) -> list[str]:
    missing = [name for name in names if not env.get(name)]
    if missing:
        raise SmokeFailure(f"missing settings {missing}: pass the up scripts' env files")
    return [env[name] for name in names]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def ceph_connect(conf: str, *, user: str) -> Any:
    import rados

    cluster = rados.Rados(
        conffile=conf,
        rados_id=user,
        conf={"rados_mon_op_timeout": "30", "rados_osd_op_timeout": "30"},
    )
    cluster.connect(timeout=30)
    return cluster


def check_rados(env: Mapping[str, str]) -> None:
    conf, pool = need(env, "CEPH_CONF", "RBD_POOL")
    cluster = ceph_connect(conf, user=env.get("CEPH_USER", "admin"))
    try:
        with cluster.open_ioctx(pool) as ioctx:
            name, data = unique("smoke-obj"), os.urandom(MiB + 17)
            ioctx.write_full(name, data)
            expect(ioctx.read(name, len(data) + 1) == data, "rados read != written data")
            expect(ioctx.read(name, 10, 1000) == data[1000:1010], "rados ranged read")
            ioctx.set_xattr(name, "kglance", b"v")
            expect(ioctx.get_xattr(name, "kglance") == b"v", "rados xattr round trip")
            expect(ioctx.stat(name)[0] == len(data), "rados stat size")
            ioctx.remove_object(name)
    finally:
        cluster.shutdown()


def check_ceph_health(env: Mapping[str, str]) -> None:
    """Last, after the uploads: a full memstore OSD makes writes hang, so say so plainly."""
    (conf,) = need(env, "CEPH_CONF")
    cluster = ceph_connect(conf, user=env.get("CEPH_USER", "admin"))
    try:
        command = json.dumps({"prefix": "health", "detail": "detail", "format": "json"})
        health = json.loads(cluster.mon_command(command, b"")[1])
        expect(
            health["status"] == "HEALTH_OK",
            f"ceph health is {health['status']}: {json.dumps(health['checks'])}",
        )
    finally:
        cluster.shutdown()


def check_rbd(env: Mapping[str, str]) -> None:
    import rados
    import rbd

    conf, pool, user = need(env, "CEPH_CONF", "RBD_POOL", "CEPH_RESTRICTED_USER")
    cluster = ceph_connect(conf, user=env.get("CEPH_USER", "admin"))
    try:
        with cluster.open_ioctx(pool) as ioctx:
            lib, image, clone = rbd.RBD(), unique("smoke-img"), unique("smoke-clone")
            features = rbd.RBD_FEATURE_LAYERING | rbd.RBD_FEATURE_EXCLUSIVE_LOCK
            lib.create(ioctx, image, 16 * MiB, old_format=False, features=features)
            data = os.urandom(MiB)
            with rbd.Image(ioctx, image) as img:
                img.write(data, 4 * MiB)
                expect(img.read(4 * MiB, MiB) == data, "rbd read != written data")
                img.create_snap("snap")
                img.protect_snap("snap")
            lib.clone(ioctx, image, "snap", ioctx, clone, features=rbd.RBD_FEATURE_LAYERING)
            with rbd.Image(ioctx, clone) as img:
                expect(img.read(4 * MiB, MiB) == data, "rbd clone does not show the parent's data")
            with rbd.Image(ioctx, image) as img:
                try:
                    img.unprotect_snap("snap")
                except rbd.ImageBusy:
                    pass
                else:
                    raise SmokeFailure("unprotecting a snapshot with a clone must fail")
            lib.remove(ioctx, clone)
            with rbd.Image(ioctx, image) as img:
                img.unprotect_snap("snap")
                img.remove_snap("snap")
            lib.remove(ioctx, image)
            expect(image not in lib.list(ioctx), "rbd image still listed after remove")
    finally:
        cluster.shutdown()

    # the restricted (cinder-style) client can use the rbd pool, and nothing else
    restricted = ceph_connect(conf, user=user)
    try:
        with restricted.open_ioctx(pool) as ioctx:
            name = unique("smoke-restricted")
            rbd.RBD().create(ioctx, name, MiB, old_format=False)
            rbd.RBD().remove(ioctx, name)
        with restricted.open_ioctx("default.rgw.meta") as ioctx:
            try:
                ioctx.write_full(unique("smoke-denied"), b"x")
            except rados.PermissionError:
                pass
            else:
                raise SmokeFailure(f"client.{user} could write outside pool {pool}")
    finally:
        restricted.shutdown()


def check_s3(env: Mapping[str, str]) -> None:
    import boto3
    from botocore.config import Config

    endpoint, access, secret, region = need(
        env, "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_REGION"
    )
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name=region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    bucket = unique("smoke-bucket")
    s3.create_bucket(Bucket=bucket)
    try:
        s3.put_object(Bucket=bucket, Key="small", Body=b"hello rgw")
        expect(s3.get_object(Bucket=bucket, Key="small")["Body"].read() == b"hello rgw", "s3 get")
        ranged = s3.get_object(Bucket=bucket, Key="small", Range="bytes=2-4")
        expect(ranged["Body"].read() == b"llo", "s3 ranged get")
        expect(ranged["ContentRange"] == "bytes 2-4/9", f"Content-Range {ranged['ContentRange']}")

        parts_data = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(123_457)]
        upload = s3.create_multipart_upload(Bucket=bucket, Key="large")["UploadId"]
        parts = []
        for number, chunk in enumerate(parts_data, start=1):
            etag = s3.upload_part(
                Bucket=bucket, Key="large", UploadId=upload, PartNumber=number, Body=chunk
            )["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
        s3.complete_multipart_upload(
            Bucket=bucket, Key="large", UploadId=upload, MultipartUpload={"Parts": parts}
        )
        whole = b"".join(parts_data)
        got = s3.get_object(Bucket=bucket, Key="large")
        expect(got["ContentLength"] == len(whole), "s3 multipart size")
        expect(got["ETag"].strip('"').endswith("-3"), f"multipart ETag {got['ETag']}")
        expect(
            hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(whole).digest(),
            "s3 mpu body",
        )
        across = s3.get_object(
            Bucket=bucket, Key="large", Range=f"bytes={5 * MiB - 3}-{5 * MiB + 2}"
        )
        expect(across["Body"].read() == whole[5 * MiB - 3 : 5 * MiB + 3], "s3 range across parts")
    finally:
        for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
        s3.delete_bucket(Bucket=bucket)


def swift_connection(url: str, user: str, key: str) -> Any:
    from swiftclient import client

    return client.Connection(authurl=url, user=user, key=key, auth_version="1", retries=0)


def check_rgw_swift(env: Mapping[str, str]) -> None:
    url, user, key = need(env, "RGW_SWIFT_AUTH_URL", "RGW_SWIFT_USER", "RGW_SWIFT_KEY")
    conn = swift_connection(url, user, key)
    container = unique("smoke-rgw")
    conn.put_container(container)
    try:
        conn.put_object(container, "obj", b"hello rgw swift")
        expect(conn.get_object(container, "obj")[1] == b"hello rgw swift", "rgw swift get")
        headers = {"Range": "bytes=6-8"}
        expect(conn.get_object(container, "obj", headers=headers)[1] == b"rgw", "rgw swift range")
        conn.delete_object(container, "obj")
    finally:
        conn.delete_container(container)


def check_swift(env: Mapping[str, str]) -> None:
    from swiftclient.exceptions import ClientException

    url, user, key, user2, key2 = need(
        env, "SWIFT_AUTH_URL", "SWIFT_USER", "SWIFT_KEY", "SWIFT_USER2", "SWIFT_KEY2"
    )
    conn = swift_connection(url, user, key)
    info = conn.get_capabilities()
    for feature in ("slo", "bulk_delete", "tempurl", "tempauth", "symlink", "versioned_writes"):
        expect(feature in info, f"swift proxy lacks {feature}: {sorted(info)}")
    container, segments = unique("smoke-swift"), unique("smoke-swift-segments")
    conn.put_container(container)
    conn.put_container(segments)
    try:
        conn.put_object(container, "small", b"hello swift")
        expect(conn.get_object(container, "small")[1] == b"hello swift", "swift get")
        ranged = conn.get_object(container, "small", headers={"Range": "bytes=6-10"})[1]
        expect(ranged == b"swift", "swift ranged get")

        chunks = [os.urandom(MiB) for _ in range(3)]
        manifest = []
        for i, chunk in enumerate(chunks):
            etag = conn.put_object(segments, f"seg{i:03d}", chunk)
            manifest.append({"path": f"/{segments}/seg{i:03d}", "etag": etag, "size_bytes": MiB})
        conn.put_object(
            container, "large", json.dumps(manifest), query_string="multipart-manifest=put"
        )
        whole = b"".join(chunks)
        headers, body = conn.get_object(container, "large")
        expect(headers.get("x-static-large-object") == "True", "SLO manifest flag")
        expect(body == whole, "SLO body != segments")
        across = conn.get_object(
            container, "large", headers={"Range": f"bytes={MiB - 5}-{MiB + 4}"}
        )
        expect(across[1] == whole[MiB - 5 : MiB + 5], "SLO range across segments")
        conn.delete_object(container, "large", query_string="multipart-manifest=delete")
        expect(not conn.get_container(segments)[1], "SLO delete left segments behind")

        # the second account is a different tenant until an ACL lets it in
        other = swift_connection(url, user2, key2)
        storage_url = conn.get_auth()[0]
        other_token = other.get_auth()[1]
        from swiftclient import client

        try:
            client.get_object(storage_url, other_token, container, "small")
        except ClientException as e:
            expect(e.http_status == 403, f"cross-account read: HTTP {e.http_status}")
        else:
            raise SmokeFailure("the second account read the first account's object without an ACL")
        conn.post_container(container, {"X-Container-Read": user2})
        body = client.get_object(storage_url, other_token, container, "small")[1]
        expect(body == b"hello swift", "cross-account read with a read ACL")
    finally:
        for name in (container, segments):
            for item in conn.get_container(name)[1]:
                conn.delete_object(name, item["name"])
            conn.delete_container(name)


CHECKS: dict[str, Callable[[Mapping[str, str]], None]] = {
    "rados": check_rados,
    "rbd": check_rbd,
    "s3": check_s3,
    "rgw-swift": check_rgw_swift,
    "swift": check_swift,
    "ceph-health": check_ceph_health,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("env_files", nargs="*", type=Path, metavar="ENV_FILE")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    args = parser.parse_args()
    sections = [s for s in args.only.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    env = read_env_files(args.env_files)
    for section in sections:
        started = time.monotonic()
        try:
            CHECKS[section](env)
        except Exception:
            traceback.print_exc()
            print(f"FAIL {section}", file=sys.stderr)
            return 1
        print(f"ok   {section:10} {time.monotonic() - started:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
