"""The operator's Prometheus metrics (``acinode.metrics``, served beside the kubelet API): the text format, and
what the collector reads from the services — pods by phase, groups, orphans, ARM requests that never count
backwards, pass durations, heartbeat age."""

from __future__ import annotations

import types as pytypes
from typing import Any

import pytest
from kubelet_builders import FakeNode, fake_node, running_pod

from acinode import services
from acinode.aci import api, counting
from acinode.mapping import tags
from acinode.metrics import collector, exposition


def value(families: list[exposition.Family], name: str, **labels: str) -> float | None:
    for family in families:
        for sample in family.samples:
            if family.name + sample.suffix == name and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                return sample.value
    return None


def group(name: str, uid: str, state: str = "Succeeded") -> api.GroupSummary:
    namespace, pod = name.split("-", 1)
    identity = {
        tags.TAG_CLUSTER_ID: "c-1",
        tags.TAG_NODE: "vn-1",
        tags.TAG_NAMESPACE: namespace,
        tags.TAG_POD: pod,
        tags.TAG_POD_UID: uid,
    }
    return api.GroupSummary(name=name, tags=identity, provisioning_state=state)  # type: ignore[arg-type]


class FakeKeeper:
    def __init__(self, node: str, last_renewal: float | None, now: float, ready: bool = True) -> None:
        self.config = pytypes.SimpleNamespace(node_name=node)
        self.last_renewal = last_renewal
        self.readiness = pytypes.SimpleNamespace(ready=ready)
        self.monotonic = lambda: now


def fake_services(*nodes: FakeNode, keepers: dict[str, Any] | None = None) -> Any:
    registry: services.Registry[Any] = services.Registry()
    for node in nodes:
        registry[str(node.where.node_name)] = node
    return pytypes.SimpleNamespace(reconcilers=registry, keepers=keepers or {})


def test_the_text_format_has_help_type_and_escaped_labels() -> None:
    family = exposition.Family("acinode_x", "gauge", "An example.").add(1.5, node='a"b\\c\nd')
    family.add(float("inf"), node="e")
    assert exposition.render([family]) == (
        "# HELP acinode_x An example.\n"
        "# TYPE acinode_x gauge\n"
        'acinode_x{node="a\\"b\\\\c\\nd"} 1.5\n'
        'acinode_x{node="e"} +Inf\n'
    )


def test_histograms_are_cumulative_with_sum_and_count() -> None:
    histogram = exposition.Histogram("acinode_h", "Seconds.", buckets=(0.1, 1.0))
    for seconds in (0.05, 0.5, 3.0):
        histogram.observe(seconds, node="n")
    text = exposition.render([histogram.family()])
    assert 'acinode_h_bucket{node="n",le="0.1"} 1\n' in text
    assert 'acinode_h_bucket{node="n",le="1"} 2\n' in text
    assert 'acinode_h_bucket{node="n",le="+Inf"} 3\n' in text
    assert 'acinode_h_sum{node="n"} 3.55\n' in text
    assert 'acinode_h_count{node="n"} 3\n' in text


def test_pods_are_counted_by_phase_with_every_phase_present() -> None:
    node = fake_node()
    node.add(running_pod("a"))
    node.add(running_pod("b"))
    pending = running_pod("c")
    pending["status"] = {}
    node.add(pending)
    families = collector.OperatorMetrics().collect(fake_services(node))
    assert value(families, "acinode_pods", node="vn-1", phase="Running") == 2
    assert value(families, "acinode_pods", node="vn-1", phase="Pending") == 1
    assert value(families, "acinode_pods", node="vn-1", phase="Failed") == 0


def test_groups_by_state_and_orphans_whose_pod_is_gone() -> None:
    node = fake_node()
    node.add(running_pod("a"))
    node.groups = {
        "default-a": group("default-a", "uid-default-a"),
        "default-x": group("default-x", "gone", "Pending"),
    }
    families = collector.OperatorMetrics().collect(fake_services(node))
    assert value(families, "acinode_container_groups", node="vn-1", provisioning_state="Succeeded") == 1
    assert value(families, "acinode_container_groups", node="vn-1", provisioning_state="Pending") == 1
    assert value(families, "acinode_orphan_container_groups", node="vn-1") == 1


