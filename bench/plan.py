"""What a benchmark run is made of: settings, peers' names, and the two kinds of case.

A case module (``bench/cases/<name>.py``) exposes ``cases(settings) -> list[Case]``; the runner
collects them, runs each in the interpreter its ``peer`` names (or as a plain command), and
reports them by ``section``. Adding a benchmark is adding a module with that one function and
the functions its ``PythonCase`` entries point at.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

Section = Literal["limits", "add", "get (warm cache)", "get (cold cache)", "diagnostics"]
SECTIONS: tuple[Section, ...] = (
    "limits",
    "add",
    "get (warm cache)",
    "get (cold cache)",
    "diagnostics",
)

# the interpreters a case can run in (see peers.py)
PeerName = Literal["kglance", "glance_store"]
KGLANCE: PeerName = "kglance"
GLANCE: PeerName = "glance_store"


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """The run's knobs, as case modules see them."""

    size: int  # bytes in the generated input file
    block_size: int  # reader block size for the Python cases
    cold_cache: bool  # the page cache can be dropped: offer cold-read cases
    glance_chunk_size: int  # glance_store's filesystem_store_chunk_size


@dataclasses.dataclass(frozen=True, slots=True)
class PythonCase:
    """A function run by ``bench.child`` in a fresh process of the peer's interpreter."""

    id: str  # stable name used by ratios and --only, e.g. "kglance.add"
    title: str
    section: Section
    peer: PeerName
    function: str  # "bench.cases.module:function", returns a core.Timing
    # run once (untimed) before the samples, in the same workdir; its Timing.info is merged
    # into every sample's params (e.g. the location of the image a get case reads)
    setup: str | None = None
    workdir: str | None = None  # shared scratch dir name; defaults to the id
    cold: bool = False  # drop the page cache before each sample
    params: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class CommandCase:
    """A program run on the input file, its stdout sent to /dev/null.

    ``{file}`` in an argument stands for the input file, ``{workdir}`` for the case's scratch
    directory.
    """

    id: str
    title: str
    section: Section
    argv: tuple[str, ...]
    cold: bool = False


Case = PythonCase | CommandCase


@dataclasses.dataclass(frozen=True, slots=True)
class Ratio:
    """A target phrased as one case's throughput over another's."""

    label: str
    numerator: str  # case id
    denominator: str  # case id
    target: float | None  # the ratio must be at least this; None: shown for information
