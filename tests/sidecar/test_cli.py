"""The ``kglance`` client commands, each run as its own process against a real sidecar.

Checked from the outside, as a script would see them: JSON on stdout, one line on stderr and
the exit status on failure (never a traceback), resumed downloads (their ``Range`` requests
are read back from the sidecar's operation log), verification, and a progress display that
appears on a terminal only.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pty
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from kglance import download
from kglance.progress import Progress
from kglance.sidecar.client import Client, SidecarUnavailable
from tests.sidecar import harness

IMAGE = harness.payload(2 * harness.MiB + 4321, seed=11)
OTHER = harness.payload(len(IMAGE), seed=12)
SHA512 = hashlib.sha512(IMAGE).hexdigest()


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Sidecar]:
    root = tmp_path_factory.mktemp("cli")
    datadirs = {"fast": root / "fast", "slow": root / "slow"}
    for directory in datadirs.values():
        directory.mkdir()
    config = harness.write_config(
        root / "glance-api.conf", harness.file_backends_config(datadirs, default="fast")
    )
    with harness.running(harness.Sidecar(root, config=config)) as sidecar:
        yield sidecar


def kglance(
    *args: str,
    socket: Path | None,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """``kglance ARGS --socket SOCKET`` (no --socket and no $KGLANCE_SOCKET for ``None``)."""
    command = [sys.executable, "-m", "kglance.cli", *args]
    if socket is not None:
        command += ["--socket", str(socket)]
    environment = {k: v for k, v in os.environ.items() if k != "KGLANCE_SOCKET"}
    environment.update(env or {})
    return subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env=environment,
        timeout=60,
        check=False,
    )


def stored(sidecar: harness.Sidecar, data: bytes = IMAGE, *args: str) -> str:
    image_id = str(uuid.uuid4())
    result = kglance("put", "-", "--id", image_id, *args, socket=sidecar.socket, stdin=data)
    assert result.returncode == 0, result.stderr
    return image_id


def failed(result: subprocess.CompletedProcess[bytes], status: int) -> str:
    """The one error line, after checking the status and that nothing else was printed."""
    assert result.returncode == status, (result.returncode, result.stderr)
    text = result.stderr.decode()
    assert "Traceback" not in text
    assert len(text.strip().splitlines()) == 1, text
    return text.strip()


# -- put, stat, rm, backends --------------------------------------------------------------------


def test_put_prints_the_result_and_defaults_to_a_new_uuid(
    sidecar: harness.Sidecar, tmp_path: Path
) -> None:
    source = tmp_path / "disk.img"
    source.write_bytes(IMAGE)
    result = kglance("put", str(source), socket=sidecar.socket)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""  # no terminal, no progress
    document = json.loads(result.stdout)
    assert uuid.UUID(document["image_id"]).version == 4
    assert document["size"] == len(IMAGE)
    assert document["checksum"] == hashlib.md5(IMAGE).hexdigest()
    assert (document["os_hash_algo"], document["os_hash_value"]) == ("sha512", SHA512)
    assert document["backend"] == "fast"


def test_put_with_backend_hash_and_checksum(sidecar: harness.Sidecar, tmp_path: Path) -> None:
    source = tmp_path / "disk.img"
    source.write_bytes(IMAGE)
    sha256 = hashlib.sha256(IMAGE).hexdigest()
    result = kglance(
        "put",
        str(source),
        "--backend",
        "slow",
        "--hash",
        "sha256",
        "--checksum",
        f"sha256:{sha256}",
        socket=sidecar.socket,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["backend"], document["os_hash_value"]) == ("slow", sha256)
    refused = kglance("put", str(source), "--checksum", "md5:" + "0" * 32, socket=sidecar.socket)
    assert failed(refused, 1).endswith("(checksum_mismatch)")


def test_put_from_a_pipe_with_a_declared_size(sidecar: harness.Sidecar) -> None:
    ok = kglance("put", "-", "--size", str(len(IMAGE)), socket=sidecar.socket, stdin=IMAGE)
    assert json.loads(ok.stdout)["size"] == len(IMAGE)
    short = kglance("put", "-", "--size", str(len(IMAGE) + 1), socket=sidecar.socket, stdin=IMAGE)
    assert failed(short, 1).endswith("(size_mismatch)")


def test_put_errors_are_one_line_with_the_code(sidecar: harness.Sidecar, tmp_path: Path) -> None:
    image_id = stored(sidecar)
    duplicate = kglance("put", "-", "--id", image_id, socket=sidecar.socket, stdin=b"again")
    line = failed(duplicate, 1)
    assert line.startswith("kglance put: ") and line.endswith("(duplicate)")
    bad_id = kglance("put", "-", "--id", "../etc", socket=sidecar.socket, stdin=b"x")
    assert failed(bad_id, 1).endswith("(invalid_image_id)")
    no_backend = kglance("put", "-", "--backend", "nope", socket=sidecar.socket, stdin=b"x")
    assert failed(no_backend, 1).endswith("(unknown_backend)")
    missing = kglance("put", str(tmp_path / "absent.img"), socket=sidecar.socket)
    assert "absent.img: No such file or directory" in failed(missing, 1)


def test_stat_rm_and_backends(sidecar: harness.Sidecar) -> None:
    image_id = stored(sidecar)
    stat = kglance("stat", image_id, socket=sidecar.socket)
    assert json.loads(stat.stdout) == {"image_id": image_id, "size": len(IMAGE)}
    assert kglance("rm", image_id, socket=sidecar.socket).returncode == 0
    assert failed(kglance("stat", image_id, socket=sidecar.socket), 1).endswith("(not_found)")
    assert failed(kglance("rm", image_id, socket=sidecar.socket), 1).endswith("(not_found)")
    backends = json.loads(kglance("backends", socket=sidecar.socket).stdout)
    assert [(b["id"], b["type"], b["default"]) for b in backends] == [
        ("fast", "file", True),
        ("slow", "file", False),
    ]


def test_no_sidecar_is_exit_status_3(tmp_path: Path) -> None:
    socket = tmp_path / "nobody.sock"
    for args in (["backends"], ["stat", "x"], ["get", "x", "-o", str(tmp_path / "out")]):
        line = failed(kglance(*args, socket=socket), 3)
        assert line == f"kglance {args[0]}: no sidecar listening on {socket}"


def test_socket_from_the_environment(sidecar: harness.Sidecar, tmp_path: Path) -> None:
    env = {"KGLANCE_SOCKET": str(sidecar.socket)}
    assert kglance("backends", socket=None, env=env).returncode == 0
    # without it, ./kglance.sock of the working directory
    line = failed(kglance("backends", socket=None, cwd=tmp_path), 3)
    assert line.endswith("no sidecar listening on ./kglance.sock")


def test_usage_errors_are_exit_status_2(sidecar: harness.Sidecar) -> None:
    assert kglance("get", "x", "--range", "9-1", socket=sidecar.socket).returncode == 2
    assert kglance("get", "x", "--checksum", "nohex", socket=sidecar.socket).returncode == 2
    assert kglance("frobnicate", socket=None).returncode == 2


# -- get ----------------------------------------------------------------------------------------


def test_get_to_stdout_and_ranges(sidecar: harness.Sidecar) -> None:
    image_id = stored(sidecar)
    assert kglance("get", image_id, socket=sidecar.socket).stdout == IMAGE
    cases = {"0-511": IMAGE[:512], "1000-": IMAGE[1000:], "-100": IMAGE[-100:]}
    for spec, expected in cases.items():
        result = kglance("get", image_id, "--range", spec, socket=sidecar.socket)
        assert result.returncode == 0, result.stderr
        assert result.stdout == expected, spec
    past = kglance("get", image_id, "--range", f"{len(IMAGE)}-", socket=sidecar.socket)
    assert failed(past, 1).endswith("(range_not_satisfiable)")


def test_a_reader_that_stops_early_ends_get_quietly(sidecar: harness.Sidecar) -> None:
    """``kglance get ID | head -c 10``: EPIPE is the shell's 141, without a traceback."""
    image_id = stored(sidecar)
    command = [
        sys.executable,
        "-m",
        "kglance.cli",
        "get",
        image_id,
        "--socket",
        str(sidecar.socket),
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.read(10) == IMAGE[:10]
        process.stdout.close()
        stderr = process.stderr.read()
        assert process.wait(60) == 141
    assert stderr == b""


def test_get_to_a_file(sidecar: harness.Sidecar, tmp_path: Path) -> None:
    image_id = stored(sidecar)
    out = tmp_path / "copy.img"
    result = kglance("get", image_id, "-o", str(out), socket=sidecar.socket)
    assert (result.returncode, result.stderr) == (0, b"")
    assert out.read_bytes() == IMAGE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.img"]
    ranged = tmp_path / "range.bin"
    kglance("get", image_id, "-o", str(ranged), "--range", "10-19", socket=sidecar.socket)
    assert ranged.read_bytes() == IMAGE[10:20]
    missing = kglance("get", str(uuid.uuid4()), "-o", str(tmp_path / "x"), socket=sidecar.socket)
    assert failed(missing, 1).endswith("(not_found)")
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.part").exists()


def last_get(sidecar: harness.Sidecar, image_id: str) -> dict[str, Any]:
    return sidecar.operations(op="get", image_id=image_id)[-1]


def test_interrupted_get_resumes_with_a_range_request(
    sidecar: harness.Sidecar, tmp_path: Path
) -> None:
    image_id = stored(sidecar)
    out = tmp_path / "copy.img"
    have = 1_500_000
    Path(f"{out}.part").write_bytes(IMAGE[:have])
    result = kglance("get", image_id, "-o", str(out), socket=sidecar.socket)
    assert result.returncode == 0, result.stderr
    assert f"resuming from byte {have}" in result.stderr.decode()
    assert out.read_bytes() == IMAGE
    assert not Path(f"{out}.part").exists()
    start = have - download.OVERLAP  # asked again for the overlap, then the rest
    operation = last_get(sidecar, image_id)
    assert operation["range"] == f"{start}-{len(IMAGE) - 1}"
    assert operation["bytes"] == len(IMAGE) - start


def test_a_complete_part_is_checked_and_renamed(sidecar: harness.Sidecar, tmp_path: Path) -> None:
    image_id = stored(sidecar)
    out = tmp_path / "copy.img"
    Path(f"{out}.part").write_bytes(IMAGE)
    assert kglance("get", image_id, "-o", str(out), socket=sidecar.socket).returncode == 0
    assert out.read_bytes() == IMAGE
    assert last_get(sidecar, image_id)["bytes"] == download.OVERLAP


def test_a_part_from_another_image_is_discarded(sidecar: harness.Sidecar, tmp_path: Path) -> None:
    image_id = stored(sidecar)
    out = tmp_path / "copy.img"
    Path(f"{out}.part").write_bytes(OTHER[:1_000_000])
    result = kglance("get", image_id, "-o", str(out), socket=sidecar.socket)
    assert result.returncode == 0, result.stderr
    assert f"does not match image {image_id}; starting over" in result.stderr.decode()
    assert out.read_bytes() == IMAGE
    operation = last_get(sidecar, image_id)
    assert "range" not in operation and operation["bytes"] == len(IMAGE)


def test_a_part_longer_than_the_image_is_discarded(
    sidecar: harness.Sidecar, tmp_path: Path
) -> None:
    image_id = stored(sidecar)
    out = tmp_path / "copy.img"
    Path(f"{out}.part").write_bytes(IMAGE + b"trailing")
    result = kglance("get", image_id, "-o", str(out), socket=sidecar.socket)
    assert result.returncode == 0, result.stderr
    assert "is longer than" in result.stderr.decode()
    assert out.read_bytes() == IMAGE


def test_a_stale_prefix_behind_a_matching_tail_is_caught_by_verification(
    sidecar: harness.Sidecar, tmp_path: Path
) -> None:
    image_id = stored(sidecar)
    out = tmp_path / "copy.img"
    have = 1_500_000  # wrong at the start, right in the 64 KiB the overlap compares
    Path(f"{out}.part").write_bytes(b"\0" * 1000 + IMAGE[1000:have])
    result = kglance(
        "get", image_id, "-o", str(out), "--checksum", f"sha512:{SHA512}", socket=sidecar.socket
    )
    assert result.returncode == 0, result.stderr
    assert "verification failed after resuming; fetching again" in result.stderr.decode()
    assert out.read_bytes() == IMAGE


# -- verification -------------------------------------------------------------------------------


def test_verify_against_the_put_result(sidecar: harness.Sidecar, tmp_path: Path) -> None:
    put = kglance("put", "-", socket=sidecar.socket, stdin=IMAGE)
    saved = tmp_path / "put.json"
    saved.write_bytes(put.stdout)
    image_id = json.loads(put.stdout)["image_id"]
    out = tmp_path / "copy.img"
    result = kglance("get", image_id, "-o", str(out), "--expect", str(saved), socket=sidecar.socket)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == IMAGE
    other = stored(sidecar)
    wrong = kglance(
        "get", other, "-o", str(tmp_path / "o"), "--expect", str(saved), socket=sidecar.socket
    )
    assert f"describes image {image_id}, not {other}" in failed(wrong, 2)


def test_verify_with_a_checksum(sidecar: harness.Sidecar, tmp_path: Path) -> None:
    image_id = stored(sidecar)
    sha256 = hashlib.sha256(IMAGE).hexdigest()
    out = tmp_path / "copy.img"
    ok = kglance(
        "get", image_id, "-o", str(out), "--checksum", f"sha256:{sha256}", socket=sidecar.socket
    )
    assert ok.returncode == 0 and out.read_bytes() == IMAGE
    to_stdout = kglance(
        "get",
        image_id,
        "--checksum",
        f"md5:{hashlib.md5(IMAGE).hexdigest()}",
        socket=sidecar.socket,
    )
    assert to_stdout.returncode == 0 and to_stdout.stdout == IMAGE
    range_digest = hashlib.sha256(IMAGE[100:200]).hexdigest()
    ranged = kglance(
        "get",
        image_id,
        "--range",
        "100-199",
        "--checksum",
        f"sha256:{range_digest}",
        socket=sidecar.socket,
    )
    assert ranged.returncode == 0 and ranged.stdout == IMAGE[100:200]


def test_verify_mismatch_fails_and_keeps_nothing(sidecar: harness.Sidecar, tmp_path: Path) -> None:
    image_id = stored(sidecar)
    out = tmp_path / "copy.img"
    wrong = f"sha256:{hashlib.sha256(OTHER).hexdigest()}"
    result = kglance("get", image_id, "-o", str(out), "--checksum", wrong, socket=sidecar.socket)
    assert failed(result, 1).endswith("(checksum_mismatch)")
    assert list(tmp_path.iterdir()) == []  # neither FILE nor a FILE.part to resume from
    to_stdout = kglance("get", image_id, "--checksum", wrong, socket=sidecar.socket)
    assert failed(to_stdout, 1).endswith("(checksum_mismatch)")


def test_verify_needs_a_digest_from_somewhere(sidecar: harness.Sidecar, tmp_path: Path) -> None:
    image_id = stored(sidecar)
    out = tmp_path / "copy.img"
    result = kglance("get", image_id, "-o", str(out), "--verify", socket=sidecar.socket)
    assert "keeps no digest" in failed(result, 2)
    assert list(tmp_path.iterdir()) == []
    ranged = kglance("get", image_id, "--range", "0-9", "--verify", socket=sidecar.socket)
    assert "--checksum" in failed(ranged, 2)


# -- terminals ----------------------------------------------------------------------------------


def run_on_terminal(args: Sequence[str], *, stream: str) -> tuple[int, bytes, bytes]:
    """Run with ``stream`` ("stdout" or "stderr") on a pseudo-terminal; status, pipe, tty."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "kglance.cli", *args],
            stdout=follower if stream == "stdout" else subprocess.PIPE,
            stderr=follower if stream == "stderr" else subprocess.PIPE,
            env={**os.environ, "COLUMNS": "120"},
        )
        os.close(follower)
        terminal = bytearray()
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: every process holding the follower is gone
                break
            if not data:
                break
            terminal += data
        piped = process.communicate(timeout=60)[0 if stream == "stderr" else 1]
    finally:
        os.close(leader)
    return process.returncode, piped, bytes(terminal)


def test_progress_is_drawn_on_a_terminal(sidecar: harness.Sidecar, tmp_path: Path) -> None:
    image_id = stored(sidecar)
    out = tmp_path / "copy.img"
    status, _, terminal = run_on_terminal(
        ["get", image_id, "-o", str(out), "--socket", str(sidecar.socket)], stream="stderr"
    )
    assert status == 0 and out.read_bytes() == IMAGE
    text = terminal.decode()
    assert f"get {image_id}" in text and "100%" in text and "2.0 MiB / 2.0 MiB" in text
    assert "/s" in text


def test_image_bytes_are_not_written_to_a_terminal(sidecar: harness.Sidecar) -> None:
    image_id = stored(sidecar)
    status, stderr, terminal = run_on_terminal(
        ["get", image_id, "--socket", str(sidecar.socket)], stream="stdout"
    )
    assert status == 2
    assert b"refusing to write image bytes to a terminal" in stderr
    assert terminal == b""


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_shows_rate_and_eta() -> None:
    times = iter([100.0, 102.0, 102.0])
    terminal = FakeTerminal()
    bar = Progress(
        "get x",
        total=8 * harness.MiB,
        initial=2 * harness.MiB,
        stream=terminal,
        clock=lambda: next(times),
    )
    bar.advance(2 * harness.MiB)  # 2 MiB in 2 s: 1 MiB/s, 4 MiB left
    drawn = terminal.getvalue()
    assert "50%" in drawn and "4.0 MiB / 8.0 MiB" in drawn
    assert "1.0 MiB/s" in drawn and "ETA 0:04" in drawn
    bar.close()
    assert terminal.getvalue().endswith("\n")
    columns = shutil.get_terminal_size((80, 24)).columns
    assert all(len(line) < columns for line in terminal.getvalue().rstrip("\n").split("\r"))
    quiet = FakeTerminal()
    with Progress("put y", total=1, stream=quiet, enabled=False) as silent:
        silent.advance(1)
    assert quiet.getvalue() == ""


# -- the README's main job ----------------------------------------------------------------------


def wait_ready(client: Client, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + harness.START_TIMEOUT
    while time.monotonic() < deadline:
        assert server.poll() is None, "kglance serve exited"
        with contextlib.suppress(SidecarUnavailable):
            if client.ready():
                return
        time.sleep(0.05)
    raise AssertionError("kglance serve did not become ready")


def test_serve_with_no_arguments_then_put_get_stat_rm(tmp_path: Path) -> None:
    """``kglance serve`` in a fresh directory, then the commands with every default."""
    server = subprocess.Popen(
        [sys.executable, "-m", "kglance.cli", "serve"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "KGLANCE_SOCKET"},
    )
    try:
        wait_ready(Client(str(tmp_path / "kglance.sock")), server)
        (tmp_path / "disk.img").write_bytes(IMAGE)
        image_id = "6c4f1a8e-0c7b-4ad8-9f0e-2f1b3c4d5e6f"
        put = kglance("put", "disk.img", "--id", image_id, socket=None, cwd=tmp_path)
        assert put.returncode == 0, put.stderr
        (tmp_path / "put.json").write_bytes(put.stdout)
        assert (tmp_path / "kglance-data" / image_id).read_bytes() == IMAGE
        stat = kglance("stat", image_id, socket=None, cwd=tmp_path)
        assert json.loads(stat.stdout)["size"] == len(IMAGE)
        get = kglance(
            "get", image_id, "-o", "copy.img", "--expect", "put.json", socket=None, cwd=tmp_path
        )
        assert get.returncode == 0, get.stderr
        assert (tmp_path / "copy.img").read_bytes() == IMAGE
        assert kglance("rm", image_id, socket=None, cwd=tmp_path).returncode == 0
        assert not (tmp_path / "kglance-data" / image_id).exists()
    finally:
        server.terminate()
        server.wait(30)
