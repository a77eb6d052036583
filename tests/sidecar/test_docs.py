"""The documentation says what the sidecar does: its examples run, its error table is complete.

``docs/sidecar.md`` promises ``curl --unix-socket`` examples that work when pasted. This runs
every ``sh`` block of it, in order, with bash in a fresh directory next to a sidecar started
there with no arguments (as the page says), and checks what they print. ``docs/api.yaml`` must
name every error code of ``kglance.drivers.errors``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kglance.drivers import errors
from tests.sidecar import harness

DOCS = Path(__file__).resolve().parents[2] / "docs"


def sh_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", markdown, flags=re.S | re.M)


def error_codes() -> set[str]:
    codes: set[str] = set()
    pending: list[type[errors.StoreError]] = [errors.StoreError]
    while pending:
        cls = pending.pop()
        if cls.__module__ == errors.__name__:
            codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    return codes


def test_the_api_document_names_every_error_code() -> None:
    text = (DOCS / "api.yaml").read_text()
    missing = sorted(code for code in error_codes() if f"`{code}`" not in text)
    assert not missing, f"docs/api.yaml does not describe {missing}"
    enum = re.search(r"enum:\n((?:\s+- \w+\n)+)", text)
    assert enum is not None
    assert error_codes() <= set(re.findall(r"- (\w+)", enum[1]))


@pytest.fixture
def default_sidecar(tmp_path: Path) -> Iterator[Path]:
    """``kglance serve`` with no arguments in ``tmp_path``: socket ./kglance.sock."""
    environment = {k: v for k, v in os.environ.items() if k != "KGLANCE_SOCKET"}
    server = subprocess.Popen(
        [sys.executable, "-m", "kglance.cli", "serve"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + harness.START_TIMEOUT
        while True:
            assert server.poll() is None, "kglance serve exited"
            try:
                if harness.request_sync(tmp_path / "kglance.sock", "GET", "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "kglance serve did not become ready"
            time.sleep(0.05)
        yield tmp_path
    finally:
        server.terminate()
        server.wait(30)


def test_the_curl_examples_work_when_pasted(default_sidecar: Path) -> None:
    if shutil.which("curl") is None or shutil.which("bash") is None:
        if os.environ.get("KGLANCE_REQUIRE_SERVERS") == "1":
            pytest.fail("curl and bash are needed (scripts/test.sh installs curl)")
        pytest.skip("curl or bash is not installed")
    blocks = sh_blocks((DOCS / "sidecar.md").read_text())
    assert len(blocks) >= 8
    script = "set -euo pipefail\n" + "\n".join(blocks)
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=default_sidecar,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    expected = [
        '"image_id": "6c4f1a8e-0c7b-4ad8-9f0e-2f1b3c4d5e6f"',  # PUT
        '"image_id": "disk-copy-2"',  # chunked PUT with size and checksum
        "HTTP/1.1 409 Conflict",
        '"code": "duplicate"',
        "Content-Length: 10485760",  # HEAD
        "identical",
        "HTTP/1.1 206 Partial Content",
        "Content-Range: bytes 0-511/10485760",
        "first 512 bytes identical",
        "HTTP/1.1 416 Requested Range Not Satisfiable",
        "Content-Range: bytes */10485760",
        "same bytes by location",
        '"code": "invalid_location"',
        "204\n204\n",
        '"code": "not_found"',
        '"default": true',  # backends
        '{"status": "ok"}',
        '"status": "ready"',
        'kglance_sidecar_sent_bytes_total{backend="local"}',
    ]
    positions = []
    for text in expected:
        assert text in out, f"{text!r} not in the output:\n{out}"
        positions.append(out.index(text))
    assert positions == sorted(positions), "the examples printed things out of order"
    assert not (default_sidecar / "kglance-data" / "6c4f1a8e-0c7b-4ad8-9f0e-2f1b3c4d5e6f").exists()
