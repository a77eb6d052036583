"""Driver failures no real storage produces on demand, from drivers written for the purpose.

* Unexpected exceptions: ``500 internal_error`` with nothing in the body but a request id. The
  driver raises plain ``RuntimeError``s whose text carries a credentialed URI, as an SDK's
  message might; the JSON log formatter must scrub it, tracebacks included.
* A backend failing its start-up ``check()``: ``/readyz`` is 503 naming it until a retry
  passes.

The app is served over a real Unix socket in this process.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from kglance.drivers import backends, base, errors, locations
from kglance.sidecar import app, keys, logs
from tests.sidecar import harness

SECRET_URI = "swift://tenant:user:hunter2@keystone.example/v3/container/obj"


class BrokenDriver(base.Driver):
    Options = base.DriverOptions
    type_name = "broken"
    schemes = ("file",)
    features = base.Feature.READ | base.Feature.WRITE | base.Feature.UNSIZED_WRITE

    async def add(
        self,
        image_id: str,
        data: AsyncIterator[bytes],
        *,
        size: int | None,
        mode: base.WriteMode = "create",
    ) -> base.Stored:
        raise RuntimeError(f"upload to {SECRET_URI} exploded")

    def get(
        self, location: locations.Location, *, byte_range: base.ByteRange = base.FULL
    ) -> contextlib.AbstractAsyncContextManager[base.Blob]:
        raise RuntimeError(f"read of {SECRET_URI} exploded")

    async def size(self, location: locations.Location) -> int:
        raise RuntimeError(f"stat of {SECRET_URI} exploded")

    async def delete(self, location: locations.Location) -> None:
        raise RuntimeError(f"delete of {SECRET_URI} exploded")

    def owns(self, location: locations.Location) -> bool:
        return True

    async def locate(self, image_id: str) -> locations.Location:
        return locations.FileLocation(path=f"/nowhere/{image_id}")


@pytest.fixture
async def socket_path(tmp_path: Path) -> AsyncIterator[Path]:
    driver = BrokenDriver(base.DriverOptions(), backend_id="broken")
    served = backends.Backends([backends.Backend(driver, backend_id="broken")], default="broken")
    runner = web.AppRunner(app.make_app(served), access_log=None)
    await runner.setup()
    path = tmp_path / "broken.sock"
    await web.UnixSite(runner, str(path)).start()
    try:
        yield path
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/images/abc"),
        ("GET", "/v1/images/abc"),
        ("HEAD", "/v1/images/abc"),
        ("DELETE", "/v1/images/abc"),
        ("GET", "/v1/data?location=file:///nowhere/abc"),
    ],
)
async def test_unexpected_errors_are_500_without_details(
    socket_path: Path, caplog: pytest.LogCaptureFixture, method: str, path: str
) -> None:
    caplog.set_level(logging.INFO)
    async with harness.session(socket_path) as client:
        async with client.request(method, path, data=b"x" if method == "PUT" else None) as resp:
            assert resp.status == 500
            body = await resp.read()
            request_id = resp.headers["X-Request-Id"]
        async with client.get("/metrics") as resp:
            metrics = await resp.text()
    if method != "HEAD":
        assert json.loads(body) == {
            "error": {"code": "internal_error", "message": f"internal error (request {request_id})"}
        }
    assert 'code="internal_error"' in metrics
    formatter = logs.JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert any("exploded" in line and request_id in line for line in lines)
    assert any("Traceback" in line for line in lines)
    assert not any("hunter2" in line for line in lines)


def test_scrub_removes_userinfo_from_every_uri() -> None:
    text = (
        "a http://u:p@h/x b swift+https://acct:user:key@auth/c/o "
        "s3://ak:sk@host/bucket/key no-creds://host/x mail me@example.org"
    )
    assert logs.scrub(text) == (
        "a http://***@h/x b swift+https://***@auth/c/o "
        "s3://***@host/bucket/key no-creds://host/x mail me@example.org"
    )


class FlakyDriver(BrokenDriver):
    """Unreachable for its first ``check()`` calls."""

    failures_left = 2

    async def check(self) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise errors.RemoteUnavailable("cannot reach the storage yet")


async def test_readiness_waits_for_every_backend_check(tmp_path: Path) -> None:
    driver = FlakyDriver(base.DriverOptions(), backend_id="flaky")
    served = backends.Backends([backends.Backend(driver, backend_id="flaky")], default="flaky")
    settings = keys.AppSettings(check_retry_interval=0.05)
    runner = web.AppRunner(app.make_app(served, settings), access_log=None)
    await runner.setup()
    path = tmp_path / "flaky.sock"
    await web.UnixSite(runner, str(path)).start()
    try:
        async with harness.session(path) as client:
            async with client.get("/readyz") as resp:
                assert resp.status == 503
                body = await resp.json()
            assert body["status"] == "not_ready"
            assert "flaky" in body["problems"] or "*" in body["problems"]

            async def ready() -> bool:
                async with client.get("/readyz") as resp:
                    return resp.status == 200

            await harness.eventually(ready)
            async with client.get("/healthz") as resp:
                assert resp.status == 200
    finally:
        await runner.cleanup()
    assert driver.failures_left == 0
