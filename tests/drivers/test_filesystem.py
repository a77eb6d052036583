"""Filesystem-driver behaviour the conformance suite cannot see, on real directories.

The matrix:

* options: glance's defaults, the datadir/datadirs conflict, priorities, duplicate entries,
  decimal-written octal permissions, numeric ranges, unusable datadirs;
* datadir choice: the pure choice function with a stubbed ``statvfs`` (priority, free space,
  unknown sizes, unreadable directories), then real priorities, ``locate`` and in-place
  overwrite across two directories;
* errors from real filesystems: ENOSPC on a 1 MiB tmpfs, EROFS on a read-only remount, EPERM
  on an immutable (``chattr +i``) directory; each skips when this machine cannot set it up;
* atomic writes: concurrent creates racing to the final ``link``, overwrite, a duplicate that
  never consumes its stream, the rollback of a create whose caller was cancelled;
* crash leftovers: a writer process killed with SIGKILL, a live writer in another process;
* file modes, thin provisioning (holes measured with ``st_blocks``), the metadata file;
* confinement: '..', absolute paths elsewhere, escaping symlinks, hidden names, FIFOs;
* reads: ``local_file``, the read chunk size, a file truncated under a reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import pathlib
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from kglance.drivers import backends, base, errors, locations, registry
from kglance.drivers.filesystem import (
    FilesystemDriver,
    FilesystemOptions,
    datadirs,
    tempfiles,
    threads,
    writing,
)
from tests.conformance.suite import payload, stream

KiB = 1024
MiB = 1024 * KiB


def build(**options: Any) -> FilesystemDriver:
    driver = registry.Registry().build("file", options, backend_id="fs")
    assert isinstance(driver, FilesystemDriver)
    return driver


@pytest.fixture
def datadir(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "images"


@pytest.fixture
async def driver(datadir: pathlib.Path) -> AsyncIterator[FilesystemDriver]:
    built = build(filesystem_store_datadir=str(datadir))
    yield built
    await built.aclose()


@pytest.fixture
def backend(driver: FilesystemDriver) -> backends.Backend:
    return backends.Backend(driver, backend_id="fs")


async def start_and_stop(**options: Any) -> None:
    """Construct a driver (which sweeps leftovers) and close it again."""
    await build(**options).aclose()


def file_location(path: pathlib.Path | str) -> locations.FileLocation:
    return locations.FileLocation(path=str(path))


async def read(backend: backends.Backend, location: locations.Location) -> bytes:
    async with backend.get(location) as blob:
        return await blob.read()


def listing(directory: pathlib.Path) -> list[str]:
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def content(path: pathlib.Path) -> bytes:
    return path.read_bytes()


def write(path: pathlib.Path, data: bytes) -> None:
    path.write_bytes(data)


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False)


@contextlib.contextmanager
def tmpfs(path: pathlib.Path, *, size: str = "1m") -> Iterator[pathlib.Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        run("umount", "-l", str(path))


@contextlib.contextmanager
def immutable(path: pathlib.Path) -> Iterator[None]:
    changed = run("chattr", "+i", str(path))
    if changed.returncode:
        pytest.skip(f"cannot make {path} immutable: {changed.stderr.strip()}")
    try:
        yield
    finally:
        run("chattr", "-i", str(path))


# --------------------------------------------------------------------------- options


def test_defaults_are_glances() -> None:
    options = FilesystemOptions()
    assert options.filesystem_store_datadir == "/var/lib/glance/images"
    assert options.filesystem_store_datadirs == ()
    assert options.filesystem_store_metadata_file is None
    assert options.filesystem_store_file_perm == 0
    assert options.file_mode is None
    assert options.filesystem_store_chunk_size == 1024 * 1024  # glance_store: 64 KiB
    assert options.filesystem_thin_provisioning is False
    assert options.filesystem_store_timeout == 0
    assert options.filesystem_store_thread_pool_size == 10
    assert options.filesystem_store_threadpool_threshold == 75


async def test_explicit_datadir_and_datadirs_conflict(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.ConfigurationError) as caught:
        build(
            filesystem_store_datadir=str(tmp_path / "a"),
            filesystem_store_datadirs=[str(tmp_path / "b")],
        )
    assert "filesystem_store_datadir" in str(caught.value)
    assert "filesystem_store_datadirs" in str(caught.value)
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("datadir", [None, ""], ids=["none", "empty"])
async def test_datadirs_replace_the_default_or_an_emptied_datadir(
    tmp_path: pathlib.Path, datadir: str | None
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    explicit = {} if datadir is None else {"filesystem_store_datadir": datadir}
    driver = build(filesystem_store_datadirs=[f"{first}:1", f"{second}:5"], **explicit)
    assert [(d.path, d.priority) for d in driver.datadirs] == [(str(second), 5), (str(first), 1)]
    assert first.is_dir() and second.is_dir()
    await driver.aclose()


async def test_no_datadir_at_all_is_refused() -> None:
    with pytest.raises(errors.ConfigurationError, match="filesystem_store_datadir"):
        build(filesystem_store_datadir=None)


@pytest.mark.parametrize(
    "entry",
    ["{d}:high", "{d}:1.5", ":5", "{d}:", "{d}: "],
    ids=["word", "fraction", "no-path", "empty-priority", "blank-priority"],
)
async def test_bad_priority_is_refused(tmp_path: pathlib.Path, entry: str) -> None:
    with pytest.raises(errors.ConfigurationError, match="filesystem_store_datadirs"):
        build(filesystem_store_datadirs=[entry.format(d=tmp_path / "d")])


async def test_priority_defaults_to_zero_and_may_be_signed(tmp_path: pathlib.Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    driver = build(filesystem_store_datadirs=[str(a), f"{b}:-3", f"{c}:+7"])
    assert [(d.path, d.priority) for d in driver.datadirs] == [
        (str(c), 7),
        (str(a), 0),
        (str(b), -3),
    ]
    await driver.aclose()


async def test_same_path_twice(tmp_path: pathlib.Path) -> None:
    d = tmp_path / "d"
    with pytest.raises(errors.ConfigurationError, match="priorities 1 and 2"):
        build(filesystem_store_datadirs=[f"{d}:1", f"{d}/:2"])
    driver = build(filesystem_store_datadirs=[f"{d}:1", f"{d}/:1"])
    assert len(driver.datadirs) == 1
    await driver.aclose()


async def test_same_directory_through_a_symlink_with_another_priority(
    tmp_path: pathlib.Path,
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    with pytest.raises(errors.ConfigurationError, match="same directory"):
        build(filesystem_store_datadirs=[f"{real}:1", f"{tmp_path / 'alias'}:2"])


@pytest.mark.parametrize(
    "perm",
    [200, 300, 648, 8, -1, 17777, 77777],
    ids=["no-owner-read", "owner-wx", "digit-8", "single-8", "negative", "too-big", "five-digits"],
)
async def test_bad_file_perm_is_refused(tmp_path: pathlib.Path, perm: int) -> None:
    with pytest.raises(errors.ConfigurationError, match="filesystem_store_file_perm"):
        build(filesystem_store_datadir=str(tmp_path), filesystem_store_file_perm=perm)


@pytest.mark.parametrize(("perm", "mode"), [(0, None), (400, 0o400), (644, 0o644), (4750, 0o4750)])
def test_file_perm_is_octal_written_in_decimal(perm: int, mode: int | None) -> None:
    assert FilesystemOptions(filesystem_store_file_perm=perm).file_mode == mode


@pytest.mark.parametrize(
    "options",
    [
        {"filesystem_store_chunk_size": 0},
        {"filesystem_store_timeout": -1},
        {"filesystem_store_thread_pool_size": 0},
        {"filesystem_store_threadpool_threshold": 101},
        {"filesystem_store_datadir_typo": "/x"},
    ],
    ids=["chunk-size", "timeout", "pool-size", "threshold", "unknown-option"],
)
async def test_out_of_range_options_are_refused(
    tmp_path: pathlib.Path, options: dict[str, Any]
) -> None:
    with pytest.raises(errors.ConfigurationError):
        build(filesystem_store_datadir=str(tmp_path), **options)


async def test_datadir_is_created_with_its_parents(tmp_path: pathlib.Path) -> None:
    deep = tmp_path / "a" / "b" / "c"
    driver = build(filesystem_store_datadir=str(deep))
    assert deep.is_dir()
    await driver.aclose()


async def test_datadir_that_is_a_file_is_refused(tmp_path: pathlib.Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(errors.ConfigurationError, match="cannot create datadir"):
        build(filesystem_store_datadir=str(tmp_path / "file"))


async def test_unwritable_datadir_is_refused(tmp_path: pathlib.Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    with immutable(locked), pytest.raises(errors.ConfigurationError, match="not writable"):
        build(filesystem_store_datadir=str(locked))


async def test_relative_datadir_gives_absolute_locations(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    driver = build(filesystem_store_datadir="relative/images")
    stored = await driver.add("img", stream(b"abc"), size=3)
    assert stored.location == file_location(tmp_path / "relative" / "images" / "img")
    await driver.aclose()


# --------------------------------------------------------------------------- datadir choice


@dataclasses.dataclass(frozen=True)
class Stats:
    f_bavail: int
    f_frsize: int = 1
    f_bsize: int = 1


def stub_statvfs(free: dict[str, int | None]) -> Any:
    def statvfs(path: str) -> Stats:
        value = free[path]
        if value is None:
            raise OSError(errno.EIO, "Input/output error", path)
        return Stats(f_bavail=value)

    return statvfs


DIRS = (
    datadirs.Datadir(path="/low-big", real="/low-big", priority=1),
    datadirs.Datadir(path="/high-a", real="/high-a", priority=9),
    datadirs.Datadir(path="/high-b", real="/high-b", priority=9),
)


@pytest.mark.parametrize(
    ("free", "size", "chosen"),
    [
        ({"/low-big": 10**9, "/high-a": 100, "/high-b": 200}, 50, "/high-b"),
        ({"/low-big": 10**9, "/high-a": 300, "/high-b": 200}, 250, "/high-a"),
        ({"/low-big": 10**9, "/high-a": 300, "/high-b": 200}, 301, "/low-big"),
        ({"/low-big": 10, "/high-a": 0, "/high-b": 0}, None, "/low-big"),
        ({"/low-big": 10, "/high-a": 0, "/high-b": 0}, 0, "/high-a"),
        ({"/low-big": 10**9, "/high-a": None, "/high-b": 5}, 5, "/high-b"),
        ({"/low-big": 10**9, "/high-a": None, "/high-b": None}, 5, "/low-big"),
    ],
    ids=[
        "priority-beats-space",
        "most-free-in-priority",
        "falls-to-lower-priority",
        "unknown-size-skips-full",
        "empty-image-fits-anywhere",
        "unreadable-skipped",
        "unreadable-priority-skipped",
    ],
)
def test_choice(free: dict[str, int | None], size: int | None, chosen: str) -> None:
    assert datadirs.choose(DIRS, size=size, statvfs=stub_statvfs(free)).path == chosen


def test_choice_counts_fragments_not_blocks() -> None:
    def statvfs(path: str) -> Stats:
        return Stats(f_bavail=10, f_frsize=4096, f_bsize=1 if path == "/high-a" else 1 << 20)

    # /high-b reports a huge f_bsize but the same free space, so configuration order decides
    assert datadirs.choose(DIRS, size=40960, statvfs=statvfs).path == "/high-a"
    with pytest.raises(errors.StorageFull):
        datadirs.choose(DIRS, size=40961, statvfs=statvfs)


def test_choice_when_nothing_fits() -> None:
    free: dict[str, int | None] = {"/low-big": 99, "/high-a": 10, "/high-b": 98}
    with pytest.raises(errors.StorageFull, match="100 bytes"):
        datadirs.choose(DIRS, size=100, statvfs=stub_statvfs(free))


def test_choice_when_no_datadir_can_be_examined() -> None:
    free: dict[str, int | None] = {"/low-big": None, "/high-a": None, "/high-b": None}
    with pytest.raises(errors.BackendError) as caught:
        datadirs.choose(DIRS, size=1, statvfs=stub_statvfs(free))
    assert isinstance(caught.value.__cause__, OSError)


async def test_priorities_locate_and_in_place_overwrite(tmp_path: pathlib.Path) -> None:
    low, high = tmp_path / "low", tmp_path / "high"
    driver = build(filesystem_store_datadirs=[f"{low}:10", f"{high}:20"])
    backend = backends.Backend(driver, backend_id="fs")
    added = await backend.add("in-high", stream(b"one"), size=3)
    assert added.location == file_location(high / "in-high")
    # an image that only the low-priority directory holds (written by an older config)
    (low / "in-low").write_bytes(b"old")
    assert await backend.locate("in-low") == file_location(low / "in-low")
    with pytest.raises(errors.AlreadyExists):
        await backend.add("in-low", stream(b"new"), size=3)
    replaced = await backend.add("in-low", stream(b"newer"), size=5, mode="overwrite")
    assert replaced.location == file_location(low / "in-low")
    assert (low / "in-low").read_bytes() == b"newer"
    assert sorted(os.listdir(high)) == ["in-high"]
    with pytest.raises(errors.NotFound):
        await backend.locate("nowhere")
    await driver.aclose()


# --------------------------------------------------------------------------- real-filesystem errors


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (errno.ENOSPC, errors.StorageFull),
        (errno.EFBIG, errors.StorageFull),
        (errno.EDQUOT, errors.StorageFull),
        (errno.EACCES, errors.WriteDenied),
        (errno.EPERM, errors.WriteDenied),
        (errno.EROFS, errors.WriteDenied),
        (errno.EIO, None),
        (errno.ENOENT, None),
    ],
    ids=["ENOSPC", "EFBIG", "EDQUOT", "EACCES", "EPERM", "EROFS", "EIO", "ENOENT"],
)
def test_errno_mapping(code: int, kind: type[errors.StoreError] | None) -> None:
    mapped = writing.map_os_error(OSError(code, os.strerror(code)), action="writing x")
    if kind is None:
        assert mapped is None
    else:
        assert type(mapped) is kind
        assert os.strerror(code) in str(mapped)


class Recording:
    """An upload stream that records how much of it was consumed."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for piece in stream(self.data):
            self.sent += len(piece)
            yield piece


