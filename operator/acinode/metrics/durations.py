"""Duration histograms kept between scrapes: cumulative buckets, sum and count per node.

Everything else the metrics report is read at scrape time; only durations must be accumulated as they happen
(``collector.OperatorMetrics`` is the controllers' ``PodObserver``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from prometheus_client import core

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class DurationHistogram:
    def __init__(self, name: str, help_text: str, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.name = name
        self.help = help_text
        self.buckets = tuple(sorted(buckets))
        self._series: dict[str, tuple[list[int], list[float]]] = {}
        self._lock = threading.Lock()

    def observe(self, seconds: float, node: str) -> None:
        with self._lock:
            counts, total = self._series.setdefault(node, ([0] * (len(self.buckets) + 1), [0.0]))
            for index, bound in enumerate(self.buckets):
                if seconds <= bound:
                    counts[index] += 1
            counts[-1] += 1
            total[0] += seconds

    def count(self, node: str) -> int:
        with self._lock:
            series = self._series.get(node)
            return series[0][-1] if series else 0

    def family(self) -> core.HistogramMetricFamily:
        family = core.HistogramMetricFamily(self.name, self.help, labels=["node"])
        with self._lock:
            series = sorted((node, list(counts), total[0]) for node, (counts, total) in self._series.items())
        for node, counts, total in series:
            buckets = [(repr(float(b)), c) for b, c in zip(self.buckets, counts, strict=False)]
            buckets.append(("+Inf", counts[-1]))
            family.add_metric([node], buckets, total)
        return family
