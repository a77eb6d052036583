"""Status conditions in the standard ``metav1.Condition`` shape, merged without losing history.

A condition's ``lastTransitionTime`` says when its *status* last changed, so users can tell how
long a backend has been unready. Recomputing conditions from scratch on every reconciliation
would reset it each time; ``merge`` keeps the old timestamp whenever the status is unchanged
and only the reason or message moved.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

Status = Literal["True", "False", "Unknown"]


@dataclasses.dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: Status
    reason: str
    message: str


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def find(conditions: Iterable[Mapping[str, Any]], type_: str) -> Condition | None:
    """The condition of ``type_`` in a status's ``conditions`` list, if there is one."""
    for item in conditions:
        if item.get("type") == type_:
            return Condition(
                type=type_,
                status=item.get("status", "Unknown"),
                reason=str(item.get("reason", "")),
                message=str(item.get("message", "")),
            )
    return None


def merge(
    existing: Sequence[Mapping[str, Any]],
    updates: Iterable[Condition],
    *,
    generation: int | None,
    timestamp: str | None = None,
) -> list[dict[str, Any]]:
    """``existing`` with ``updates`` applied; other types are kept, order is stable."""
    when = timestamp or now()
    merged: dict[str, dict[str, Any]] = {
        str(item["type"]): dict(item) for item in existing if "type" in item
    }
    for update in updates:
        previous = merged.get(update.type)
        changed = previous is None or previous.get("status") != update.status
        entry: dict[str, Any] = {
            "type": update.type,
            "status": update.status,
            "reason": update.reason,
            "message": update.message,
            "lastTransitionTime": when
            if changed or previous is None
            else previous.get("lastTransitionTime", when),
        }
        if generation is not None:
            entry["observedGeneration"] = generation
        merged[update.type] = entry
    return list(merged.values())


def same(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> bool:
    """Whether two condition lists say the same, ignoring timestamps."""

    def essence(items: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted(
            (
                i.get("type"),
                i.get("status"),
                i.get("reason"),
                i.get("message"),
                i.get("observedGeneration"),
            )
            for i in items
        )

    return essence(a) == essence(b)