async def test_enospc_on_a_full_filesystem(tmp_path: pathlib.Path) -> None:
    with tmpfs(tmp_path / "small") as small:
        driver = build(filesystem_store_datadir=str(small))
        backend = backends.Backend(driver, backend_id="fs")
        with pytest.raises(errors.StorageFull) as caught:
            await backend.add("too-big", stream(payload(2 * MiB)), size=None)
        assert isinstance(caught.value.__cause__, OSError)
        assert caught.value.__cause__.errno == errno.ENOSPC
        assert os.listdir(small) == []
        # a declared size that cannot fit fails before a byte of the stream is read
        upload = Recording(payload(2 * MiB))
        with pytest.raises(errors.StorageFull, match=str(2 * MiB)):
            await backend.add("declared-too-big", aiter(upload), size=2 * MiB)
        assert upload.sent == 0
        await driver.aclose()


async def test_read_only_filesystem_denies_writes(tmp_path: pathlib.Path) -> None:
    with tmpfs(tmp_path / "ro") as mounted:
        driver = build(filesystem_store_datadir=str(mounted))
        backend = backends.Backend(driver, backend_id="fs")
        kept = await backend.add("kept", stream(b"abc"), size=3)
        remounted = run("mount", "-o", "remount,ro", str(mounted))
        if remounted.returncode:
            pytest.skip(f"cannot remount read-only: {remounted.stderr.strip()}")
        with pytest.raises(errors.WriteDenied):
            await backend.add("new", stream(b"abc"), size=3)
        with pytest.raises(errors.WriteDenied):
            await backend.delete(kept.location)
        assert await read(backend, kept.location) == b"abc"
        await driver.aclose()


