"""A real sidecar in a child process, and the helpers tests use to talk to it over its socket.

The test process is the client and ``python -m kglance.sidecar`` the server, so every test
crosses a real Unix socket between two processes, as an application pod would. The server's
JSON log goes to a file the tests read (and grep for credentials).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import io
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp

BASE = "http://sidecar"
MiB = 1024 * 1024
START_TIMEOUT = 30.0


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, *, timeout: float = 10.0) -> None:
        super().__init__("sidecar", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def request_sync(
    socket_path: Path, method: str, path: str, *, body: bytes | None = None
) -> tuple[int, bytes]:
    """One blocking request (for fixtures and polling); status and body."""
    conn = _UnixHTTPConnection(str(socket_path))
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def file_backends_config(
    datadirs: dict[str, Path], *, default: str, extra: str = "", http_backend: str | None = None
) -> str:
    """A glance multi-backend config with one file backend per entry (and maybe an http one)."""
    enabled = [f"{bid}:file" for bid in datadirs]
    if http_backend:
        enabled.append(f"{http_backend}:http")
    lines = [
        "[DEFAULT]",
        f"enabled_backends = {', '.join(enabled)}",
        "[glance_store]",
        f"default_backend = {default}",
    ]
    for bid, datadir in datadirs.items():
        lines += [
            f"[{bid}]",
            f'store_description = "{bid} disks"',
            f"filesystem_store_datadir = {datadir}",
        ]
    if http_backend:
        lines += [f"[{http_backend}]", "store_description = web server", "weight = 5"]
    return "\n".join(lines) + "\n" + extra


class Sidecar:
    """``python -m kglance.sidecar`` as a child process."""

    def __init__(
        self,
        workdir: Path,
        *,
        config: Path | None,
        socket_path: Path | None = None,
        args: Sequence[str] = (),
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.workdir = workdir
        self.config = config
        self.socket = socket_path or workdir / "kglance.sock"
        self.args = list(args)
        self.log_path = workdir / f"sidecar-{time.monotonic_ns()}.log"
        self._preexec_fn = preexec_fn
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Sidecar:
        command = [sys.executable, "-m", "kglance.sidecar", "--socket", str(self.socket)]
        if self.config is not None:
            command += ["--config", str(self.config)]
        command += self.args
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=self._preexec_fn,
            )
        return self

    def wait_listening(self, *, ready: bool = True) -> Sidecar:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"sidecar exited with {self.proc.returncode}:\n{self.log_text()}"
                )
            with contextlib.suppress(OSError):
                status, _ = request_sync(self.socket, "GET", "/readyz" if ready else "/healthz")
                if status == 200:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"sidecar did not come up:\n{self.log_text()}")

    def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def send(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text()
        except FileNotFoundError:
            return ""

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
        return records

    def operations(self, **match: object) -> list[dict[str, Any]]:
        return [
            r
            for r in self.log_records()
            if r.get("event") == "operation" and all(r.get(k) == v for k, v in match.items())
        ]

    def _status_bytes(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc/{self.pid}/status")

    def rss(self) -> int:
        """VmRSS of the server process, in bytes."""
        return self._status_bytes("VmRSS")

    def peak_rss(self) -> int:
        """VmHWM (peak RSS) of the server process, in bytes."""
        return self._status_bytes("VmHWM")


@contextlib.contextmanager
def running(sidecar: Sidecar, *, ready: bool = True) -> Iterator[Sidecar]:
    sidecar.start()
    try:
        yield sidecar.wait_listening(ready=ready)
    finally:
        sidecar.stop()


@contextlib.asynccontextmanager
async def session(socket_path: Path, **kwargs: Any) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.UnixConnector(path=str(socket_path), limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
        base_url=BASE, connector=connector, timeout=timeout, **kwargs
    ) as client:
        yield client
    # transports closed by the session finish closing on the next loop iterations; without
    # this a test's loop can end first and the transport is reported as unclosed
    for _ in range(3):
        await asyncio.sleep(0)


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool], *, within: float = 20.0
) -> None:
    """Poll ``check`` until it is true; fail after ``within`` s (a deadline, not a measurement)."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.05)


def payload(size: int, *, seed: int = 0) -> bytes:
    """Deterministic, incompressible bytes (a 64 KiB + 7 block repeated, so no MiB aligns)."""
    block = bytearray()
    counter = 0
    while len(block) < 64 * 1024 + 7:
        block += hashlib.sha512(f"{seed}:{counter}".encode()).digest()
        counter += 1
    block = block[: 64 * 1024 + 7]
    return bytes((block * (size // len(block) + 1))[:size])


def body(data: bytes) -> io.BytesIO:
    """A request body aiohttp sends with Content-Length without holding the event loop."""
    return io.BytesIO(data)


async def chunks(data: bytes, *, piece: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


def leftovers(*directories: Path) -> list[str]:
    """Every entry of the datadirs, hidden temp files included."""
    return sorted(str(p.relative_to(d)) for d in directories for p in d.rglob("*"))


def error_code(body: bytes) -> str:
    parsed = json.loads(body)
    assert set(parsed) == {"error"} and set(parsed["error"]) == {"code", "message"}, parsed
    code = parsed["error"]["code"]
    assert isinstance(code, str)
    return code
