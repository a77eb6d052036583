"""The http driver against the real nginx of scripts/servers/nginx-up.sh.

Files are written into nginx's docroot and read back through every path the server offers:
each redirect status, chains within and past the limit, a loop, a location that ignores
Range, one without Content-Length, basic auth (credentials in the location, dropped when a
redirect leaves the host), error statuses, TLS with a self-signed certificate. Faults nginx
cannot make (a connection dropped mid-body, a server that never answers, a proxy) come from
scripts/servers/faultproxy.py, run in-process in front of nginx. A tiny aiohttp server stands in
only for misbehaviour no real server produces on purpose (a wrong Content-Range).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.util
import logging
import pathlib
import shutil
import socket
import ssl
import sys
import types
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web

from kglance.drivers import backends, base, errors, http, locations, registry
from tests.conftest import require_env

FAULTPROXY = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "servers" / "faultproxy.py"
SIZE = 100_000


def payload(size: int, *, seed: int = 0) -> bytes:
    return bytes((i * 31 + seed + (i >> 8)) % 251 for i in range(size))


DATA = payload(SIZE)


@dataclasses.dataclass(frozen=True)
class Site:
    """A folder of nginx's docroot that one test owns."""

    base_url: str
    root: pathlib.Path
    folder: str

    def put(self, name: str, data: bytes = DATA) -> str:
        (self.root / self.folder / name).write_bytes(data)
        return f"{self.folder}/{name}"

    @property
    def port(self) -> int:
        port = urllib.parse.urlsplit(self.base_url).port
        assert port is not None
        return port


def at(url: str) -> locations.HttpLocation:
    location = locations.parse(url)
    assert isinstance(location, locations.HttpLocation)
    return location


def with_credentials(url: str, *, user: str, password: str) -> str:
    scheme, _, rest = url.partition("://")
    quoted = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}"
    return f"{scheme}://{quoted}@{rest}"


def build(**options: object) -> http.HttpDriver:
    driver = registry.Registry().build("http", options, backend_id="web")
    assert isinstance(driver, http.HttpDriver)
    return driver


async def read(
    driver: http.HttpDriver, *, url: str, byte_range: base.ByteRange = base.FULL
) -> tuple[int | None, base.ByteRange, bytes]:
    async with driver.get(at(url), byte_range=byte_range) as blob:
        return blob.size, blob.served, await blob.read()


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def site() -> Iterator[Site]:
    base_url = require_env("HTTP_BASE_URL").rstrip("/")
    root = pathlib.Path(require_env("HTTP_ROOT"))
    folder = f"test-http-{uuid.uuid4().hex[:12]}"
    (root / folder).mkdir()
    yield Site(base_url=base_url, root=root, folder=folder)
    shutil.rmtree(root / folder)


@pytest.fixture
async def driver() -> AsyncIterator[http.HttpDriver]:
    async with contextlib.aclosing(build()) as built:
        yield built


