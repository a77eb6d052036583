"""The socket API, version 1, against one real sidecar process shared by the module.

The server has two file backends (``fast``, the default, and ``slow``) and a read-only http
backend (``web``), in a file that also carries Glance's own sections, which must be ignored.
Matrix: every status code of the API (200 201 204 206 400 404 405 409 416 422 503 and the
error codes behind them), Glance's field names in the PUT answer, upload sizes given by
Content-Length, by X-Image-Size or not at all, backend selection, reads by location (file
and http), ranges (a-b, a-, -n, past the end, unsatisfiable, malformed, several, If-Range,
HEAD), service endpoints and metrics.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
import yarl

from tests.conftest import require_env
from tests.sidecar import harness

GLANCE_EXTRAS = """
[database]
connection = mysql+pymysql://glance:dbpass@db/glance
[keystone_authtoken]
password = ks-secret
[paste_deploy]
flavor = keystone
[oslo_concurrency]
lock_path = /var/lock/glance
"""

IMAGE = harness.payload(3 * harness.MiB + 123)


@pytest.fixture(scope="module")
def datadirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("api")
    dirs = {"fast": root / "fast", "slow": root / "slow"}
    for d in dirs.values():
        d.mkdir()
    return dirs


@pytest.fixture(scope="module")
def sidecar(datadirs: dict[str, Path]) -> Iterator[harness.Sidecar]:
    work = datadirs["fast"].parent
    text = harness.file_backends_config(datadirs, default="fast", http_backend="web")
    text = text.replace("[DEFAULT]\n", "[DEFAULT]\ndebug = true\nbind_port = 9292\n")
    config = harness.write_config(work / "glance-api.conf", text + GLANCE_EXTRAS)
    with harness.running(harness.Sidecar(work, config=config)) as sidecar:
        yield sidecar


@pytest.fixture
async def client(sidecar: harness.Sidecar) -> AsyncIterator[aiohttp.ClientSession]:
    async with harness.session(sidecar.socket) as session:
        yield session


def new_id() -> str:
    return str(uuid.uuid4())


async def put(
    client: aiohttp.ClientSession,
    image_id: str,
    data: bytes | AsyncIterator[bytes] = IMAGE,
    **kwargs: object,
) -> aiohttp.ClientResponse:
    body = harness.body(data) if isinstance(data, bytes) else data
    async with client.put(f"/v1/images/{image_id}", data=body, **kwargs) as resp:  # type: ignore[arg-type]
        await resp.read()
        return resp


async def stored(
    client: aiohttp.ClientSession, image_id: str, data: bytes = IMAGE
) -> dict[str, object]:
    async with client.put(f"/v1/images/{image_id}", data=harness.body(data)) as resp:
        assert resp.status == 201, await resp.text()
        body = await resp.json()
        assert isinstance(body, dict)
        return body


# --------------------------------------------------------------------------- PUT


async def test_put_answers_with_glance_field_names(client: aiohttp.ClientSession) -> None:
    image_id = new_id()
    body = await stored(client, image_id)
    assert set(body) == {
        "image_id",
        "backend",
        "location",
        "size",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "metadata",
    }
    assert body["image_id"] == image_id
    assert body["backend"] == "fast"
    assert body["size"] == len(IMAGE)
    assert body["checksum"] == hashlib.md5(IMAGE).hexdigest()
    assert body["os_hash_algo"] == "sha512"
    assert body["os_hash_value"] == hashlib.sha512(IMAGE).hexdigest()
    assert str(body["location"]).startswith("file://") and str(body["location"]).endswith(image_id)


async def test_put_with_another_hash_algorithm(client: aiohttp.ClientSession) -> None:
    async with client.put(
        f"/v1/images/{new_id()}", data=harness.body(IMAGE), params={"hash": "sha256"}
    ) as resp:
        assert resp.status == 201
        body = await resp.json()
    assert body["os_hash_algo"] == "sha256"
    assert body["os_hash_value"] == hashlib.sha256(IMAGE).hexdigest()


async def test_put_chunked_of_unknown_size(client: aiohttp.ClientSession) -> None:
    image_id = new_id()
    async with client.put(f"/v1/images/{image_id}", data=harness.chunks(IMAGE)) as resp:
        assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
        assert resp.status == 201
        assert (await resp.json())["size"] == len(IMAGE)
    async with client.get(f"/v1/images/{image_id}") as resp:
        assert await resp.read() == IMAGE


async def test_put_chunked_with_declared_size(client: aiohttp.ClientSession) -> None:
    headers = {"X-Image-Size": str(len(IMAGE))}
    resp = await put(client, new_id(), harness.chunks(IMAGE), headers=headers)
    assert resp.status == 201


async def test_put_chunked_shorter_than_declared_is_400_and_leaves_nothing(
    client: aiohttp.ClientSession, datadirs: dict[str, Path]
) -> None:
    image_id = new_id()
    headers = {"X-Image-Size": str(len(IMAGE) + 1)}
    async with client.put(
        f"/v1/images/{image_id}", data=harness.chunks(IMAGE), headers=headers
    ) as resp:
        assert resp.status == 400
        assert harness.error_code(await resp.read()) == "size_mismatch"
    assert not [n for n in harness.leftovers(datadirs["fast"]) if image_id in n or "tmp" in n]
    async with client.head(f"/v1/images/{image_id}") as resp:
        assert resp.status == 404


async def test_content_length_disagreeing_with_declared_size_is_400(
    client: aiohttp.ClientSession,
) -> None:
    # small bodies wherever the server answers before reading them: a client still sending a
    # large body when the answer comes has to drop the connection mid-write
    resp = await put(client, new_id(), b"abc", headers={"X-Image-Size": "2"})
    assert resp.status == 400


async def test_malformed_declared_size_is_400(client: aiohttp.ClientSession) -> None:
    async with client.put(
        f"/v1/images/{new_id()}", data=b"x", headers={"X-Image-Size": "lots"}
    ) as resp:
        assert resp.status == 400
        assert harness.error_code(await resp.read()) == "invalid_request"


async def test_expected_checksum_is_verified(client: aiohttp.ClientSession) -> None:
    good = {"X-Image-Checksum": f"sha256:{hashlib.sha256(IMAGE).hexdigest()}"}
    assert (await put(client, new_id(), headers=good)).status == 201
    image_id = new_id()
    bad = {"X-Image-Checksum": f"md5:{hashlib.md5(b'other').hexdigest()}"}
    async with client.put(f"/v1/images/{image_id}", data=harness.body(IMAGE), headers=bad) as resp:
        assert resp.status == 422
        assert harness.error_code(await resp.read()) == "checksum_mismatch"
    async with client.get(f"/v1/images/{image_id}") as resp:
        assert resp.status == 404
    malformed = {"X-Image-Checksum": "no-colon"}
    async with client.put(f"/v1/images/{new_id()}", data=b"x", headers=malformed) as resp:
        assert resp.status == 400


async def test_duplicate_is_409_and_keeps_the_original(client: aiohttp.ClientSession) -> None:
    image_id = new_id()
    await stored(client, image_id)
    async with client.put(f"/v1/images/{image_id}", data=b"replacement") as resp:
        assert resp.status == 409
        assert harness.error_code(await resp.read()) == "duplicate"
    async with client.get(f"/v1/images/{image_id}") as resp:
        assert await resp.read() == IMAGE


@pytest.mark.parametrize(
    "image_id",
    ["has%20space", ".hidden", "a" * 256, "semi;colon", "%2E%2E", "..%2Fescape", "a%2Fb"],
    ids=["space", "leading-dot", "too-long", "semicolon", "dotdot", "dotdot-slash", "slash"],
)
async def test_invalid_image_ids_are_refused(
    client: aiohttp.ClientSession, datadirs: dict[str, Path], image_id: str
) -> None:
    before = harness.leftovers(*datadirs.values())
    url = f"{harness.BASE}/v1/images/{image_id}"
    async with client.put(yarl.URL(url, encoded=True), data=b"x") as resp:
        assert resp.status in (400, 404)
        code = harness.error_code(await resp.read())
        assert code in ("invalid_image_id", "not_found")
    assert harness.leftovers(*datadirs.values()) == before


async def test_ids_of_letters_digits_dots_dashes_underscores(client: aiohttp.ClientSession) -> None:
    image_id = f"my_image-{uuid.uuid4().hex}.v1.qcow2"
    await stored(client, image_id, b"small")
    async with client.get(f"/v1/images/{image_id}") as resp:
        assert await resp.read() == b"small"


async def test_unknown_backend_is_404_unknown_backend(client: aiohttp.ClientSession) -> None:
    for method in ("PUT", "GET", "DELETE"):
        async with client.request(
            method, f"/v1/images/{new_id()}", params={"backend": "nosuch"}, data=b"x"
        ) as resp:
            assert resp.status == 404
            assert harness.error_code(await resp.read()) == "unknown_backend"


async def test_write_to_read_only_backend_is_405(client: aiohttp.ClientSession) -> None:
    async with client.put(f"/v1/images/{new_id()}", params={"backend": "web"}, data=b"x") as resp:
        assert resp.status == 405
        assert harness.error_code(await resp.read()) == "unsupported"


async def test_unknown_hash_algorithm_is_400(client: aiohttp.ClientSession) -> None:
    async with client.put(f"/v1/images/{new_id()}", params={"hash": "crc7"}, data=b"x") as resp:
        assert resp.status == 400
        assert harness.error_code(await resp.read()) == "unknown_hash_algorithm"


async def test_empty_image(client: aiohttp.ClientSession) -> None:
    image_id = new_id()
    body = await stored(client, image_id, b"")
    assert body["size"] == 0 and body["checksum"] == hashlib.md5(b"").hexdigest()
    async with client.get(f"/v1/images/{image_id}") as resp:
        assert resp.status == 200 and resp.headers["Content-Length"] == "0"
        assert await resp.read() == b""
    async with client.get(f"/v1/images/{image_id}", headers={"Range": "bytes=0-"}) as resp:
        assert resp.status == 416 and resp.headers["Content-Range"] == "bytes */0"


# --------------------------------------------------------------------------- GET/HEAD/DELETE


async def test_get_streams_the_image(client: aiohttp.ClientSession) -> None:
    image_id = new_id()
    await stored(client, image_id)
    async with client.get(f"/v1/images/{image_id}") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == str(len(IMAGE))
        assert resp.headers["Accept-Ranges"] == "bytes"
        assert resp.headers["Content-Type"] == "application/octet-stream"
        assert len(resp.headers["X-Request-Id"]) == 16
        assert await resp.read() == IMAGE


async def test_head_gives_the_size(client: aiohttp.ClientSession) -> None:
    image_id = new_id()
    await stored(client, image_id)
    async with client.head(f"/v1/images/{image_id}") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == str(len(IMAGE))
        assert await resp.read() == b""


async def test_missing_image_is_404(client: aiohttp.ClientSession) -> None:
    async with client.get(f"/v1/images/{new_id()}") as resp:
        assert resp.status == 404
        assert harness.error_code(await resp.read()) == "not_found"
        assert resp.headers["X-Error-Code"] == "not_found"
    async with client.head(f"/v1/images/{new_id()}") as resp:
        assert resp.status == 404
        assert resp.headers["X-Error-Code"] == "not_found"


async def test_delete_is_204_then_404(client: aiohttp.ClientSession) -> None:
    image_id = new_id()
    await stored(client, image_id)
    async with client.delete(f"/v1/images/{image_id}") as resp:
        assert resp.status == 204
    async with client.get(f"/v1/images/{image_id}") as resp:
        assert resp.status == 404
    async with client.delete(f"/v1/images/{image_id}") as resp:
        assert resp.status == 404
        assert harness.error_code(await resp.read()) == "not_found"


async def test_backend_selection(client: aiohttp.ClientSession, datadirs: dict[str, Path]) -> None:
    image_id = new_id()
    async with client.put(
        f"/v1/images/{image_id}", params={"backend": "slow"}, data=harness.body(IMAGE)
    ) as resp:
        assert resp.status == 201
        assert (await resp.json())["backend"] == "slow"
    assert (datadirs["slow"] / image_id).read_bytes() == IMAGE
    async with client.get(f"/v1/images/{image_id}") as resp:
        assert resp.status == 404  # the default backend is "fast"
    async with client.get(f"/v1/images/{image_id}", params={"backend": "slow"}) as resp:
        assert await resp.read() == IMAGE


# --------------------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 1),
        ("bytes=10-1000", 10, 1001),
        ("bytes=1048570-2097160", 1048570, 2097161),
        ("bytes=3000000-", 3000000, len(IMAGE)),
        ("bytes=-100", len(IMAGE) - 100, len(IMAGE)),
        ("bytes=-99999999", 0, len(IMAGE)),
        (f"bytes={len(IMAGE) - 1}-", len(IMAGE) - 1, len(IMAGE)),
        (f"bytes=5-{len(IMAGE) + 1000}", 5, len(IMAGE)),
    ],
    ids=["first", "bounded", "across-mib", "open", "suffix", "suffix-too-long", "last", "past-end"],
)
async def test_ranges(client: aiohttp.ClientSession, header: str, start: int, end: int) -> None:
    image_id = new_id()
    await stored(client, image_id)
    async with client.get(f"/v1/images/{image_id}", headers={"Range": header}) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(IMAGE)}"
        assert resp.headers["Content-Length"] == str(end - start)
        assert await resp.read() == IMAGE[start:end]


@pytest.mark.parametrize(
    "header",
    [
        f"bytes={len(IMAGE)}-",
        f"bytes={len(IMAGE) + 5}-{len(IMAGE) + 9}",
        "bytes=-0",
        "bytes=9-2",
        "bytes=x-1",
    ],
    ids=["at-end", "past-end", "empty-suffix", "backwards", "not-a-number"],
)
async def test_unsatisfiable_ranges_are_416(client: aiohttp.ClientSession, header: str) -> None:
    image_id = new_id()
    await stored(client, image_id)
    async with client.get(f"/v1/images/{image_id}", headers={"Range": header}) as resp:
        assert resp.status == 416
        assert resp.headers["Content-Range"] == f"bytes */{len(IMAGE)}"
        assert harness.error_code(await resp.read()) == "range_not_satisfiable"


@pytest.mark.parametrize(
    "headers",
    [{"Range": "bytes=0-1,5-6"}, {"Range": "items=0-1"}, {"Range": "bytes=0-1", "If-Range": '"x"'}],
    ids=["several", "other-unit", "if-range"],
)
async def test_ranges_served_whole(client: aiohttp.ClientSession, headers: dict[str, str]) -> None:
    image_id = new_id()
    await stored(client, image_id)
    async with client.get(f"/v1/images/{image_id}", headers=headers) as resp:
        assert resp.status == 200
        assert "Content-Range" not in resp.headers
        assert await resp.read() == IMAGE


async def test_head_ignores_range(client: aiohttp.ClientSession) -> None:
    image_id = new_id()
    await stored(client, image_id)
    async with client.head(f"/v1/images/{image_id}", headers={"Range": "bytes=0-9"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == str(len(IMAGE))


# --------------------------------------------------------------------------- by location


async def test_read_file_location(client: aiohttp.ClientSession) -> None:
    image_id = new_id()
    body = await stored(client, image_id)
    location = str(body["location"])
    async with client.get("/v1/data", params={"location": location}) as resp:
        assert resp.status == 200
        assert await resp.read() == IMAGE
    async with client.head("/v1/data", params={"location": location}) as resp:
        assert resp.headers["Content-Length"] == str(len(IMAGE))
    params = {"location": location, "backend": "fast"}
    async with client.get("/v1/data", params=params, headers={"Range": "bytes=-5"}) as resp:
        assert resp.status == 206
        assert await resp.read() == IMAGE[-5:]
    legacy = location.replace("file://", "filesystem://")
    async with client.get("/v1/data", params={"location": legacy}) as resp:
        assert await resp.read() == IMAGE


async def test_file_location_outside_the_datadirs_is_400(
    client: aiohttp.ClientSession, datadirs: dict[str, Path]
) -> None:
    escape = f"file://{datadirs['fast']}/../../../etc/passwd"
    for uri in ("file:///etc/passwd", escape, f"file://{datadirs['fast'].parent}/glance-api.conf"):
        async with client.get("/v1/data", params={"location": uri}) as resp:
            assert resp.status == 400
            assert harness.error_code(await resp.read()) == "invalid_location"


async def test_location_of_another_backend_is_400(client: aiohttp.ClientSession) -> None:
    body = await stored(client, new_id())
    params = {"location": str(body["location"]), "backend": "slow"}
    async with client.get("/v1/data", params=params) as resp:
        assert resp.status == 400
        assert harness.error_code(await resp.read()) == "invalid_location"


async def test_location_no_backend_serves_is_404_unknown_backend(
    client: aiohttp.ClientSession,
) -> None:
    for uri in (
        "s3://s3.example.com/bucket/key",
        "rbd://fsid/pool/image/snap",
        "swift://u:k@auth/c/o",
    ):
        async with client.get("/v1/data", params={"location": uri}) as resp:
            assert resp.status == 404, uri
            assert harness.error_code(await resp.read()) == "unknown_backend"
    params = {"location": "file:///x", "backend": "nosuch"}
    async with client.get("/v1/data", params=params) as resp:
        assert resp.status == 404


async def test_malformed_or_missing_location_is_400(client: aiohttp.ClientSession) -> None:
    for params in ({"location": "not a uri"}, {"location": "file://"}, {}):
        async with client.get("/v1/data", params=params) as resp:
            assert resp.status == 400
            assert harness.error_code(await resp.read()) in ("invalid_location", "invalid_request")


async def test_read_http_location(client: aiohttp.ClientSession) -> None:
    base_url = require_env("HTTP_BASE_URL").rstrip("/")
    root = Path(require_env("HTTP_ROOT"))
    name = f"sidecar-{new_id()}.img"
    (root / name).write_bytes(IMAGE)
    location = f"{base_url}/{name}"
    async with client.get("/v1/data", params={"location": location}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == str(len(IMAGE))
        assert await resp.read() == IMAGE
    async with client.head("/v1/data", params={"location": location}) as resp:
        assert resp.headers["Content-Length"] == str(len(IMAGE))
    for header, expected in (("bytes=7-99", IMAGE[7:100]), ("bytes=-9", IMAGE[-9:])):
        async with client.get(
            "/v1/data", params={"location": location}, headers={"Range": header}
        ) as resp:
            assert resp.status == 206
            assert await resp.read() == expected
    async with client.get("/v1/data", params={"location": f"{base_url}/{name}.missing"}) as resp:
        assert resp.status == 404


async def test_unreachable_http_location_is_503(client: aiohttp.ClientSession) -> None:
    # port 9 (discard) has no listener on this machine: connection refused
    async with client.get("/v1/data", params={"location": "http://127.0.0.1:9/x.img"}) as resp:
        assert resp.status == 503
        assert harness.error_code(await resp.read()) == "backend_unavailable"


# --------------------------------------------------------------------------- service


async def test_backends_list(client: aiohttp.ClientSession) -> None:
    async with client.get("/v1/backends") as resp:
        assert resp.status == 200
        body = await resp.json()
    by_id = {b["id"]: b for b in body}
    assert set(by_id) == {"fast", "slow", "web"}
    assert by_id["fast"] == {
        "id": "fast",
        "type": "file",
        "description": "fast disks",
        "weight": 0,
        "default": True,
        "capabilities": by_id["fast"]["capabilities"],
    }
    assert "write" in by_id["fast"]["capabilities"]
    assert by_id["web"]["type"] == "http" and by_id["web"]["weight"] == 5
    assert not by_id["web"]["default"] and "write" not in by_id["web"]["capabilities"]


async def test_health_and_readiness(client: aiohttp.ClientSession) -> None:
    async with client.get("/healthz") as resp:
        assert resp.status == 200
    async with client.get("/readyz") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "ready"


async def test_routes_and_methods_errors_are_json(client: aiohttp.ClientSession) -> None:
    async with client.get("/v2/images") as resp:
        assert resp.status == 404
        assert harness.error_code(await resp.read()) == "not_found"
    async with client.post(f"/v1/images/{new_id()}") as resp:
        assert resp.status == 405
        assert harness.error_code(await resp.read()) == "method_not_allowed"


async def test_metrics_after_operations(client: aiohttp.ClientSession) -> None:
    image_id = new_id()
    await stored(client, image_id)
    async with client.get(f"/v1/images/{image_id}") as resp:
        await resp.read()
    async with client.put(f"/v1/images/{image_id}", data=b"dup") as resp:
        assert resp.status == 409
    async with client.get("/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    assert samples['kglance_sidecar_received_bytes_total{backend="fast"}'] >= len(IMAGE)
    assert samples['kglance_sidecar_sent_bytes_total{backend="fast"}'] >= len(IMAGE)
    assert samples['kglance_sidecar_operations_total{backend="fast",op="put",outcome="ok"}'] >= 1
    assert samples['kglance_sidecar_errors_total{backend="fast",op="put",code="duplicate"}'] >= 1
    count = samples['kglance_sidecar_operation_duration_seconds_count{backend="fast",op="get"}']
    inf = samples[
        'kglance_sidecar_operation_duration_seconds_bucket{backend="fast",op="get",le="+Inf"}'
    ]
    assert count == inf >= 1
    assert samples['kglance_sidecar_streams_in_flight{backend="fast",op="put"}'] == 0
    assert samples["kglance_sidecar_ready"] == 1
    assert "# TYPE kglance_sidecar_operation_duration_seconds histogram" in text


async def test_one_log_line_per_operation(
    client: aiohttp.ClientSession, sidecar: harness.Sidecar
) -> None:
    image_id = new_id()
    await stored(client, image_id)
    async with client.get(f"/v1/images/{image_id}", headers={"Range": "bytes=0-9"}) as resp:
        await resp.read()

    def logged() -> bool:
        return len(sidecar.operations(image_id=image_id)) == 2

    await harness.eventually(logged)
    put_line, get_line = sidecar.operations(image_id=image_id)
    assert put_line["op"] == "put" and put_line["outcome"] == "ok"
    assert put_line["backend"] == "fast" and put_line["bytes"] == len(IMAGE)
    assert get_line["op"] == "get" and get_line["bytes"] == 10 and get_line["range"] == "0-9"
    assert isinstance(get_line["duration_s"], float)
    assert {"request_id", "time", "level"} <= set(get_line)


def test_glance_sections_are_ignored_silently(sidecar: harness.Sidecar) -> None:
    warnings = [r for r in sidecar.log_records() if r.get("event") == "config_warning"]
    assert warnings == []
    assert "dbpass" not in sidecar.log_text() and "ks-secret" not in sidecar.log_text()


async def test_credentials_never_reach_bodies_logs_or_metrics(
    client: aiohttp.ClientSession, sidecar: harness.Sidecar
) -> None:
    location = "http://someone:hunter2@127.0.0.1:9/" + quote("x y.img")
    async with client.get("/v1/data", params={"location": location}) as resp:
        text = await resp.text()
    assert resp.status == 503
    assert "hunter2" not in text and "someone" not in text
    async with client.get("/metrics") as resp:
        assert "hunter2" not in await resp.text()
    await harness.eventually(lambda: "127.0.0.1:9/x%20y.img" in sidecar.log_text())
    assert "hunter2" not in sidecar.log_text()


async def test_credentialed_http_location_is_read_and_never_logged(
    client: aiohttp.ClientSession, sidecar: harness.Sidecar
) -> None:
    base_url = require_env("HTTP_BASE_URL").rstrip("/")
    root = Path(require_env("HTTP_ROOT"))
    user, password = require_env("HTTP_AUTH_USER"), require_env("HTTP_AUTH_PASSWORD")
    name = f"private-{new_id()}.img"
    (root / name).write_bytes(IMAGE[:1000])
    scheme, _, host = base_url.partition("://")
    userinfo = f"{quote(user, safe='')}:{quote(password, safe='')}"
    location = f"{scheme}://{userinfo}@{host}/private/{name}"
    async with client.get("/v1/data", params={"location": location}) as resp:
        assert resp.status == 200
        assert await resp.read() == IMAGE[:1000]
    async with client.get("/v1/data", params={"location": f"{base_url}/private/{name}"}) as resp:
        assert resp.status != 200  # the credentials were needed

    def logged() -> bool:
        return len([r for r in sidecar.operations() if name in str(r.get("location"))]) == 2

    await harness.eventually(logged)
    log = sidecar.log_text()
    for secret in (password, quote(password, safe=""), userinfo):
        assert secret not in log