async def test_immutable_directory_denies_writes_and_deletes(
    backend: backends.Backend, datadir: pathlib.Path
) -> None:
    kept = await backend.add("kept", stream(b"abc"), size=3)
    with immutable(datadir):
        with pytest.raises(errors.WriteDenied) as caught:
            await backend.add("new", stream(b"abc"), size=3)
        assert isinstance(caught.value.__cause__, PermissionError)
        with pytest.raises(errors.WriteDenied):
            await backend.delete(kept.location)
    assert os.listdir(datadir) == ["kept"]


# --------------------------------------------------------------------------- atomic writes


async def test_concurrent_creates_race_to_the_link(
    backend: backends.Backend, datadir: pathlib.Path
) -> None:
    contenders = 5
    barrier = asyncio.Barrier(contenders)

    async def gated(data: bytes) -> AsyncIterator[bytes]:
        yield data
        await barrier.wait()  # every upload is past the early existence check

    datas = [payload(100 * KiB + n, seed=n) for n in range(contenders)]
    outcomes = await asyncio.gather(
        *(backend.add("race", gated(d), size=len(d)) for d in datas), return_exceptions=True
    )
    winners = [o for o in outcomes if isinstance(o, backends.AddResult)]
    losers = [o for o in outcomes if not isinstance(o, backends.AddResult)]
    assert len(winners) == 1, outcomes
    assert len(losers) == contenders - 1
    for loser in losers:
        assert isinstance(loser, errors.AlreadyExists)
        assert isinstance(loser.__cause__, FileExistsError)  # refused by link(), not a check
    assert (datadir / "race").read_bytes() == datas[outcomes.index(winners[0])]
    assert os.listdir(datadir) == ["race"]


