"""The operator's Prometheus metrics (``acinode.metrics``, a prometheus-client custom collector): the text format,
and what the collector reads through the narrow roles — pods by phase, groups, orphans by the controller's own rule,
ARM requests that never count backwards, pass durations told by the controllers, heartbeat age."""

from __future__ import annotations

import dataclasses
import sys
import types as pytypes
from pathlib import Path
from typing import Any

from prometheus_client import exposition, parser

from acinode import settings
from acinode.aci import counting
from acinode.metrics import collector
from acinode.pods import controller, protocols

sys.path.insert(0, str(Path(__file__).parent.parent / "pods"))

from pods_builders import WHERE, Stack, own_tags, pod

from fakes.fake_aci import FakeAciApi
from fakes.fake_clock import FakeClock
from fakes.fake_kube import FakeKube


def scrape(metrics: collector.OperatorMetrics) -> str:
    return exposition.generate_latest(metrics.registry).decode()


def value(text: str, name: str, **labels: str) -> float | None:
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


@dataclasses.dataclass
class FakeStats:
    snap: protocols.NodeSnapshot

    def snapshot(self) -> protocols.NodeSnapshot:
        return self.snap


def snapshot(
    node: str = "vn-1", counter: counting.ArmRequestCounter | None = None, **more: Any
) -> protocols.NodeSnapshot:
    fields: dict[str, Any] = {
        "node_name": node,
        "pods_by_phase": {},
        "groups_by_provisioning_state": {},
        "orphan_groups": 0,
        "groups_in_transition": 0,
        "queue_depth": 0,
        "arm_requests": counter or counting.ArmRequestCounter(),
    }
    return protocols.NodeSnapshot(**{**fields, **more})


class FakeKeeper:
    def __init__(self, node: str, last_renewal: float | None, now: float, ready: bool = True) -> None:
        self.config = pytypes.SimpleNamespace(node_name=node)
        self.last_renewal = last_renewal
        self.readiness = pytypes.SimpleNamespace(ready=ready)
        self.monotonic = lambda: now


def test_the_text_format_has_help_type_and_escaped_labels() -> None:
    metrics = collector.OperatorMetrics(lambda: [FakeStats(snapshot('a"b\\c\nd'))])
    text = scrape(metrics)
    assert (
        "# HELP acinode_pods Pods bound to each virtual node, by phase.\n# TYPE acinode_pods gauge\n" in text
    )
    assert 'acinode_pods{node="a\\"b\\\\c\\nd",phase="Pending"} 0.0' in text
    assert value(text, "acinode_build_info") == 1


async def test_a_controllers_figures_by_its_own_rules(
    kube: FakeKube, aci: FakeAciApi, clock: FakeClock
) -> None:
    stack = Stack(kube, aci, clock)
    stack.bind(pod("web"))
    running = pod("db")
    running["status"] = {"phase": "Running"}
    stack.bind(running)
    aci.put_group("shop-gone", own_tags("gone"), "Creating")
    aci.put_group("shop-web", own_tags("web", uid="an-earlier-web"), "Succeeded")  # replaced, not an orphan
    await stack.controller.view.relist()
    await stack.controller.groups.refresh()
    text = scrape(collector.OperatorMetrics(lambda: [stack.controller]))
    assert value(text, "acinode_pods", node="vn-a", phase="Pending") == 1
    assert value(text, "acinode_pods", node="vn-a", phase="Running") == 1
    assert value(text, "acinode_pods", node="vn-a", phase="Failed") == 0
    assert value(text, "acinode_container_groups", node="vn-a", provisioning_state="Creating") == 1
    assert value(text, "acinode_container_groups", node="vn-a", provisioning_state="Succeeded") == 1
    assert value(text, "acinode_orphan_container_groups", node="vn-a") == 1
    assert value(text, "acinode_work_queue_depth", node="vn-a") == 2  # the two pods, queued by the watch


def test_no_orphans_are_reported_before_the_pod_view_has_listed(kube: Any = None) -> None:
    stack = Stack(FakeKube(), FakeAciApi(), FakeClock())
    assert stack.controller.snapshot().orphan_groups == 0


def test_arm_requests_never_count_backwards_when_a_nodes_client_is_rebuilt() -> None:
    counter = counting.ArmRequestCounter()
    node = FakeStats(snapshot(counter=counter))
    metrics = collector.OperatorMetrics(lambda: [node])
    for _ in range(3):
        counter.record("get", "200")
    counter.record("create_or_update", "429")
    assert (
        value(scrape(metrics), "acinode_arm_requests_total", node="vn-1", operation="get", result="200") == 3
    )
    replacement = counting.ArmRequestCounter()
    node.snap = snapshot(counter=replacement)
    replacement.record("get", "200")
    text = scrape(metrics)
    assert value(text, "acinode_arm_requests_total", node="vn-1", operation="get", result="200") == 4
    assert (
        value(text, "acinode_arm_requests_total", node="vn-1", operation="create_or_update", result="429")
        == 1
    )


def test_a_counter_shared_by_two_nodes_is_counted_once() -> None:
    shared = counting.ArmRequestCounter()
    shared.record("list", "200")
    metrics = collector.OperatorMetrics(
        lambda: [FakeStats(snapshot("vn-1", shared)), FakeStats(snapshot("vn-2", shared))]
    )
    text = scrape(metrics)
    assert value(text, "acinode_arm_requests_total", node="vn-1", operation="list") == 1
    assert value(text, "acinode_arm_requests_total", node="vn-2", operation="list") is None


async def test_passes_are_timed_per_node_by_the_observer(
    kube: FakeKube, aci: FakeAciApi, clock: FakeClock
) -> None:
    metrics = collector.OperatorMetrics()
    metrics.on_reconcile("vn-1", 0.25)
    metrics.on_sync("vn-1", 0.5)
    assert metrics.reconcile_seconds.count("vn-1") == 1
    text = scrape(metrics)
    assert value(text, "acinode_reconcile_duration_seconds_sum", node="vn-1") == 0.25
    assert value(text, "acinode_reconcile_duration_seconds_bucket", node="vn-1", le="0.25") == 1
    assert value(text, "acinode_reconcile_duration_seconds_bucket", node="vn-1", le="0.1") == 0
    assert value(text, "acinode_status_sync_duration_seconds_count", node="vn-1") == 1
    # A controller built with the metrics as its observer tells it every pass, without being wrapped.
    built = controller.PodController(kube, aci, WHERE, settings.PodSettings(), clock=clock, observer=metrics)
    await built.groups.refresh()
    await built.sync_once()
    assert metrics.sync_seconds.count("vn-a") == 1


def test_heartbeat_age_is_infinite_until_the_first_renewal() -> None:
    keepers = [FakeKeeper("vn-a", 100.0, now=112.5), FakeKeeper("vn-b", None, now=50.0, ready=False)]
    text = scrape(collector.OperatorMetrics(keepers=lambda: keepers))
    assert value(text, "acinode_node_heartbeat_age_seconds", node="vn-a") == 12.5
    assert value(text, "acinode_node_heartbeat_age_seconds", node="vn-b") == float("inf")
    assert value(text, "acinode_node_ready", node="vn-b") == 0
    assert value(text, "acinode_virtual_nodes") == 2
