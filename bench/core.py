"""The contract between the runner and a measured child process, in the standard library only.

A child gets a ``Job`` (as JSON), calls one case function with it and writes back a ``Timing``.
The function times only the section that matters (imports, configuration and clean-up are
outside the stopwatch), so an interpreter's start-up cost never shows up as lost throughput.
The child adds its own peak RSS to the result, so a case function never has to.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import time
from collections.abc import Callable, Iterator
from types import TracebackType

MiB = 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    """What one child process is asked to do."""

    input_file: str  # the generated data every case reads
    size: int  # its length in bytes
    workdir: str  # scratch directory owned by the case (stores' data dirs live here)
    block_size: int  # how much the input reader asks for at a time
    params: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Job:
        return cls(**json.loads(text))


@dataclasses.dataclass(frozen=True, slots=True)
class Timing:
    """What a case function reports: the timed section only."""

    seconds: float
    nbytes: int
    cpu_seconds: float  # user + system CPU of the whole process during the section
    info: dict[str, str] = dataclasses.field(default_factory=dict)
    peak_rss_kib: int = 0  # the process's VmHWM, filled in by bench.child after the call

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Timing:
        return cls(**json.loads(text))


CaseFunction = Callable[[Job], Timing]


def _cpu_now() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Stopwatch:
    """Wall-clock and process CPU time of a ``with`` block."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self._start = 0.0
        self._cpu_start = 0.0

    def __enter__(self) -> Stopwatch:
        self._cpu_start = _cpu_now()
        self._start = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.seconds = time.perf_counter() - self._start
        self.cpu_seconds = _cpu_now() - self._cpu_start

    def timing(self, nbytes: int, **info: str) -> Timing:
        return Timing(
            seconds=self.seconds, nbytes=nbytes, cpu_seconds=self.cpu_seconds, info=dict(info)
        )


def peak_rss_kib() -> int:
    """This process's peak resident set (VmHWM), in KiB.

    Not ``ru_maxrss`` as the parent sees it through ``wait4``: Linux folds the memory of the
    process that spawned the child (vfork + exec) into that figure, so every child would
    appear at least as large as the runner.
    """
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def read_blocks(path: str, block_size: int) -> Iterator[bytes]:
    """The input file in ``block_size`` pieces, without buffering in between."""
    with open(path, "rb", buffering=0) as f:
        while block := f.read(block_size):
            yield block


def fresh_dir(path: str) -> str:
    """``path`` as an existing directory (the caller owns whatever is inside)."""
    os.makedirs(path, exist_ok=True)
    return path