async def test_duplicate_is_refused_before_reading_the_stream(
    backend: backends.Backend,
) -> None:
    await backend.add("taken", stream(b"abc"), size=3)
    upload = Recording(payload(MiB))
    with pytest.raises(errors.AlreadyExists):
        await backend.add("taken", aiter(upload), size=MiB)
    assert upload.sent == 0


async def test_overwrite(backend: backends.Backend, datadir: pathlib.Path) -> None:
    first = await backend.add("img", stream(b"first"), size=5, mode="overwrite")
    second = await backend.add("img", stream(b"second!"), size=7, mode="overwrite")
    assert first.location == second.location
    assert await read(backend, second.location) == b"second!"

    async def broken() -> AsyncIterator[bytes]:
        yield b"partial"
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        await backend.add("img", broken(), size=None, mode="overwrite")
    assert await read(backend, second.location) == b"second!"
    assert os.listdir(datadir) == ["img"]


async def test_partial_image_is_never_visible(backend: backends.Backend) -> None:
    written = asyncio.Event()
    release = asyncio.Event()

    async def held() -> AsyncIterator[bytes]:
        yield payload(2 * MiB)
        written.set()
        await release.wait()

    task = asyncio.create_task(backend.add("pending", held(), size=2 * MiB))
    await written.wait()  # the pipeline asks for more only after the driver wrote the chunk
    with pytest.raises(errors.NotFound):
        await backend.locate("pending")
    release.set()
    result = await task
    assert await backend.size(result.location) == 2 * MiB


