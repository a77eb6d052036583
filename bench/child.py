"""Entry point of a measured process: ``python -m bench.child MODULE:FUNCTION JOB_JSON RESULT``.

Run from the repository root by whichever interpreter the case's peer names, so it must import
nothing outside the standard library and ``bench.core`` before it imports the case module.
The result goes to a file, not stdout, so whatever a library prints cannot corrupt it.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys

from bench.core import CaseFunction, Job, Timing, peak_rss_kib


def load(target: str) -> CaseFunction:
    module_name, sep, attr = target.partition(":")
    if not sep:
        raise SystemExit(f"bench.child: expected MODULE:FUNCTION, got {target!r}")
    function: CaseFunction = getattr(importlib.import_module(module_name), attr)
    return function


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m bench.child MODULE:FUNCTION JOB_JSON RESULT_FILE", file=sys.stderr)
        return 2
    target, job_json, result_file = argv
    timing = load(target)(Job.from_json(job_json))
    if not isinstance(timing, Timing):
        raise TypeError(f"{target} returned {type(timing).__name__}, not Timing")
    timing = dataclasses.replace(timing, peak_rss_kib=peak_rss_kib())
    with open(result_file, "w", encoding="utf-8") as f:
        f.write(timing.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
