"""The common runner: one fresh process per sample, timed and with its peak RSS.

Peak RSS is the measured process's own high-water mark: Python children report their VmHWM,
programs run under GNU ``time -f %M`` (a small C process whose fork does not carry the
runner's memory along). ``ru_maxrss`` straight from ``wait4`` would not do: Linux folds the
spawning process's resident set into it at exec, so each child would look as big as the runner.

Every sample starts from the same state: dirty pages from the previous sample are flushed
(``sync``) so their write-back does not steal from the next one, and cold-cache samples have
the page cache dropped first.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import plan
from bench.core import Job, Timing
from bench.peers import Peers

DROP_CACHES = "/proc/sys/vm/drop_caches"
GNU_TIME = "/usr/bin/time"  # Debian package "time"


class CaseFailed(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    seconds: float
    nbytes: int
    cpu_seconds: float
    peak_rss_kib: int | None  # None: could not be measured (no GNU time)
    info: dict[str, str]

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / self.seconds / 1e6


def drop_page_cache() -> bool:
    """Flush dirty pages and drop the page cache; False when this kernel will not let us."""
    os.sync()
    try:
        with open(DROP_CACHES, "w", encoding="ascii") as f:
            f.write("3\n")
    except OSError:
        return False
    return True


@dataclasses.dataclass(frozen=True, slots=True)
class _Exit:
    returncode: int
    seconds: float
    cpu_seconds: float  # of the process and the children it waited for


def _spawn(argv: list[str], *, cwd: Path, log: Path) -> _Exit:
    """Run ``argv`` to completion with stdout to /dev/null and stderr to ``log``."""
    with open(os.devnull, "wb") as devnull, open(log, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=devnull, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return _Exit(
        returncode=proc.returncode,
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Runner:
    """Runs cases against one input file, keeping per-case scratch dirs under ``workroot``."""

    root: Path  # the repository: children run here so ``bench`` imports
    input_file: Path
    size: int
    block_size: int
    workroot: Path
    peers: Peers

    def workdir(self, case: plan.Case) -> Path:
        name = case.workdir if isinstance(case, plan.PythonCase) and case.workdir else case.id
        path = self.workroot / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def job(self, case: plan.PythonCase, extra: dict[str, str] | None = None) -> Job:
        return Job(
            input_file=str(self.input_file),
            size=self.size,
            workdir=str(self.workdir(case)),
            block_size=self.block_size,
            params={**case.params, **(extra or {})},
        )

    def _check(self, case: plan.Case, done: _Exit, log: Path) -> None:
        if done.returncode != 0:
            tail = log.read_text(errors="replace")[-3000:]
            raise CaseFailed(f"{case.id} exited with {done.returncode}:\n{tail}")

    def call(self, case: plan.PythonCase, function: str, job: Job) -> Sample:
        """One process of the case's peer running ``function(job)``."""
        with tempfile.TemporaryDirectory(prefix="kglance-bench-") as tmp:
            result, log = Path(tmp) / "result.json", Path(tmp) / "stderr.log"
            argv = [self.peers.python(case.peer), "-m", "bench.child", function, job.to_json()]
            done = _spawn([*argv, str(result)], cwd=self.root, log=log)
            self._check(case, done, log)
            timing = Timing.from_json(result.read_text(encoding="utf-8"))
        return Sample(
            seconds=timing.seconds,
            nbytes=timing.nbytes,
            cpu_seconds=timing.cpu_seconds,
            peak_rss_kib=timing.peak_rss_kib,
            info=timing.info,
        )

    def command(self, case: plan.CommandCase) -> Sample:
        places = {"file": str(self.input_file), "workdir": str(self.workdir(case))}
        argv = [arg.format_map(places) for arg in case.argv]
        if shutil.which(argv[0]) is None:
            raise CaseFailed(f"{case.id}: {argv[0]} is not installed")
        peak: int | None = None
        with tempfile.TemporaryDirectory(prefix="kglance-bench-") as tmp:
            log, rss = Path(tmp) / "stderr.log", Path(tmp) / "rss"
            if os.access(GNU_TIME, os.X_OK):
                argv = [GNU_TIME, "-f", "%M", "-o", str(rss), *argv]
            done = _spawn(argv, cwd=self.root, log=log)
            self._check(case, done, log)
            if rss.exists():
                peak = int(rss.read_text(encoding="ascii").split()[-1])
        return Sample(
            seconds=done.seconds,
            nbytes=self.size,
            cpu_seconds=done.cpu_seconds,
            peak_rss_kib=peak,
            info={},
        )

    def sample(self, case: plan.Case, *, setup_info: dict[str, str]) -> Sample:
        """One sample of ``case``, from a flushed (warm) or dropped (cold) page cache."""
        if case.cold:
            if not drop_page_cache():
                raise CaseFailed(f"{case.id}: cannot drop the page cache")
        else:
            os.sync()
        if isinstance(case, plan.CommandCase):
            sample = self.command(case)
        else:
            sample = self.call(case, case.function, self.job(case, setup_info))
        if sample.nbytes != self.size:
            raise CaseFailed(f"{case.id} handled {sample.nbytes} of {self.size} bytes")
        return sample


def read_through(paths: list[str]) -> None:
    """Read files once so the page cache holds them (after a cold sample evicted them)."""
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.read(8 * 1024 * 1024):
                pass