def test_cancelled_create_is_rolled_back_after_its_link(datadir: pathlib.Path) -> None:
    datadir.mkdir()
    temp = writing.TempFile.create(str(datadir), thin=False, file_mode=None)
    temp.write(b"data")
    temp.commit("img", overwrite=False)
    assert os.listdir(datadir) == ["img"]
    temp.discard()  # what a cancellation landing during commit does
    assert os.listdir(datadir) == []

    other = writing.TempFile.create(str(datadir), thin=False, file_mode=None)
    other.write(b"mine")
    other.commit("img", overwrite=False)
    os.unlink(datadir / "img")
    (datadir / "img").write_bytes(b"someone else's")  # the name now holds another file
    other.discard()
    assert (datadir / "img").read_bytes() == b"someone else's"


# --------------------------------------------------------------------------- crash leftovers


@pytest.fixture
def in_use_temp_file(datadir: pathlib.Path) -> Iterator[pathlib.Path]:
    """A temporary file whose writer is alive: someone holds its lock."""
    datadir.mkdir()
    path = datadir / tempfiles.new_name()
    path.write_bytes(b"being written")
    with open(path, "rb+") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        yield path


async def test_leftover_sweep_removes_only_abandoned_temp_files(
    datadir: pathlib.Path, in_use_temp_file: pathlib.Path
) -> None:
    keep = [".kglance-tmp.short", ".hidden", "image", in_use_temp_file.name]
    for name in [*keep[:3], tempfiles.new_name()]:
        write(datadir / name, b"abandoned")
    await start_and_stop(filesystem_store_datadir=str(datadir))
    assert listing(datadir) == sorted(keep)


