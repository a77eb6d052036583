"""The sidecar's Prometheus metrics, kept per application and rendered in the text format.

Written by hand rather than with ``prometheus_client``: the sidecar needs three kinds (counter,
gauge, histogram) with labels and one exposition format, which is about a hundred lines, while
``prometheus_client`` is an extra dependency in every application pod whose default registry is
process-global state (two apps in one test process would share counters). Here each
application owns one ``Metrics`` object.

Label values that come from requests are never used raw: a backend label is either a configured
backend id or ``""``, so a client cannot grow the number of series.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

LabelValues = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: tuple[str, ...], values: LabelValues, extra: str = "") -> str:
    parts = [f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() else repr(value)


class _Family:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = labels
        self._values: dict[LabelValues, float] = {}

    def _key(self, labels: dict[str, str]) -> LabelValues:
        return tuple(labels[name] for name in self.label_names)

    def value(self, **labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def samples(self) -> Iterator[str]:
        for key, value in sorted(self._values.items()):
            yield f"{self.name}{_labels(self.label_names, key)} {_number(value)}"

    def render(self) -> Iterator[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        yield from self.samples()


class Counter(_Family):
    kind = "counter"

    def inc(self, amount: float = 1, **labels: str) -> None:
        key = self._key(labels)
        self._values[key] = self._values.get(key, 0.0) + amount


class Gauge(Counter):
    kind = "gauge"

    def dec(self, amount: float = 1, **labels: str) -> None:
        self.inc(-amount, **labels)

    def set(self, value: float, **labels: str) -> None:
        self._values[self._key(labels)] = value


class Histogram(_Family):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: tuple[str, ...] = (),
        *,
        buckets: tuple[float, ...] = LATENCY_BUCKETS,
    ) -> None:
        super().__init__(name, help_text, labels)
        self.buckets = (*sorted(buckets), math.inf)
        self._counts: dict[LabelValues, list[int]] = {}
        self._sums: dict[LabelValues, float] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        counts = self._counts.setdefault(key, [0] * len(self.buckets))
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                counts[i] += 1
        self._sums[key] = self._sums.get(key, 0.0) + value

    def count(self, **labels: str) -> int:
        counts = self._counts.get(self._key(labels))
        return counts[-1] if counts else 0

    def samples(self) -> Iterator[str]:
        for key, counts in sorted(self._counts.items()):
            for bound, count in zip(self.buckets, counts, strict=True):
                le = f'le="{_number(bound)}"'
                yield f"{self.name}_bucket{_labels(self.label_names, key, le)} {count}"
            yield f"{self.name}_sum{_labels(self.label_names, key)} {_number(self._sums[key])}"
            yield f"{self.name}_count{_labels(self.label_names, key)} {counts[-1]}"


class Metrics:
    """Everything the sidecar counts."""

    def __init__(self) -> None:
        self.bytes_in = Counter(
            "kglance_sidecar_received_bytes_total",
            "Image bytes received from clients (PUT bodies).",
            ("backend",),
        )
        self.bytes_out = Counter(
            "kglance_sidecar_sent_bytes_total",
            "Image bytes sent to clients (GET bodies).",
            ("backend",),
        )
        self.operations = Counter(
            "kglance_sidecar_operations_total",
            "Operations finished, by backend, operation and outcome (ok or an error code).",
            ("backend", "op", "outcome"),
        )
        self.errors = Counter(
            "kglance_sidecar_errors_total",
            "Operations that failed, by backend, operation and error code.",
            ("backend", "op", "code"),
        )
        self.duration = Histogram(
            "kglance_sidecar_operation_duration_seconds",
            "Time from request to the last byte, by backend and operation.",
            ("backend", "op"),
        )
        self.in_flight = Gauge(
            "kglance_sidecar_streams_in_flight",
            "Operations currently running, by backend and operation.",
            ("backend", "op"),
        )
        self.reloads = Counter(
            "kglance_sidecar_config_reloads_total",
            "Configuration reloads, by outcome (ok or error).",
            ("outcome",),
        )
        self.ready = Gauge(
            "kglance_sidecar_ready", "1 when every backend is configured and checked."
        )
        self.generation = Gauge(
            "kglance_sidecar_config_generation", "How many configurations have been applied."
        )
        self.location_records = Counter(
            "kglance_sidecar_location_records_total",
            "ImageLocation records finished, by operation and outcome (created, updated, "
            "deleted, absent, left_alone, failed, dropped).",
            ("op", "outcome"),
        )
        self.location_record_errors = Counter(
            "kglance_sidecar_location_record_errors_total",
            "Failed attempts to record an ImageLocation, by operation and reason.",
            ("op", "reason"),
        )
        self.location_records_pending = Gauge(
            "kglance_sidecar_location_records_pending",
            "ImageLocation records waiting for the Kubernetes API.",
        )

    def families(self) -> tuple[_Family, ...]:
        return (
            self.bytes_in,
            self.bytes_out,
            self.operations,
            self.errors,
            self.duration,
            self.in_flight,
            self.reloads,
            self.ready,
            self.generation,
            self.location_records,
            self.location_record_errors,
            self.location_records_pending,
        )

    def render(self) -> str:
        return "\n".join(line for family in self.families() for line in family.render()) + "\n"
