"""The Prometheus text exposition format (0.0.4), and a histogram: all acinode needs of a metrics library.

Families are built at scrape time from what the services hold (pods, groups, keepers); only histograms keep
state between scrapes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

Labels = Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class Sample:
    labels: Labels
    value: float
    suffix: str = ""
    """Appended to the family name (``_bucket``, ``_sum``, ``_count`` of histograms)."""


@dataclasses.dataclass
class Family:
    name: str
    kind: str
    """``gauge``, ``counter`` or ``histogram``."""
    help: str
    samples: list[Sample] = dataclasses.field(default_factory=list)

    def add(self, value: float, **labels: str) -> Family:
        self.samples.append(Sample(labels, value))
        return self


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def render(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {family.help.replace(chr(10), ' ')}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for sample in family.samples:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sample.labels.items())
            braces = f"{{{labels}}}" if labels else ""
            lines.append(f"{family.name}{sample.suffix}{braces} {_number(sample.value)}")
    return "\n".join(lines) + "\n"


class Histogram:
    """Cumulative buckets, sum and count per label set."""

    def __init__(self, name: str, help_text: str, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.name = name
        self.help = help_text
        self.buckets = tuple(sorted(buckets))
        self._series: dict[tuple[tuple[str, str], ...], tuple[list[int], list[float]]] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        counts, total = self._series.setdefault(key, ([0] * (len(self.buckets) + 1), [0.0]))
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                counts[index] += 1
        counts[-1] += 1
        total[0] += value

    def count(self, **labels: str) -> int:
        series = self._series.get(tuple(sorted(labels.items())))
        return series[0][-1] if series else 0

    def family(self) -> Family:
        family = Family(self.name, "histogram", self.help)
        for key, (counts, total) in sorted(self._series.items()):
            labels = dict(key)
            for bound, count in zip(self.buckets, counts, strict=False):
                family.samples.append(Sample({**labels, "le": _number(bound)}, count, "_bucket"))
            family.samples.append(Sample({**labels, "le": "+Inf"}, counts[-1], "_bucket"))
            family.samples.append(Sample(labels, total[0], "_sum"))
            family.samples.append(Sample(labels, counts[-1], "_count"))
        return family