@pytest.fixture(scope="module")
def faultproxy() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("kglance_tests_faultproxy", FAULTPROXY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@contextlib.asynccontextmanager
async def fault_proxy(
    module: types.ModuleType, *, port: int, **faults: object
) -> AsyncIterator[int]:
    """Run the fault proxy in front of 127.0.0.1:port; yields the proxy's port."""
    proxy = module.FaultProxy(target=("127.0.0.1", port), faults=module.Faults(**faults))
    await proxy.start()
    try:
        yield int(proxy.port)
    finally:
        await proxy.close()


# --------------------------------------------------------------------------- plain reads


async def test_whole_file_and_size(driver: http.HttpDriver, site: Site) -> None:
    url = f"{site.base_url}/{site.put('whole.bin')}"
    assert await read(driver, url=url) == (SIZE, base.ByteRange(0, SIZE), DATA)
    assert await driver.size(at(url)) == SIZE


async def test_concurrent_reads_share_one_driver(driver: http.HttpDriver, site: Site) -> None:
    url = f"{site.base_url}/{site.put('shared.bin')}"
    ranges = [base.ByteRange(offset, 5000) for offset in range(0, SIZE, 10_000)]
    results = await asyncio.gather(*(read(driver, url=url, byte_range=r) for r in ranges))
    assert [data for _, _, data in results] == [DATA[r.offset : r.offset + 5000] for r in ranges]


async def test_abandoned_read_leaves_driver_usable(driver: http.HttpDriver, site: Site) -> None:
    data = payload(3 * 1024 * 1024, seed=4)
    url = f"{site.base_url}/{site.put('abandoned.bin', data)}"
    async with driver.get(at(url)) as blob:
        async for chunk in blob:
            assert data.startswith(chunk)
            break
    assert (await read(driver, url=url))[2] == data


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize(
    "via", ["redirect", "abs", "r301", "r302", "r303", "r307", "r308", "chain/5"]
)
async def test_redirects_are_followed(driver: http.HttpDriver, site: Site, via: str) -> None:
    url = f"{site.base_url}/{via}/{site.put('moved.bin')}"
    assert await read(driver, url=url) == (SIZE, base.ByteRange(0, SIZE), DATA)
    assert await read(driver, url=url, byte_range=base.ByteRange(10, 20)) == (
        SIZE,
        base.ByteRange(10, 20),
        DATA[10:30],
    )
    assert await driver.size(at(url)) == SIZE


async def test_redirect_limit(site: Site) -> None:
    path = site.put("far.bin")
    async with contextlib.aclosing(build()) as default:
        with pytest.raises(errors.TooManyRedirects):
            await read(default, url=f"{site.base_url}/chain/6/{path}")
        with pytest.raises(errors.TooManyRedirects):
            await default.size(at(f"{site.base_url}/chain/6/{path}"))
    async with contextlib.aclosing(build(http_max_redirects=10)) as patient:
        assert (await read(patient, url=f"{site.base_url}/chain/10/{path}"))[2] == DATA
    async with contextlib.aclosing(build(http_max_redirects=0)) as strict:
        assert (await read(strict, url=f"{site.base_url}/{path}"))[2] == DATA
        with pytest.raises(errors.TooManyRedirects):
            await read(strict, url=f"{site.base_url}/redirect/{path}")


async def test_redirect_loop(driver: http.HttpDriver, site: Site) -> None:
    with pytest.raises(errors.TooManyRedirects):
        await read(driver, url=f"{site.base_url}/redirect-loop")
    with pytest.raises(errors.TooManyRedirects):
        await driver.size(at(f"{site.base_url}/redirect-loop"))


# --------------------------------------------------------------------------- ranges

RANGES = [
    base.ByteRange(0, 1),
    base.ByteRange(0),
    base.ByteRange(1),
    base.ByteRange(4095, 2),
    base.ByteRange(50_000, 10_000),
    base.ByteRange(SIZE - 1),
    base.ByteRange(SIZE - 10, 100),
]


@pytest.mark.parametrize("via", ["", "norange/"], ids=["range-honoured", "range-ignored"])
@pytest.mark.parametrize("byte_range", RANGES, ids=str)
async def test_ranges(
    driver: http.HttpDriver, site: Site, via: str, byte_range: base.ByteRange
) -> None:
    url = f"{site.base_url}/{via}{site.put('ranged.bin')}"
    end = None if byte_range.length is None else byte_range.offset + byte_range.length
    expected = DATA[byte_range.offset : end]
    assert await read(driver, url=url, byte_range=byte_range) == (
        SIZE,
        base.ByteRange(byte_range.offset, len(expected)),
        expected,
    )


@pytest.mark.parametrize("via", ["", "norange/"], ids=["range-honoured", "range-ignored"])
async def test_range_past_the_end(driver: http.HttpDriver, site: Site, via: str) -> None:
    url = f"{site.base_url}/{via}{site.put('short.bin')}"
    with pytest.raises(errors.RangeNotSatisfiable) as info:
        await read(driver, url=url, byte_range=base.ByteRange(SIZE))
    assert info.value.size == SIZE


# --------------------------------------------------------------------------- no Content-Length


async def test_unknown_size(driver: http.HttpDriver, site: Site) -> None:
    url = f"{site.base_url}/nolength/{site.put('unsized.bin')}"
    assert await read(driver, url=url) == (None, base.FULL, DATA)
    with pytest.raises(errors.Unsupported, match="Content-Length"):
        await driver.size(at(url))


async def test_unknown_size_ranges(driver: http.HttpDriver, site: Site) -> None:
    url = f"{site.base_url}/nolength/{site.put('unsized.bin')}"
    assert await read(driver, url=url, byte_range=base.ByteRange(5, 10)) == (
        None,
        base.ByteRange(5, 10),
        DATA[5:15],
    )
    assert await read(driver, url=url, byte_range=base.ByteRange(SIZE - 3)) == (
        None,
        base.ByteRange(SIZE - 3),
        DATA[-3:],
    )
    with pytest.raises(errors.RangeNotSatisfiable) as info:
        await read(driver, url=url, byte_range=base.ByteRange(SIZE + 5))
    assert info.value.size == SIZE
    # a length past the end cannot be known to be cut before the body ends: never short data
    received = bytearray()
    with pytest.raises(errors.BackendError, match="before the end of range"):
        async with driver.get(at(url), byte_range=base.ByteRange(SIZE - 10, 100)) as blob:
            async for chunk in blob:
                received += chunk
    assert bytes(received) == DATA[-10:]


# --------------------------------------------------------------------------- broken transfers


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize(
    ("via", "byte_range"),
    [("", base.FULL), ("nolength/", base.FULL), ("", base.ByteRange(1000, 2_000_000))],
    ids=["content-length", "chunked", "ranged"],
)
async def test_connection_dropped_mid_body(
    driver: http.HttpDriver,
    site: Site,
    faultproxy: types.ModuleType,
    how: str,
    via: str,
    byte_range: base.ByteRange,
) -> None:
    data = payload(4 * 1024 * 1024, seed=7)
    path = site.put("dropped.bin", data)
    expected = data[byte_range.offset :][: byte_range.length]
    received = bytearray()
    async with fault_proxy(faultproxy, port=site.port, cut_after=1024 * 1024, how=how) as port:
        with pytest.raises(errors.RemoteUnavailable) as info:
            async with driver.get(
                at(f"http://127.0.0.1:{port}/{via}{path}"), byte_range=byte_range
            ) as blob:
                async for chunk in blob:
                    received += chunk
    assert info.value.retryable
    assert len(received) < len(expected)
    assert expected.startswith(bytes(received))
    if how == "close":  # every byte sent arrives, so the failure is in the middle of the body
        assert len(received) > 512 * 1024


async def test_stalled_server_times_out(site: Site, faultproxy: types.ModuleType) -> None:
    async with (
        fault_proxy(faultproxy, port=site.port, blackhole=True) as port,
        contextlib.aclosing(build(http_timeout=0.5)) as impatient,
    ):
        url = f"http://127.0.0.1:{port}/{site.put('stalled.bin')}"
        with pytest.raises(errors.RemoteUnavailable):
            await read(impatient, url=url)
        with pytest.raises(errors.RemoteUnavailable):
            await impatient.size(at(url))


async def test_connection_refused(driver: http.HttpDriver) -> None:
    url = f"http://127.0.0.1:{unused_port()}/image"
    with pytest.raises(errors.RemoteUnavailable) as info:
        await read(driver, url=url)
    assert info.value.retryable
    with pytest.raises(errors.RemoteUnavailable):
        await driver.size(at(url))


async def test_proxy_information(site: Site, faultproxy: types.ModuleType) -> None:
    # nginx answers absolute-form requests, so a plain TCP relay in front of it acts as a proxy
    url = f"http://127.0.0.1:{unused_port()}/{site.put('proxied.bin')}"
    async with (
        fault_proxy(faultproxy, port=site.port) as port,
        contextlib.aclosing(build(http_proxy_information=f"http:127.0.0.1:{port}")) as proxied,
        contextlib.aclosing(build()) as direct,
    ):
        assert (await read(proxied, url=url))[2] == DATA
        assert await proxied.size(at(url)) == SIZE
        with pytest.raises(errors.RemoteUnavailable):
            await read(direct, url=url)


# --------------------------------------------------------------------------- statuses


async def test_missing_file(driver: http.HttpDriver, site: Site) -> None:
    url = f"{site.base_url}/{site.folder}/not-there"
    with pytest.raises(errors.NotFound):
        await read(driver, url=url)
    with pytest.raises(errors.NotFound):
        await driver.size(at(url))


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, errors.RemoteUnavailable),
        (502, errors.RemoteUnavailable),
        (503, errors.RemoteUnavailable),
        (429, errors.RemoteUnavailable),
        (410, errors.NotFound),
        (400, errors.BackendError),
        (401, errors.BackendError),
        (403, errors.BackendError),
    ],
)
async def test_error_statuses(
    driver: http.HttpDriver, site: Site, status: int, error: type[errors.StoreError]
) -> None:
    url = f"{site.base_url}/status/{status}"
    with pytest.raises(error, match=f"HTTP {status}") as got:
        await read(driver, url=url)
    with pytest.raises(error, match=f"HTTP {status}") as got_size:
        await driver.size(at(url))
    for info in (got, got_size):
        assert type(info.value) is error
        assert info.value.retryable == (error is errors.RemoteUnavailable)


