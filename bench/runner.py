"""``bench/run.sh``: every selected case on one generated file, then one report.

One run, one input file, one machine state: the file is generated once (random bytes, so no
store can take a shortcut on zeros), the cases are run in rounds (one sample of each per
round) so that a busy spell on a shared machine does not land on one case only, and the report
names the command that made it.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import fnmatch
import json
import random
import re
import shlex
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from bench import cases, plan
from bench.core import MiB
from bench.machine import CpuTimes, load_average, machine_facts, wait_for_idle
from bench.measure import CaseFailed, Runner, Sample, drop_page_cache, read_through
from bench.peers import Peers
from bench.report import Result, digest_problems, render

ROOT = Path(__file__).resolve().parent.parent
_SIZE = re.compile(r"^(\d+)([KMG]?)i?B?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'256M', '1G', '64MiB', '4096' -> bytes (binary multiples)."""
    match = _SIZE.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 64M, 256M, 1G)")
    number, unit = int(match.group(1)), match.group(2).upper()
    value = number * {"": 1, "K": 1024, "M": MiB, "G": 1024 * MiB}[unit]
    if value <= 0:
        raise argparse.ArgumentTypeError("size must be positive")
    return value


def _arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/run.sh",
        description="kglance vs glance_store 5.7.0 vs the machine's limits, on one file",
    )
    parser.add_argument("--size", type=parse_size, default=256 * MiB, help="default 256M")
    parser.add_argument("--repeat", type=int, default=3, help="measured samples after a warm-up")
    parser.add_argument("--block-size", type=parse_size, default=MiB, help="input reads (1M)")
    parser.add_argument(
        "--glance-chunk-size",
        type=parse_size,
        default=64 * 1024,
        help="glance_store's filesystem_store_chunk_size (its default: 64K)",
    )
    parser.add_argument(
        "--only", action="append", default=[], metavar="GLOB", help="case ids to run (repeatable)"
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-cache cases")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each sample, wait up to this long for the CPUs to be under 20%% busy",
    )
    parser.add_argument("--keep-work", action="store_true", help="keep .bench/work afterwards")
    parser.add_argument("--bench-dir", type=Path, default=ROOT / ".bench")
    return parser


def ensure_input(path: Path, size: int) -> Path:
    """A file of ``size`` pseudo-random bytes, reused while its size matches."""
    if path.exists() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"generating {path} ({size} bytes)", file=sys.stderr)
    rng = random.Random(size)
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as f:
        left = size
        while left:
            n = min(left, MiB)
            f.write(rng.randbytes(n))
            left -= n
    partial.rename(path)
    return path


def _selected(found: list[plan.Case], patterns: list[str]) -> list[plan.Case]:
    if not patterns:
        return found
    return [c for c in found if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]


def _setups(runner: Runner, selected: list[plan.Case]) -> dict[str, dict[str, str]]:
    """Each case's setup result by case id; one setup call serves cases sharing a workdir."""
    done: dict[tuple[str, str], dict[str, str]] = {}
    by_case: dict[str, dict[str, str]] = {}
    for case in selected:
        if isinstance(case, plan.PythonCase) and case.setup:
            key = (case.setup, case.workdir or case.id)
            if key not in done:
                print(f"setting up {case.id}: {case.setup}", file=sys.stderr, flush=True)
                done[key] = runner.call(case, case.setup, runner.job(case)).info
            by_case[case.id] = done[key]
    return by_case


def _warm_files(runner: Runner, setup_info: dict[str, str]) -> list[str]:
    """The files a warm sample expects in the page cache: the input and a stored file image."""
    location = setup_info.get("location", "")
    stored = [location.removeprefix("file://")] if location.startswith("file://") else []
    return [str(runner.input_file), *stored]


def _shuffled(items: list[plan.Case], seed: int) -> list[plan.Case]:
    """``items`` in the given order in round 0, in a different fixed order in each later one."""
    if not seed:
        return list(items)
    reordered = list(items)
    random.Random(seed).shuffle(reordered)
    return reordered


