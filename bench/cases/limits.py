"""The machine's own limits on the same file: how fast it can be read and hashed at all.

The targets are phrased against these: an add that must hash md5 and sha512 over every byte
cannot beat the slower of the two on one thread, glance_store's design (both digests serially
on the I/O thread) is bounded by the "md5 + sha512 serially" row, and "md5 and sha512 on two
threads" is the most a pipeline hashing the two in parallel can get out of the CPU.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from typing import Any

from bench import plan
from bench.core import Job, Stopwatch, Timing, read_blocks


def _hash_serially(job: Job, *algorithms: str) -> Timing:
    hashers = [hashlib.new(name) for name in algorithms]
    nbytes = 0
    with Stopwatch() as watch:
        for block in read_blocks(job.input_file, job.block_size):
            nbytes += len(block)
            for hasher in hashers:
                hasher.update(block)
    return watch.timing(nbytes, **{h.name: h.hexdigest() for h in hashers})


def sha512_one_thread(job: Job) -> Timing:
    return _hash_serially(job, "sha512")


def md5_one_thread(job: Job) -> Timing:
    return _hash_serially(job, "md5")


def md5_sha512_one_thread(job: Job) -> Timing:
    return _hash_serially(job, "md5", "sha512")


def _digest_worker(hasher: Any, blocks: queue.Queue[bytes | None]) -> None:
    while (block := blocks.get()) is not None:
        hasher.update(block)


def md5_sha512_two_threads(job: Job) -> Timing:
    """md5 and sha512 each on its own thread, fed through a queue up to 2 blocks deep.

    Neither digest waits for the other between blocks, so this is the most two threads can
    do; a design that joins both digests after every block (as CheckedStream does) gets less.
    """
    md5, sha512 = hashlib.md5(), hashlib.sha512()
    feeds: list[queue.Queue[bytes | None]] = [queue.Queue(maxsize=2), queue.Queue(maxsize=2)]
    workers = [
        threading.Thread(target=_digest_worker, args=(hasher, feed))
        for hasher, feed in zip((md5, sha512), feeds, strict=True)
    ]
    nbytes = 0
    with Stopwatch() as watch:
        for worker in workers:
            worker.start()
        for block in read_blocks(job.input_file, job.block_size):
            nbytes += len(block)
            for feed in feeds:
                feed.put(block)
        for feed in feeds:
            feed.put(None)
        for worker in workers:
            worker.join()
    return watch.timing(nbytes, md5=md5.hexdigest(), sha512=sha512.hexdigest())


def _python(case_id: str, title: str, function: str) -> plan.PythonCase:
    return plan.PythonCase(
        id=case_id,
        title=title,
        section="limits",
        peer=plan.KGLANCE,
        function=f"{__name__}:{function}",
    )


def cases(settings: plan.Settings) -> list[plan.Case]:
    block = f"{settings.block_size // 1024} KiB reads"
    found: list[plan.Case] = [
        _python("limits.sha512", f"hashlib.sha512, one thread ({block})", "sha512_one_thread"),
        _python("limits.md5", f"hashlib.md5, one thread ({block})", "md5_one_thread"),
        _python(
            "limits.md5+sha512",
            f"md5 + sha512 serially, one thread ({block})",
            "md5_sha512_one_thread",
        ),
        _python(
            "limits.md5+sha512.threads",
            f"md5 and sha512 on two threads ({block})",
            "md5_sha512_two_threads",
        ),
        plan.CommandCase("limits.cat", "cat FILE > /dev/null", "limits", ("cat", "{file}")),
        plan.CommandCase("limits.sha512sum", "sha512sum FILE", "limits", ("sha512sum", "{file}")),
    ]
    if settings.cold_cache:
        found.append(
            plan.CommandCase(
                "limits.cat.cold",
                "cat FILE > /dev/null",
                "get (cold cache)",
                ("cat", "{file}"),
                cold=True,
            )
        )
    return found
