"""The sidecar serving an s3 backend on the real radosgw, configured as Glance would be.

The config file names the backend ``objects:s3`` with glance_store's option names; the
secret key comes from a file (``s3_store_secret_key_file``), as a mounted Kubernetes Secret
would provide it. Through the socket: a multipart upload of unknown size, whole and ranged
reads by id and by an old credentialed location, duplicates, delete; and the server's log
never contains the keys.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.conftest import require_env
from tests.drivers import s3_helpers
from tests.sidecar import harness

MiB = harness.MiB
IMAGE = harness.payload(11 * MiB + 5)


@pytest.fixture(scope="module")
def bucket() -> str:
    return f"kglance-sidecar-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory, bucket: str) -> Iterator[harness.Sidecar]:
    work = tmp_path_factory.mktemp("s3-sidecar")
    (work / "s3-secret").write_text(require_env("S3_SECRET_KEY") + "\n")
    text = f"""[DEFAULT]
enabled_backends = objects:s3
[glance_store]
default_backend = objects
[objects]
store_description = radosgw
s3_store_host = {require_env("S3_ENDPOINT")}
s3_store_region_name = {s3_helpers.region()}
s3_store_access_key = {require_env("S3_ACCESS_KEY")}
s3_store_secret_key_file = s3-secret
s3_store_bucket = {bucket}
s3_store_create_bucket_on_put = True
s3_store_large_object_size = 5
s3_store_large_object_chunk_size = 5
s3_store_thread_pools = 2
"""
    config = harness.write_config(work / "glance-api.conf", text)
    try:
        with harness.running(harness.Sidecar(work, config=config)) as sidecar:
            yield sidecar
    finally:
        s3_helpers.remove_bucket_now(s3_helpers.admin_client(), bucket)


@pytest.fixture
async def client(sidecar: harness.Sidecar) -> AsyncIterator[aiohttp.ClientSession]:
    async with harness.session(sidecar.socket) as session:
        yield session


async def test_store_read_and_delete_through_the_socket(
    client: aiohttp.ClientSession, sidecar: harness.Sidecar, bucket: str
) -> None:
    image_id = str(uuid.uuid4())
    async with client.put(f"/v1/images/{image_id}", data=harness.chunks(IMAGE)) as resp:
        assert resp.status == 201, await resp.text()
        body = await resp.json()
    host = require_env("S3_ENDPOINT").partition("://")[2].rstrip("/")
    assert body["location"] == f"s3://{host}/{bucket}/{image_id}"
    assert body["size"] == len(IMAGE)
    assert body["checksum"] == hashlib.md5(IMAGE).hexdigest()

    async with client.get(f"/v1/images/{image_id}") as resp:
        assert resp.status == 200
        assert await resp.read() == IMAGE
    last = f"bytes={len(IMAGE) - MiB}-"
    async with client.get(f"/v1/images/{image_id}", headers={"Range": last}) as resp:
        assert resp.status == 206
        assert (
            resp.headers["Content-Range"]
            == f"bytes {len(IMAGE) - MiB}-{len(IMAGE) - 1}/{len(IMAGE)}"
        )
        assert await resp.read() == IMAGE[-MiB:]

    old = f"s3://OLDACCESS:old-secret@old-host.example/{bucket}/{image_id}"
    async with client.get(
        "/v1/data", params={"location": old}, headers={"Range": "bytes=0-99"}
    ) as resp:
        assert resp.status == 206
        assert await resp.read() == IMAGE[:100]

    async with client.put(f"/v1/images/{image_id}", data=harness.body(b"again")) as resp:
        assert resp.status == 409
        assert harness.error_code(await resp.read()) == "duplicate"

    async with client.delete(f"/v1/images/{image_id}") as resp:
        assert resp.status == 204
    async with client.get(f"/v1/images/{image_id}") as resp:
        assert resp.status == 404

    log = sidecar.log_text()
    for secret in (require_env("S3_SECRET_KEY"), require_env("S3_ACCESS_KEY"), "old-secret"):
        assert secret not in log


async def test_failed_upload_leaves_nothing(
    client: aiohttp.ClientSession, sidecar: harness.Sidecar, bucket: str
) -> None:
    image_id = str(uuid.uuid4())
    headers = {"X-Image-Size": str(len(IMAGE) + 1)}  # one byte more than will arrive
    async with client.put(
        f"/v1/images/{image_id}", data=harness.chunks(IMAGE), headers=headers
    ) as resp:
        assert resp.status == 400
        assert harness.error_code(await resp.read()) == "size_mismatch"
    contents = await s3_helpers.bucket_contents(s3_helpers.admin_client(), bucket)
    assert not [name for name in contents if image_id in name], contents