# --------------------------------------------------------------------------- credentials


@pytest.fixture
def account() -> tuple[str, str]:
    return require_env("HTTP_AUTH_USER"), require_env("HTTP_AUTH_PASSWORD")


async def test_basic_auth_from_the_location(
    driver: http.HttpDriver, site: Site, account: tuple[str, str]
) -> None:
    user, password = account
    url = f"{site.base_url}/private/{site.put('secret.bin')}"
    assert (await read(driver, url=with_credentials(url, user=user, password=password)))[2] == DATA
    assert await driver.size(at(with_credentials(url, user=user, password=password))) == SIZE
    with pytest.raises(errors.BackendError, match="401"):
        await read(driver, url=url)
    with pytest.raises(errors.BackendError, match="401") as info:
        await read(driver, url=with_credentials(url, user=user, password="wrong-secret"))
    assert "wrong-secret" not in str(info.value)


async def test_credentials_stay_on_their_host(
    driver: http.HttpDriver,
    site: Site,
    account: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="kglance.drivers.http")
    user, password = account
    path = site.put("secret.bin")
    same_host = with_credentials(
        f"{site.base_url}/redirect/private/{path}", user=user, password=password
    )
    assert (await read(driver, url=same_host))[2] == DATA
    # /offhost/ redirects to http://localhost:PORT/...: the same nginx under another name
    other_host = with_credentials(
        f"{site.base_url}/offhost/private/{path}", user=user, password=password
    )
    with pytest.raises(errors.BackendError, match="401") as info:
        await read(driver, url=other_host)
    assert password not in str(info.value)
    assert urllib.parse.quote(password, safe="") not in str(info.value)
    assert "redirect" in caplog.text
    assert password not in caplog.text
    assert urllib.parse.quote(password, safe="") not in caplog.text