def _run_all(
    runner: Runner, selected: list[plan.Case], *, repeat: int, wait_idle: float
) -> list[Result]:
    """Round 0 is the warm-up; every round runs each case once, so slow spells caused by
    other work on the machine are shared out between the cases instead of hitting one."""
    setups = _setups(runner, selected)
    warm = [c for c in selected if not c.cold]
    cold = [c for c in selected if c.cold]
    samples: dict[str, list[Sample]] = {c.id: [] for c in selected}
    for round_number in range(repeat + 1):
        label = "warm-up" if round_number == 0 else f"round {round_number}/{repeat}"
        # a new order each round: a case's figures should not depend on which case ran before
        # it (in this VM, the memory state one process leaves changes the next one's writes)
        for case in [*_shuffled(cold, round_number), *_shuffled(warm, round_number)]:
            if wait_idle:
                wait_for_idle(limit=wait_idle)
            setup_info = setups.get(case.id, {})
            if not case.cold:
                # cold samples evict these, and so does this VM's proactive reclaim (DAMON
                # pages out memory left untouched for ~30 s): read them just before use
                read_through(_warm_files(runner, setup_info))
            sample = runner.sample(case, setup_info=setup_info)
            print(f"[{label}] {case.id}: {sample.mb_per_s:,.0f} MB/s", file=sys.stderr)
            if round_number:
                samples[case.id].append(sample)
    return [Result(case, samples[case.id]) for case in selected]


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One benchmark run at a time per bench dir: runs share .bench/work and disturb each other."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another benchmark run to finish ({lock_path})", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _settings(args: argparse.Namespace, *, cold: bool) -> plan.Settings:
    return plan.Settings(
        size=args.size,
        block_size=args.block_size,
        cold_cache=cold,
        glance_chunk_size=args.glance_chunk_size,
    )


def main(argv: list[str] | None = None) -> int:
    args = _arguments().parse_args(argv)
    if args.list:
        for case in _selected(cases.collect(_settings(args, cold=True)), args.only):
            print(f"{case.id:24} {case.section:18} {case.title}")
        return 0
    command = shlex.join(["bench/run.sh", *(sys.argv[1:] if argv is None else argv)])
    with _exclusive(args.bench_dir / "lock"):
        return _run(args, command=command)


def _run(args: argparse.Namespace, *, command: str) -> int:
    cold = not args.no_cold and drop_page_cache()
    selected = _selected(cases.collect(_settings(args, cold=cold)), args.only)
    if not selected:
        print("no case matches --only", file=sys.stderr)
        return 1
    peers = Peers(glance_venv=args.bench_dir / "glance-venv")
    used = sorted({c.peer for c in selected if isinstance(c, plan.PythonCase)})
    for peer in used:
        peers.ensure(peer)
    workroot = args.bench_dir / "work"
    shutil.rmtree(workroot, ignore_errors=True)
    runner = Runner(
        root=ROOT,
        input_file=ensure_input(args.bench_dir / f"input-{args.size}.bin", args.size),
        size=args.size,
        block_size=args.block_size,
        workroot=workroot,
        peers=peers,
    )
    load_before, cpu_before = load_average(), CpuTimes.now()
    try:
        results = _run_all(runner, selected, repeat=args.repeat, wait_idle=args.wait_idle)
    except CaseFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep_work:
            shutil.rmtree(workroot, ignore_errors=True)

    facts = machine_facts(root=ROOT, workroot=args.bench_dir)
    facts["load average (1/5/15 min)"] = f"{load_before} before, {load_average()} after"
    facts["CPU during the run"] = CpuTimes.now().since(cpu_before)
    for peer in used:
        facts[f"peer {peer}"] = peers.describe(peer)
    shown_settings = {
        "input": f"{args.size} bytes ({args.size / MiB:g} MiB) of random data, {runner.input_file}",
        "samples": f"1 warm-up round + {args.repeat} measured rounds, one fresh process per sample",
        "page cache": "dropped before each cold sample"
        if cold
        else "cannot be dropped here: warm figures only",
    }
    if args.wait_idle:
        shown_settings["quiet"] = (
            f"each sample waited up to {args.wait_idle:g} s for the CPUs to be under 20% busy"
        )
    print(render(command=command, facts=facts, settings=shown_settings, results=results))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "command": command,
                    "facts": facts,
                    "settings": shown_settings,
                    "results": [r.as_json() for r in results],
                },
                indent=2,
            )
        )
    return 1 if digest_problems(results) else 0
