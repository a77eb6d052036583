"""Where kglance's add and get spend their time: the same paths with one part changed.

Each case differs from ``kglance_fs``'s by one thing, so the gap between two rows is the cost
of that thing: the input reader alone, the policy pipeline into a sink that drops the bytes,
the full add with ``fsync`` made a no-op (this process only), and the get with larger reads.
The write ceilings (``dd``, with and without ``conv=fsync``) say what the disk allows.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import unittest.mock

from bench import plan
from bench.cases import _kglance_common, kglance_fs
from bench.core import Job, MiB, Stopwatch, Timing
from kglance.drivers import pipeline


async def _read_only(job: Job) -> Timing:
    nbytes = 0
    with Stopwatch() as watch:
        async for block in _kglance_common.read_file(job.input_file, job.block_size):
            nbytes += len(block)
    return watch.timing(nbytes)


def reader(job: Job) -> Timing:
    """The async input reader alone (one worker-thread hop per block)."""
    return asyncio.run(_read_only(job))


async def _pipeline_only(job: Job) -> Timing:
    stream = pipeline.CheckedStream(
        _kglance_common.read_file(job.input_file, job.block_size),
        size=job.size,
        hash_algo="sha512",
        chunk_size=int(job.params["chunk_size"]),
    )
    with Stopwatch() as watch:
        async for _chunk in stream:
            pass
    digests = stream.digests
    return watch.timing(digests.size, md5=digests.md5, sha512=digests.hash_value)


def pipeline_to_null(job: Job) -> Timing:
    """CheckedStream (md5 and sha512 on threads, size check) into a sink that drops the bytes."""
    return asyncio.run(_pipeline_only(job))


def add_without_fsync(job: Job) -> Timing:
    """The full add with ``os.fsync`` a no-op in this process: what durability costs."""

    def no_fsync(fd: int) -> None:
        pass

    with unittest.mock.patch.object(os, "fsync", no_fsync):
        return kglance_fs.add(job)


def _case(case_id: str, title: str, function: str, **params: str) -> plan.PythonCase:
    return plan.PythonCase(
        id=case_id,
        title=title,
        section="diagnostics",
        peer=plan.KGLANCE,
        function=f"{__name__}:{function}",
        params=params,
    )


def cases(settings: plan.Settings) -> list[plan.Case]:
    reads = f"{settings.block_size // 1024} KiB"
    found: list[plan.Case] = [
        plan.CommandCase(
            "limits.write",
            "dd bs=1M: write a copy (page cache, no fsync)",
            "diagnostics",
            ("dd", "if={file}", "of={workdir}/copy", "bs=1M", "status=none"),
        ),
        plan.CommandCase(
            "limits.write+fsync",
            "dd bs=1M conv=fsync: write a copy and fsync it",
            "diagnostics",
            ("dd", "if={file}", "of={workdir}/copy", "bs=1M", "conv=fsync", "status=none"),
        ),
        _case("kglance.reader", f"kglance bench async reader alone ({reads} reads)", "reader"),
    ]
    found.extend(
        _case(
            f"kglance.pipeline.{chunk // MiB}m",
            f"CheckedStream md5 + sha512 to a null sink ({chunk // MiB} MiB chunks)",
            "pipeline_to_null",
            chunk_size=str(chunk),
        )
        for chunk in (MiB, 4 * MiB)
    )
    if importlib.util.find_spec("kglance.drivers.filesystem") is None:
        return found
    found.append(
        _case("kglance.add.nofsync", "kglance Backend.add with fsync a no-op", "add_without_fsync")
    )
    found.extend(
        plan.PythonCase(
            id=f"kglance.get.{chunk // MiB}m",
            title=f"kglance Backend.get, filesystem_store_chunk_size {chunk // MiB} MiB",
            section="diagnostics",
            peer=plan.KGLANCE,
            function=f"{kglance_fs.__name__}:get",
            setup=f"{kglance_fs.__name__}:store_for_get",
            workdir="kglance.get",
            params={"chunk_size": str(chunk)},
        )
        for chunk in (MiB, 4 * MiB)
    )
    return found
