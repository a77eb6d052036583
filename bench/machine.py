"""Facts about the machine a run happened on, and how busy it was meanwhile.

The machine the figures come from is usually shared (CI, other engineers' test runs), so a
report says how much of the CPU was taken while it ran, and a run can be asked to wait for a
quiet moment before each sample (``--wait-idle``).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


def _first_line_with(path: str, prefix: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith(prefix):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return "unknown"


def _filesystem_of(path: Path) -> str:
    best, fstype = "", "unknown"
    resolved = str(path.resolve())
    for line in Path("/proc/mounts").read_text(encoding="utf-8").splitlines():
        _device, mountpoint, kind, *_ = line.split()
        inside = resolved == mountpoint or resolved.startswith(mountpoint.rstrip("/") + "/")
        if inside and len(mountpoint) > len(best):
            best, fstype = mountpoint, kind
    return f"{fstype} on {best}"


def _git_revision(root: Path) -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    revision = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{revision} (with uncommitted changes)" if git("status", "--porcelain") else revision


def machine_facts(*, root: Path, workroot: Path) -> dict[str, str]:
    return {
        "cpu": _first_line_with("/proc/cpuinfo", "model name"),
        "nproc": f"{len(os.sched_getaffinity(0))} (os.cpu_count {os.cpu_count()})",
        "memory": _first_line_with("/proc/meminfo", "MemTotal"),
        "kernel": f"{platform.system()} {platform.release()}",
        "filesystem": _filesystem_of(workroot),
        "checkout": _git_revision(root),
    }


@dataclasses.dataclass(frozen=True, slots=True)
class CpuTimes:
    """The machine-wide counters of /proc/stat's first line, in clock ticks."""

    busy: int
    total: int
    steal: int

    @classmethod
    def now(cls) -> CpuTimes:
        first = Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0]
        user, nice, system, idle, iowait, irq, softirq, steal = map(int, first.split()[1:9])
        total = user + nice + system + idle + iowait + irq + softirq + steal
        return cls(busy=total - idle - iowait, total=total, steal=steal)

    def busy_percent(self, start: CpuTimes) -> float:
        """Share of all CPUs' time that was busy between ``start`` and this reading."""
        return 100.0 * (self.busy - start.busy) / max(self.total - start.total, 1)

    def since(self, start: CpuTimes) -> str:
        total = max(self.total - start.total, 1)
        cores = len(os.sched_getaffinity(0))
        busy = self.busy_percent(start)
        steal = 100.0 * (self.steal - start.steal) / total
        return (
            f"{busy:.0f}% of {cores} CPUs busy on average (this benchmark alone keeps about "
            f"{100 / cores:.0f}% busy), {steal:.1f}% stolen by the hypervisor"
        )


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text(encoding="ascii").split()[:3])


def wait_for_idle(*, limit: float, busy_below: float = 20.0) -> None:
    """Wait (up to ``limit`` seconds) until the CPUs are less than ``busy_below`` % busy."""
    deadline = time.monotonic() + limit
    while True:
        before = CpuTimes.now()
        time.sleep(1.0)
        busy = CpuTimes.now().busy_percent(before)
        if busy < busy_below:
            return
        if time.monotonic() >= deadline:
            print(f"    still {busy:.0f}% busy, measuring anyway", file=sys.stderr)
            return