def test_the_work_queue_depth_is_the_number_of_keys_waiting() -> None:
    node = fake_node()
    assert (
        value(
            collector.OperatorMetrics().collect(fake_services(node)), "acinode_work_queue_depth", node="vn-1"
        )
        == 0
    )
    node.queue.extend(["pod-a", "pod-b", "group-x"])
    assert (
        value(
            collector.OperatorMetrics().collect(fake_services(node)), "acinode_work_queue_depth", node="vn-1"
        )
        == 3
    )


def test_no_orphans_are_reported_before_the_pod_view_has_listed() -> None:
    node = fake_node()
    node.view.synced = False
    node.groups = {"default-x": group("default-x", "gone")}
    families = collector.OperatorMetrics().collect(fake_services(node))
    assert value(families, "acinode_orphan_container_groups", node="vn-1") == 0


def test_arm_requests_never_count_backwards_when_a_nodes_client_is_rebuilt() -> None:
    node = fake_node()
    counter = counting.ArmRequestCounter()
    node.aci.counter = counter  # type: ignore[attr-defined]
    metrics = collector.OperatorMetrics()
    svc = fake_services(node)
    for _ in range(3):
        counter.record("get", "200")
    counter.record("create_or_update", "429")
    assert (
        value(metrics.collect(svc), "acinode_arm_requests_total", node="vn-1", operation="get", result="200")
        == 3
    )
    replacement = counting.ArmRequestCounter()
    node.aci.counter = replacement  # type: ignore[attr-defined]
    replacement.record("get", "200")
    families = metrics.collect(svc)
    assert value(families, "acinode_arm_requests_total", node="vn-1", operation="get", result="200") == 4
    assert (
        value(families, "acinode_arm_requests_total", node="vn-1", operation="create_or_update", result="429")
        == 1
    )


async def test_instrumented_passes_are_timed_per_node() -> None:
    ticks = iter([10.0, 10.25, 20.0, 20.5])
    metrics = collector.OperatorMetrics(monotonic=lambda: next(ticks))
    calls: list[str] = []

    class Reconciler:
        where = pytypes.SimpleNamespace(node_name="vn-1")

        async def reconcile_key(self, key: object) -> None:
            calls.append(f"reconcile {key}")

        async def sync_once(self) -> int:
            calls.append("sync")
            return 4

    reconciler = Reconciler()
    svc = fake_services()
    svc.reconcilers.listeners.append(metrics.instrument)
    svc.reconcilers["vn-1"] = reconciler
    await reconciler.reconcile_key("pod-1")
    assert await reconciler.sync_once() == 4
    assert calls == ["reconcile pod-1", "sync"]
    assert metrics.reconcile_seconds.count(node="vn-1") == 1
    families = [metrics.reconcile_seconds.family(), metrics.sync_seconds.family()]
    assert value(families, "acinode_reconcile_duration_seconds_sum", node="vn-1") == pytest.approx(0.25)
    assert value(families, "acinode_status_sync_duration_seconds_sum", node="vn-1") == pytest.approx(0.5)


def test_heartbeat_age_is_infinite_until_the_first_renewal() -> None:
    keepers = {
        "a": FakeKeeper("vn-a", 100.0, now=112.5),
        "b": FakeKeeper("vn-b", None, now=50.0, ready=False),
    }
    families = collector.OperatorMetrics().collect(fake_services(keepers=keepers))
    assert value(families, "acinode_node_heartbeat_age_seconds", node="vn-a") == 12.5
    assert value(families, "acinode_node_heartbeat_age_seconds", node="vn-b") == float("inf")
    assert value(families, "acinode_node_ready", node="vn-b") == 0
    assert value(families, "acinode_virtual_nodes") == 2
