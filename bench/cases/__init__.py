"""The benchmark cases, one module per subject, listed in the order they are run and shown.

Each module named in ``MODULES`` exposes ``cases(settings: plan.Settings) -> list[plan.Case]``
and may return an empty list when what it needs (a server address, an SDK) is not there.
"""

from __future__ import annotations

import importlib

from bench import plan

MODULES = (
    "limits",
    "glance_fs",
    "kglance_fs",
    "kglance_parts",
    "glance_s3",
    "kglance_s3",
    "glance_swift",
    "kglance_swift",
    "glance_rbd",
    "kglance_rbd",
)


def collect(settings: plan.Settings) -> list[plan.Case]:
    found: list[plan.Case] = []
    for name in MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        found.extend(module.cases(settings))
    ids = [case.id for case in found]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate case ids: {', '.join(duplicates)}")
    return found