# --------------------------------------------------------------------------- TLS


@pytest.fixture
def https_base_url() -> str:
    return require_env("HTTPS_BASE_URL").rstrip("/")


async def test_tls_is_verified_by_default(
    driver: http.HttpDriver, site: Site, https_base_url: str
) -> None:
    url = f"{https_base_url}/{site.put('tls.bin')}"
    with pytest.raises(errors.BackendError, match="TLS") as info:
        await read(driver, url=url)
    assert not info.value.retryable
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    with pytest.raises(errors.BackendError, match="TLS"):
        await driver.size(at(url))


async def test_tls_with_the_servers_ca(site: Site, https_base_url: str) -> None:
    url = f"{https_base_url}/{site.put('tls.bin')}"
    ca_file = require_env("HTTPS_CA_FILE")
    async with contextlib.aclosing(build(https_ca_certificates_file=ca_file)) as trusting:
        assert await read(trusting, url=url, byte_range=base.ByteRange(7, 9)) == (
            SIZE,
            base.ByteRange(7, 9),
            DATA[7:16],
        )
        assert await trusting.size(at(url)) == SIZE
        with pytest.raises(errors.BackendError, match="https to http"):
            await read(trusting, url=f"{https_base_url}/downgrade/{site.folder}/tls.bin")
    async with contextlib.aclosing(build(https_insecure=True)) as insecure:
        assert (await read(insecure, url=url))[2] == DATA


