"""Processes that used a cinder backend exit: the thread that loads os-brick stays joinable.

Loading os-brick imports eventlet, whose ``eventlet.hubs`` re-executes ``threading.py`` as a
private copy; that copy's ``_MainThread()`` replaces the thread-state sentinel of the thread
doing the import. Done on a pool thread, it left that thread's ``Thread`` looking alive
forever, so ``threading._shutdown`` hung every process at exit (drivers/cinder/attach.py).
Both tests run in child processes: in this one os-brick is usually imported already.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

from tests.drivers import cinder_helpers
from tests.fakes import cinder_api
from tests.sidecar import harness

EXIT_BOUND = 25.0  # seconds: a deadline for the exit, not a measurement
GRACE_PERIOD = 5.0
IMAGE_ID = "4f8e6a2c-1d3b-4c5e-9f7a-0b1c2d3e4f5a"

_LOAD_ON_A_THREAD = textwrap.dedent(
    """
    import os, sys, threading
    from kglance.drivers.cinder import attach

    worker = threading.Thread(target=attach.prepare_os_brick, args=(sys.argv[1],))
    worker.start()
    worker.join(30)
    if worker.is_alive():
        print("the thread that loaded os-brick never finished", flush=True)
        os._exit(3)  # threading._shutdown would wait for it forever
    """
)


def test_a_thread_that_loaded_os_brick_can_be_joined(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_ON_A_THREAD, str(tmp_path / "locks")],
        capture_output=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def _config(fake: cinder_api.FakeCinder, workdir: Path) -> Path:
    options = cinder_helpers.options(fake, cinder_lock_path=str(workdir / "locks"))
    lines = [
        "[DEFAULT]",
        "enabled_backends = volumes:cinder",
        "[glance_store]",
        "default_backend = volumes",
        "[volumes]",
        *(f"{name} = {value}" for name, value in options.items()),
    ]
    path = workdir / "glance-api.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


@contextlib.contextmanager
def _serving(config: Path, workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """``kglance serve`` as a child process, killed if a test leaves it running."""
    socket_path = workdir / "kglance.sock"
    log_path = workdir / "sidecar.log"
    command = [
        *(sys.executable, "-m", "kglance.cli", "serve"),
        *("--config", str(config), "--socket", str(socket_path)),
        *("--grace-period", str(GRACE_PERIOD)),
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc, log_path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], socket_path: Path, log_path: Path) -> None:
    deadline = time.monotonic() + harness.START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"kglance serve exited with {proc.returncode}:\n{log_path.read_text()}"
            )
        with contextlib.suppress(OSError):
            if harness.request_sync(socket_path, "GET", "/readyz")[0] == 200:
                return
        time.sleep(0.05)
    raise AssertionError(f"kglance serve did not become ready:\n{log_path.read_text()}")


async def test_kglance_serve_with_a_cinder_backend_exits_on_sigterm() -> None:
    data = harness.payload(3 * cinder_helpers.MiB + 5)
    with tempfile.TemporaryDirectory(prefix="kglance-cinder-exit-") as tmp:
        workdir = Path(tmp)
        async with cinder_helpers.fake_cinder() as fake:
            with _serving(_config(fake, workdir), workdir) as (proc, log_path):
                socket_path = workdir / "kglance.sock"
                # the fake answers on this loop: block only other threads while waiting
                await asyncio.to_thread(_wait_ready, proc, socket_path, log_path)
                async with (
                    harness.session(socket_path) as client,
                    client.put(f"/v1/images/{IMAGE_ID}", data=harness.body(data)) as resp,
                ):
                    assert resp.status == 201, await resp.text()
                assert [v.status for v in fake.volumes.values()] == ["available"]
                assert not fake.attachments

                os.kill(proc.pid, signal.SIGTERM)
                try:
                    code = await asyncio.to_thread(proc.wait, EXIT_BOUND)
                except subprocess.TimeoutExpired:
                    raise AssertionError(
                        f"kglance serve still running {EXIT_BOUND} s after SIGTERM:\n"
                        + log_path.read_text()
                    ) from None
                assert code == 0, log_path.read_text()
                assert '"event": "stopped"' in log_path.read_text()
