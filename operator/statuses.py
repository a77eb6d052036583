"""What a StoreBackend's status says, computed from the namespace's rendering and a probe.

Three conditions carry the facts and ``Ready`` sums them up, so ``kubectl get sb`` answers
"can pods use it?" and the other conditions answer "why not?":

* ``SecretsResolved``: every referenced Secret and ConfigMap key exists (the renderer's
  problems say which one does not, e.g. "Secret s3-creds has no key secretKey").
* ``DefaultConflict``: ``True`` on a backend that claims ``default: true`` while an older one
  of the namespace does too; that backend is left out of the configuration.
* ``Reachable``: the last probe through the driver (``Unknown`` until the first one, and for
  file volumes the operator does not mount).
* ``Ready``: in the rendered configuration, and not known to be unreachable.

The computation is pure; ``storebackends`` applies it and patches what changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from kglance.drivers import base, errors, registry
from kglance.operator import conditions, names
from kglance.operator.conditions import Condition

SECRETS_RESOLVED = "SecretsResolved"
DEFAULT_CONFLICT = "DefaultConflict"
REACHABLE = "Reachable"
READY = "Ready"


class Problem(Protocol):
    """A renderer's problem with one backend (``rendering.Problem``)."""

    @property
    def condition(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def message(self) -> str: ...


def _joined(problems: Sequence[Problem]) -> str:
    return "; ".join(dict.fromkeys(p.message for p in problems))


def secrets_resolved(problems: Sequence[Problem]) -> Condition:
    missing = [p for p in problems if p.condition == SECRETS_RESOLVED]
    if missing:
        return Condition(SECRETS_RESOLVED, "False", missing[0].reason, _joined(missing))
    return Condition(SECRETS_RESOLVED, "True", "Resolved", "every referenced key was found")


def default_conflict(problems: Sequence[Problem]) -> Condition:
    conflicts = [p for p in problems if p.condition == DEFAULT_CONFLICT]
    if conflicts:
        return Condition(DEFAULT_CONFLICT, "True", conflicts[0].reason, _joined(conflicts))
    return Condition(DEFAULT_CONFLICT, "False", "NoConflict", "no other backend claims default")


def other_problems(problems: Sequence[Problem]) -> list[Condition]:
    """Conditions for problems of any other kind (an invalid spec, an unknown type, ...)."""
    by_type: dict[str, list[Problem]] = {}
    for problem in problems:
        if problem.condition not in (SECRETS_RESOLVED, DEFAULT_CONFLICT, READY):
            by_type.setdefault(problem.condition, []).append(problem)
    return [Condition(t, "False", ps[0].reason, _joined(ps)) for t, ps in by_type.items()]


def reachable(*, included: bool, previous: Condition | None) -> Condition:
    """Keep the last probe's verdict while the backend stays in the configuration."""
    if not included:
        return Condition(REACHABLE, "Unknown", "NotRendered", "not in the configuration")
    if previous is None or previous.reason == "NotRendered":
        return Condition(REACHABLE, "Unknown", "NotProbedYet", "waiting for the first probe")
    return previous


def ready(
    *,
    included: bool,
    is_default: bool,
    problems: Sequence[Problem],
    reach: Condition,
) -> Condition:
    if not included:
        first = next((p for p in problems), None)
        if first is None:
            return Condition(READY, "False", "NotRendered", "not in the configuration")
        return Condition(READY, "False", first.reason, _joined(problems))
    if reach.status == "False":
        return Condition(READY, "False", "Unreachable", reach.message)
    role = "the default backend" if is_default else "a backend"
    return Condition(READY, "True", "Ready", f"configured as {role} in {names.CONFIG_SECRET}")


def capabilities(features: base.Feature) -> list[str]:
    return [
        f.name.lower()
        for f in base.Feature
        if f.name and f is not base.Feature.NONE and f in features
    ]


def driver_facts(type_name: str, *, drivers: registry.Registry) -> tuple[list[str], list[str]]:
    """The capabilities and location schemes of a store type's driver (empty if unknown)."""
    try:
        cls = drivers.driver_class(type_name)
    except errors.StoreError:
        return [], []
    return capabilities(cls.features), list(cls.schemes)


def current_conditions(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((body.get("status") or {}).get("conditions") or [])


def desired(
    body: Mapping[str, Any],
    *,
    included: bool,
    is_default: bool,
    problems: Sequence[Problem],
    drivers: registry.Registry,
    config_secret: str | None,
    probe: Condition | None = None,
) -> dict[str, Any]:
    """The whole ``status`` a backend should have after a rendering of its namespace.

    ``probe`` is a fresh probe's verdict; without one the last verdict stays.
    """
    previous = probe or conditions.find(current_conditions(body), REACHABLE)
    reach = reachable(included=included, previous=previous)
    updates: list[Condition] = [
        secrets_resolved(problems),
        default_conflict(problems),
        *other_problems(problems),
        reach,
        ready(included=included, is_default=is_default, problems=problems, reach=reach),
    ]
    return _status(body, updates, drivers=drivers, config_secret=config_secret)


def _status(
    body: Mapping[str, Any],
    updates: Iterable[Condition],
    *,
    drivers: registry.Registry,
    config_secret: str | None,
) -> dict[str, Any]:
    generation = (body.get("metadata") or {}).get("generation")
    caps, schemes = driver_facts(str((body.get("spec") or {}).get("type", "")), drivers=drivers)
    return {
        "observedGeneration": generation,
        "conditions": conditions.merge(current_conditions(body), updates, generation=generation),
        "capabilities": caps,
        "schemes": schemes,
        "configSecret": config_secret,
    }


def unchanged(body: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether patching ``status`` would change what the backend's status says."""
    current = body.get("status") or {}
    keys = ("observedGeneration", "capabilities", "schemes", "configSecret")
    return all(current.get(k) == status.get(k) for k in keys) and conditions.same(
        current_conditions(body), status.get("conditions") or []
    )