# --------------------------------------------------------------------------- misbehaving server


@pytest.fixture
async def liar() -> AsyncIterator[str]:
    """A server that lies about ranges and redirects; yields its base URL."""

    async def wrong_start(request: web.Request) -> web.Response:
        return web.Response(status=206, body=b"abcde", headers={"Content-Range": "bytes 0-4/100"})

    async def wrong_total(request: web.Request) -> web.Response:
        return web.Response(status=206, body=b"abcde", headers={"Content-Range": "bytes 5-9/9"})

    async def no_content_range(request: web.Request) -> web.Response:
        return web.Response(status=206, body=b"abcde")

    async def no_location(request: web.Request) -> web.Response:
        return web.Response(status=302)

    async def to_ftp(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "ftp://127.0.0.1/x"})

    async def encoding(request: web.Request) -> web.Response:
        return web.Response(body=request.headers.get("Accept-Encoding", "").encode())

    app = web.Application()
    for path, handler in [
        ("/wrong-start", wrong_start),
        ("/wrong-total", wrong_total),
        ("/no-content-range", no_content_range),
        ("/no-location", no_location),
        ("/to-ftp", to_ftp),
        ("/encoding", encoding),
    ]:
        app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = unused_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("path", ["wrong-start", "wrong-total", "no-content-range"])
async def test_wrong_partial_responses_are_refused(
    driver: http.HttpDriver, liar: str, path: str
) -> None:
    with pytest.raises(errors.BackendError, match=r"asked for|Content-Range"):
        await read(driver, url=f"{liar}/{path}", byte_range=base.ByteRange(5, 5))


@pytest.mark.parametrize("path", ["no-location", "to-ftp"])
async def test_unusable_redirects_are_refused(
    driver: http.HttpDriver, liar: str, path: str
) -> None:
    with pytest.raises(errors.BackendError, match="redirect") as info:
        await read(driver, url=f"{liar}/{path}")
    assert not info.value.retryable


async def test_bytes_are_asked_for_unencoded(driver: http.HttpDriver, liar: str) -> None:
    assert (await read(driver, url=f"{liar}/encoding"))[2] == b"identity"


# --------------------------------------------------------------------------- the driver itself


def test_options() -> None:
    driver = build(http_proxy_information="http:10.0.0.1:3128, https:proxy.example:8080")
    assert driver.options == http.HttpOptions(
        http_proxy_information={
            "http": "http://10.0.0.1:3128",
            "https": "http://proxy.example:8080",
        }
    )
    assert http.HttpOptions().https_insecure is False  # glance_store defaults to True
    for bad in (
        {"http_proxy_information": "ftp:10.0.0.1:21"},
        {"http_proxy_information": "http"},
        {"https_ca_certificates_file": "/nonexistent/ca.pem"},
        {"http_max_redirects": -1},
        {"http_timeout": 0},
        {"no_such_option": 1},
    ):
        with pytest.raises(errors.ConfigurationError):
            build(**bad)


async def test_read_only_any_host(site: Site) -> None:
    driver = build()
    assert driver.features == (base.Feature.READ | base.Feature.RANGED_READ | base.Feature.REUSABLE)
    assert driver.owns(at("https://images.example.org:8443/a/b?c=d"))
    assert not driver.owns(locations.parse("file:///var/lib/glance/images/x"))
    with pytest.raises(errors.Unsupported):
        await driver.add("img", _nothing(), size=0)
    with pytest.raises(errors.Unsupported):
        await driver.delete(at(f"{site.base_url}/{site.put('kept.bin')}"))
    assert (site.root / site.folder / "kept.bin").exists()
    backend = backends.Backend(driver, backend_id="web")
    with pytest.raises(errors.Unsupported):
        await backend.add("img", _nothing(), size=0)
    await driver.aclose()


async def _nothing() -> AsyncIterator[bytes]:
    yield b"data"