async def test_writer_killed_mid_upload_leaves_a_file_the_next_start_removes(
    datadir: pathlib.Path,
) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        from kglance.drivers import registry

        async def endless():
            while True:
                yield b"x" * 65536
                await asyncio.sleep(0.01)

        async def main():
            options = {"filesystem_store_datadir": sys.argv[1]}
            driver = registry.Registry().build("file", options, backend_id="w")
            await driver.add("crashing", endless(), size=None)

        asyncio.run(main())
        """
    )
    writer = await asyncio.create_subprocess_exec(sys.executable, "-c", script, str(datadir))
    try:
        while not listing(datadir):
            assert writer.returncode is None, "the writer exited early"
            await asyncio.sleep(0.05)
        [temp_name] = os.listdir(datadir)
        assert tempfiles.is_temp_name(temp_name)
        # another pod starting on the same volume leaves the live writer's file alone
        await start_and_stop(filesystem_store_datadir=str(datadir))
        assert os.listdir(datadir) == [temp_name]
    finally:
        writer.kill()
        await writer.wait()
    assert os.listdir(datadir) == [temp_name]
    await start_and_stop(filesystem_store_datadir=str(datadir))
    assert os.listdir(datadir) == []


# --------------------------------------------------------------------------- modes, holes, metadata


@pytest.mark.parametrize(
    ("perm", "file_mode", "dir_bits"),
    [(600, 0o600, 0), (640, 0o640, stat.S_IXGRP), (644, 0o644, stat.S_IXGRP | stat.S_IXOTH)],
)
async def test_file_perm(tmp_path: pathlib.Path, perm: int, file_mode: int, dir_bits: int) -> None:
    directory = tmp_path / "images"
    directory.mkdir(mode=0o700)
    os.chmod(directory, 0o700)
    driver = build(filesystem_store_datadir=str(directory), filesystem_store_file_perm=perm)
    await driver.add("img", stream(b"abc"), size=3)
    assert stat.S_IMODE(os.stat(directory / "img").st_mode) == file_mode
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700 | dir_bits
    await driver.aclose()


async def test_no_file_perm_leaves_the_umask_mode(driver: FilesystemDriver) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    stored = await driver.add("img", stream(b"abc"), size=3)
    assert isinstance(stored.location, locations.FileLocation)
    assert stat.S_IMODE(os.stat(stored.location.path).st_mode) == 0o666 & ~umask


def allocated(path: pathlib.Path) -> int:
    return os.stat(path).st_blocks * 512


@pytest.mark.parametrize("thin", [True, False], ids=["thin", "thick"])
async def test_thin_provisioning_leaves_holes(tmp_path: pathlib.Path, thin: bool) -> None:
    driver = build(
        filesystem_store_datadir=str(tmp_path / "images"), filesystem_thin_provisioning=thin
    )
    backend = backends.Backend(driver, backend_id="fs")
    shapes = {
        "zeros-then-data": bytes(8 * MiB) + payload(10),
        "data-then-zeros": payload(10) + bytes(8 * MiB),
        "zeros-between": payload(100 * KiB) + bytes(4 * MiB + 123) + payload(100 * KiB),
    }
    for name, data in shapes.items():
        result = await backend.add(name, stream(data, piece=300 * KiB), size=len(data))
        path = tmp_path / "images" / name
        assert result.size == len(data) == os.stat(path).st_size
        assert await read(backend, result.location) == data
        if thin:
            assert allocated(path) < 2 * MiB, name
        else:
            assert allocated(path) >= 4 * MiB, name
    await driver.aclose()


def test_data_runs() -> None:
    block = 4
    chunk = b"\0\0\0\0" + b"ab\0\0" + b"\0\0\0c" + b"\0\0\0\0" + b"\0\0\0\0" + b"z"
    assert writing.data_runs(chunk, block=block) == [(4, 12), (20, 21)]
    assert writing.data_runs(bytes(12), block=block) == []
    assert writing.data_runs(b"abc", block=block) == [(0, 3)]


def write_json(path: pathlib.Path, document: Any) -> str:
    path.write_text(json.dumps(document))
    return str(path)


async def test_metadata_entry_of_the_mount_holding_the_datadir(tmp_path: pathlib.Path) -> None:
    mount = tmp_path / "mnt"
    images = mount / "nfs" / "images"
    entries = [
        # glance matched string prefixes, so this one claimed .../nfs/images too
        {"id": "wrong", "mountpoint": str(mount / "nf")},
        {"id": "outer", "mountpoint": str(mount)},
        {"id": "inner", "mountpoint": str(mount / "nfs"), "label": "shared"},
        {"id": "elsewhere", "mountpoint": str(tmp_path / "other")},
    ]
    driver = build(
        filesystem_store_datadir=str(images),
        filesystem_store_metadata_file=write_json(tmp_path / "meta.json", entries),
    )
    backend = backends.Backend(driver, backend_id="fs")
    result = await backend.add("img", stream(b"abc"), size=3)
    assert result.metadata == {
        "id": "inner",
        "mountpoint": str(mount / "nfs"),
        "label": "shared",
        "store": "fs",
    }
    await driver.aclose()


async def test_metadata_single_object_and_no_match(tmp_path: pathlib.Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images2").mkdir()
    single = {"id": "only", "mountpoint": str(tmp_path / "images")}
    metadata_file = write_json(tmp_path / "meta.json", single)
    matched = build(
        filesystem_store_datadir=str(tmp_path / "images"),
        filesystem_store_metadata_file=metadata_file,
    )
    stored = await matched.add("img", stream(b"abc"), size=3)
    assert stored.metadata == single
    unmatched = build(
        filesystem_store_datadir=str(tmp_path / "images2"),
        filesystem_store_metadata_file=metadata_file,
    )
    stored = await unmatched.add("img", stream(b"abc"), size=3)
    assert stored.metadata == {}
    await matched.aclose()
    await unmatched.aclose()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "not valid JSON"),
        ("42", "JSON object or a list"),
        ('[{"id": "x"}]', "'mountpoint' must be a non-empty string"),
        ('{"id": "", "mountpoint": "/m"}', "'id' must be a non-empty string"),
        ('[{"id": "x", "mountpoint": "/m", "extra": {"nested": 1}}]', "'extra' must be a string"),
        ('["/m"]', "not a JSON object"),
    ],
    ids=["missing", "not-json", "number", "no-mountpoint", "empty-id", "nested", "string-entry"],
)
async def test_bad_metadata_file_is_refused(
    tmp_path: pathlib.Path, content: str | None, message: str
) -> None:
    path = tmp_path / "meta.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(errors.ConfigurationError, match=message):
        build(
            filesystem_store_datadir=str(tmp_path / "images"),
            filesystem_store_metadata_file=str(path),
        )


# --------------------------------------------------------------------------- confinement


@pytest.fixture
def outside(tmp_path: pathlib.Path) -> pathlib.Path:
    secret = tmp_path / "outside" / "secret"
    secret.parent.mkdir()
    secret.write_bytes(b"not an image")
    return secret


def escaping_locations(datadir: pathlib.Path, outside: pathlib.Path) -> dict[str, str]:
    (datadir / "link").symlink_to(outside)
    (datadir / "subdir-link").symlink_to(outside.parent)
    (datadir / "inner-link").symlink_to(datadir / "real")
    (datadir / "real").write_bytes(b"real")
    (datadir / tempfiles.new_name()).write_bytes(b"")
    hidden = next(n for n in os.listdir(datadir) if n.startswith("."))
    return {
        "dotdot": f"{datadir}/../outside/secret",
        "dotdot-back-inside": f"{datadir}/../{datadir.name}/real",
        "absolute-outside": str(outside),
        "symlink-file": str(datadir / "link"),
        "symlink-dir": str(datadir / "subdir-link" / "secret"),
        "symlink-inside": str(datadir / "inner-link"),
        "temp-file": str(datadir / hidden),
        "the-datadir-itself": str(datadir),
        "relative": "outside/secret",
    }


async def test_locations_outside_the_datadirs_are_refused(
    driver: FilesystemDriver,
    backend: backends.Backend,
    datadir: pathlib.Path,
    outside: pathlib.Path,
) -> None:
    assert driver.owns(file_location(datadir / "real"))
    for name, path in escaping_locations(datadir, outside).items():
        location = file_location(path)
        assert not driver.owns(location), name
        with pytest.raises(errors.InvalidLocation):
            await backend.size(location)
        # the driver defends itself too, without the backend's check
        with pytest.raises(errors.InvalidLocation):
            await driver.size(location)
        with pytest.raises(errors.InvalidLocation):
            async with driver.get(location):
                pass
        with pytest.raises(errors.InvalidLocation):
            await driver.delete(location)
    assert content(outside) == b"not an image"
    assert content(datadir / "real") == b"real"


async def test_other_schemes_and_spellings(driver: FilesystemDriver, datadir: pathlib.Path) -> None:
    assert driver.owns(locations.FileLocation.parse(f"filesystem://{datadir}/img"))
    assert driver.owns(file_location(f"{datadir}//img"))
    assert not driver.owns(locations.parse("http://example.com/img"))
    with pytest.raises(errors.InvalidLocation):
        await driver.size(locations.parse("http://example.com/img"))


async def test_special_files_are_not_images(
    driver: FilesystemDriver, datadir: pathlib.Path
) -> None:
    os.mkfifo(datadir / "fifo")
    (datadir / "dir").mkdir()
    for name in ("fifo", "dir"):
        with pytest.raises(errors.InvalidLocation):
            async with driver.get(file_location(datadir / name)):
                pass
        with pytest.raises(errors.InvalidLocation):
            await driver.size(file_location(datadir / name))
        with pytest.raises(errors.NotFound):
            await driver.locate(name)


@pytest.mark.parametrize("image_id", ["", "a/b", "..", ".hidden", "nul\x00"])
async def test_driver_refuses_ids_that_are_not_file_names(
    driver: FilesystemDriver, image_id: str
) -> None:
    with pytest.raises(errors.InvalidImageId):
        await driver.add(image_id, stream(b"x"), size=1)
    with pytest.raises(errors.InvalidImageId):
        await driver.locate(image_id)


# --------------------------------------------------------------------------- reads


async def test_local_file_for_sendfile(backend: backends.Backend) -> None:
    data = payload(50_000)
    result = await backend.add("img", stream(data), size=len(data))
    async with backend.get(result.location, byte_range=base.ByteRange(1000, 2000)) as blob:
        local = blob.local_file()
        assert local is not None
        assert (local.offset, local.length) == (1000, 2000)
        assert os.pread(local.file.fileno(), local.length, local.offset) == data[1000:3000]
        assert await blob.read() == data[1000:3000]
    assert local.file.closed


async def test_read_chunk_size(tmp_path: pathlib.Path) -> None:
    driver = build(filesystem_store_datadir=str(tmp_path), filesystem_store_chunk_size=1000)
    data = payload(4500)
    result = await driver.add("img", stream(data), size=len(data))
    async with driver.get(result.location, byte_range=base.ByteRange(100)) as blob:
        sizes = [len(chunk) async for chunk in blob]
    assert sizes == [1000, 1000, 1000, 1000, 400]
    await driver.aclose()


async def test_file_truncated_under_a_reader(backend: backends.Backend) -> None:
    data = payload(300_000)
    result = await backend.add("img", stream(data), size=len(data))
    assert isinstance(result.location, locations.FileLocation)
    async with backend.get(result.location) as blob:
        os.truncate(result.location.path, 100_000)
        with pytest.raises(errors.BackendError, match="truncated"):
            await blob.read()


async def test_missing_image(driver: FilesystemDriver, datadir: pathlib.Path) -> None:
    location = file_location(datadir / "absent")
    assert driver.owns(location)
    with pytest.raises(errors.NotFound):
        await driver.size(location)
    with pytest.raises(errors.NotFound):
        async with driver.get(location):
            pass
    await driver.delete(location)


# --------------------------------------------------------------------------- timeouts


async def test_metadata_calls_time_out() -> None:
    calls = threads.BoundedCalls(timeout=0.2, pool_size=1, threshold_percent=75, name="t")
    stuck = threading.Event()
    try:
        with pytest.raises(errors.RemoteUnavailable, match="filesystem_store_timeout"):
            await calls.run(stuck.wait, what="stat on a dead mount")
    finally:
        stuck.set()
        calls.close()
    assert errors.RemoteUnavailable.retryable
