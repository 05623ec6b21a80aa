"""The status-read budget's metrics: the budget, the steady groups it sweeps and the lag bound they make."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from prometheus_client import exposition, parser

from acinode import settings
from acinode.metrics import collector
from acinode.pods import readbudget, statussync

sys.path.insert(0, str(Path(__file__).parent.parent / "pods"))

from pods_builders import pod, ran, summary

from fakes.fake_clock import FakeClock


def samples(metrics: collector.OperatorMetrics) -> dict[tuple[str, str], float]:
    text = exposition.generate_latest(metrics.registry).decode()
    return {
        (sample.name, sample.labels.get("kind", "")): float(sample.value)
        for family in parser.text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("acinode_status_") and "duration" not in sample.name
    }


def test_no_budget_metrics_before_a_pod_controller_exists() -> None:
    assert samples(collector.OperatorMetrics(budget=readbudget.SharedBudget())) == {}


def test_the_lag_bound_follows_the_steady_groups() -> None:
    budget = readbudget.SharedBudget()
    scheduler = statussync.SyncScheduler(settings.PodSettings(), FakeClock(), budget)
    steady = [
        statussync.Candidate(
            ran(pod(f"p{i}", restart_policy="Never" if i < 100 else "Always")),  # type: ignore[arg-type]
            summary(f"p{i}").name,
            summary(f"p{i}"),
        )
        for i in range(1000)
    ]
    scheduler.choose(steady)
    figures = samples(collector.OperatorMetrics(budget=budget))
    # θ = (900 + 4 x 100) / 2 = 650 s; a pass every 5 s on top.
    assert figures == {
        ("acinode_status_read_budget_reads_per_second", ""): 2.0,
        ("acinode_status_steady_container_groups", "server"): 900,
        ("acinode_status_steady_container_groups", "likely_to_end"): 100,
        ("acinode_status_lag_bound_seconds", "server"): 655.0,
        ("acinode_status_lag_bound_seconds", "likely_to_end"): 167.5,
    }


def test_without_a_budget_the_bound_is_infinite() -> None:
    budget = readbudget.SharedBudget()
    budget.configure(readbudget.BudgetTerms(0.0, 4.0, 5.0))

    class Node:
        pass

    node = Node()
    budget.report(node, 10, 0)
    figures = samples(collector.OperatorMetrics(budget=budget))
    assert math.isinf(figures[("acinode_status_lag_bound_seconds", "server")])
