"""Turning samples into the printed report: machine facts, one table, the target ratios.

Throughput is MB/s in decimal megabytes (10^6 bytes) over the timed section only. "best" is
the fastest of the measured samples (noise from other work on a shared machine only ever
slows a run down), "median" shows how stable that was; ratios use the best figures.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Iterable, Mapping

from bench import plan
from bench.measure import Sample

RATIOS = (
    plan.Ratio("kglance add / glance_store add", "kglance.add", "glance.add", 2.0),
    plan.Ratio("kglance add / one-thread sha512", "kglance.add", "limits.sha512", 0.9),
    plan.Ratio("kglance get / glance_store get, warm", "kglance.get", "glance.get", 1.0),
    plan.Ratio("kglance get / glance_store get, cold", "kglance.get.cold", "glance.get.cold", 1.0),
    # where the gaps come from (the diagnostics section)
    plan.Ratio(
        "kglance add without fsync / glance_store add", "kglance.add.nofsync", "glance.add", None
    ),
    plan.Ratio(
        "kglance pipeline alone / one-thread sha512", "kglance.pipeline.1m", "limits.sha512", None
    ),
    plan.Ratio(
        "md5, sha512 on two threads / serially on one",
        "limits.md5+sha512.threads",
        "limits.md5+sha512",
        None,
    ),
    plan.Ratio(
        "kglance get 1 MiB reads / glance_store get, warm", "kglance.get.1m", "glance.get", None
    ),
    # rbd (bench/cases/kglance_rbd.py, glance_rbd.py)
    plan.Ratio("kglance rbd add / glance_store rbd add", "kglance.rbd.add", "glance.rbd.add", 1.5),
    plan.Ratio(
        "kglance rbd add / glance_store rbd add, unknown size",
        "kglance.rbd.add.unsized",
        "glance.rbd.add.unsized",
        1.5,
    ),
    plan.Ratio("kglance rbd get / glance_store rbd get", "kglance.rbd.get", "glance.rbd.get", 1.0),
    # swift (bench/cases/kglance_swift.py, glance_swift.py)
    plan.Ratio(
        "kglance swift add / glance_store swift add", "kglance.swift.add", "glance.swift.add", 1.5
    ),
    plan.Ratio(
        "kglance swift add / glance_store swift add, unknown size",
        "kglance.swift.add.unsized",
        "glance.swift.add.unsized",
        1.5,
    ),
    plan.Ratio(
        "kglance swift get / glance_store swift get", "kglance.swift.get", "glance.swift.get", 1.0
    ),
)


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    case: plan.Case
    samples: list[Sample]

    @property
    def best(self) -> float:
        return max(s.mb_per_s for s in self.samples)

    @property
    def median(self) -> float:
        return statistics.median(s.mb_per_s for s in self.samples)

    @property
    def cpu_percent(self) -> float:
        """Process CPU over wall time during the timed section of the best sample."""
        best = max(self.samples, key=lambda s: s.mb_per_s)
        return 100.0 * best.cpu_seconds / best.seconds

    @property
    def peak_rss_mib(self) -> float | None:
        peaks = [s.peak_rss_kib for s in self.samples if s.peak_rss_kib is not None]
        return max(peaks) / 1024 if peaks else None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.case.id,
            "title": self.case.title,
            "section": self.case.section,
            "best_mb_s": round(self.best, 1),
            "median_mb_s": round(self.median, 1),
            "cpu_percent": round(self.cpu_percent),
            "peak_rss_mib": None if self.peak_rss_mib is None else round(self.peak_rss_mib, 1),
            "samples": [dataclasses.asdict(s) for s in self.samples],
        }


def _table(results: Iterable[Result]) -> list[str]:
    lines = [
        "| case | id | best MB/s | median MB/s | CPU % | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    by_section: dict[str, list[Result]] = {}
    for result in results:
        by_section.setdefault(result.case.section, []).append(result)
    for section in plan.SECTIONS:
        for r in by_section.get(section, []):
            rss = "n/a" if r.peak_rss_mib is None else f"{r.peak_rss_mib:,.0f}"
            title = r.case.title.replace("|", "\\|")  # keep Markdown table cells whole
            lines.append(
                f"| {section}: {title} | `{r.case.id}` | {r.best:,.0f} | {r.median:,.0f} "
                f"| {r.cpu_percent:.0f} | {rss} |"
            )
    return lines


def _ratios(results: Mapping[str, Result]) -> list[str]:
    lines = ["| ratio | target | best | median | verdict |", "|---|---:|---:|---:|---|"]
    for ratio in RATIOS:
        target = "" if ratio.target is None else f">= {ratio.target:g}x"
        top, bottom = results.get(ratio.numerator), results.get(ratio.denominator)
        if top is None or bottom is None:
            lines.append(f"| {ratio.label} | {target} | n/a | n/a | not run |")
            continue
        best, median = top.best / bottom.best, top.median / bottom.median
        if ratio.target is None:
            verdict = "(diagnostic)"
        else:
            verdict = "meets" if best >= ratio.target else "MISSES"
        lines.append(f"| {ratio.label} | {target} | {best:.2f}x | {median:.2f}x | {verdict} |")
    return lines


def digest_problems(results: Iterable[Result]) -> list[str]:
    """Cases whose reported md5/sha512 of the input disagree with the others'."""
    seen: dict[str, dict[str, set[str]]] = {}
    for result in results:
        for sample in result.samples:
            for algorithm in ("md5", "sha512"):
                if algorithm in sample.info:
                    by_value = seen.setdefault(algorithm, {})
                    by_value.setdefault(sample.info[algorithm], set()).add(result.case.id)
    return [
        f"{algorithm}: " + " vs ".join(", ".join(sorted(ids)) for ids in by_value.values())
        for algorithm, by_value in seen.items()
        if len(by_value) > 1
    ]


def render(
    *,
    command: str,
    facts: Mapping[str, str],
    settings: Mapping[str, str],
    results: list[Result],
) -> str:
    by_id = {r.case.id: r for r in results}
    lines = [f"command: {command}", ""]
    lines += [f"- {key}: {value}" for key, value in {**facts, **settings}.items()]
    lines += ["", *_table(results), "", *_ratios(by_id), ""]
    problems = digest_problems(results)
    reporting = sum(1 for r in results if any("sha512" in s.info for s in r.samples))
    if problems:
        lines += ["DIGESTS DISAGREE:", *(f"  {p}" for p in problems)]
    elif reporting > 1:
        lines.append(f"md5/sha512 digests agree across the {reporting} cases that report them.")
    return "\n".join(lines)
