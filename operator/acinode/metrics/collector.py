"""The operator's metrics, read at scrape time (docs/monitoring.md lists each one): a prometheus-client custom
collector.

Gauges come from what the running units already hold, through narrow roles only: each pod controller's
``protocols.NodeSnapshot`` (pods by phase, groups by provisioning state, orphans by the controller's own rule,
groups in transition, queue depth, its ACI client's request counter) and each keeper's last lease renewal and
readiness. ARM requests are summed here into per-node counters that never go down, even when a node's client is
rebuilt (increments made after the last scrape of a client that was then closed are lost). Durations arrive as
they happen: ``OperatorMetrics`` is the ``protocols.PodObserver`` every pod controller is built with.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from prometheus_client import core, registry

import acinode
from acinode.aci import counting
from acinode.metrics import durations
from acinode.pods import protocols

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")


class NodeConfigView(Protocol):
    @property
    def node_name(self) -> str: ...


class ReadinessView(Protocol):
    @property
    def ready(self) -> bool: ...


class KeeperView(Protocol):
    """What the metrics read of a node keeper (its lease renewal and readiness)."""

    @property
    def config(self) -> NodeConfigView: ...

    @property
    def last_renewal(self) -> float | None:
        """Monotonic time of the last Lease renewal (None before the first)."""
        ...

    @property
    def readiness(self) -> ReadinessView: ...

    def monotonic(self) -> float: ...


class OperatorMetrics(registry.Collector):
    def __init__(
        self,
        nodes: Callable[[], Iterable[protocols.NodeStatsSource]] = list,
        keepers: Callable[[], Iterable[KeeperView]] = list,
        budget: protocols.StatusReadBudget | None = None,
    ) -> None:
        self.nodes = nodes
        self.keepers = keepers
        self.budget = budget
        """The status-read budget every pod controller's scheduler shares (operator-wide, so no node label);
        None: no budget figures."""
        self.reconcile_seconds = durations.DurationHistogram(
            "acinode_reconcile_duration_seconds",
            "Duration of reconciling one work item (a pod or a container group) of a virtual node, in seconds.",
        )
        self.sync_seconds = durations.DurationHistogram(
            "acinode_status_sync_duration_seconds",
            "Duration of one status-sync pass of a virtual node (list, GETs, pod status patches), in seconds.",
        )
        self._arm_seen: dict[counting.ArmRequestCounter, dict[tuple[str, str], int]] = {}
        self._arm_totals: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self._arm_lock = threading.Lock()
        self.registry = registry.CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    # --- PodObserver ----------------------------------------------------------------------------------------

    def on_reconcile(self, node: str, seconds: float) -> None:
        self.reconcile_seconds.observe(seconds, node)

    def on_sync(self, node: str, seconds: float) -> None:
        self.sync_seconds.observe(seconds, node)

    # --- collection -----------------------------------------------------------------------------------------

    def collect(self) -> Iterator[core.Metric]:
        snapshots = [node.snapshot() for node in self.nodes()]
        pods = core.GaugeMetricFamily(
            "acinode_pods", "Pods bound to each virtual node, by phase.", labels=["node", "phase"]
        )
        groups = core.GaugeMetricFamily(
            "acinode_container_groups",
            "ACI container groups of each virtual node (as last listed), by provisioning state.",
            labels=["node", "provisioning_state"],
        )
        orphans = core.GaugeMetricFamily(
            "acinode_orphan_container_groups",
            "Container groups of each virtual node whose pod is gone (queued for deletion by each listing).",
            labels=["node"],
        )
        transition = core.GaugeMetricFamily(
            "acinode_container_groups_in_transition",
            "Container groups the last status-sync pass found in transition (polled fast until steady).",
            labels=["node"],
        )
        queued = core.GaugeMetricFamily(
            "acinode_work_queue_depth",
            "Pods and container groups of each virtual node waiting to be reconciled (not counting those in hand).",
            labels=["node"],
        )
        for snap in snapshots:
            for phase in PHASES:
                pods.add_metric([snap.node_name, phase], snap.pods_by_phase.get(phase, 0))
            for state, count in sorted(snap.groups_by_provisioning_state.items()):
                groups.add_metric([snap.node_name, state], count)
            orphans.add_metric([snap.node_name], snap.orphan_groups)
            transition.add_metric([snap.node_name], snap.groups_in_transition)
            queued.add_metric([snap.node_name], snap.queue_depth)
        yield from (pods, groups, orphans, transition, queued, self._arm_family(snapshots))
        yield from self._node_families(list(self.keepers()))
        yield from self._budget_families()
        yield self.reconcile_seconds.family()
        yield self.sync_seconds.family()
        build = core.GaugeMetricFamily(
            "acinode_build_info", "The running acinode version.", labels=["version"]
        )
        build.add_metric([acinode.__version__], 1)
        yield build

    def _budget_families(self) -> list[core.Metric]:
        bound = self.budget.current() if self.budget is not None else None
        if bound is None:
            return []  # no pod controller yet
        rate = core.GaugeMetricFamily(
            "acinode_status_read_budget_reads_per_second",
            "Status GETs per second the operator spends on container groups (pods.status_reads_per_second).",
        )
        rate.add_metric([], bound.reads_per_second)
        steady = core.GaugeMetricFamily(
            "acinode_status_steady_container_groups",
            "Steady container groups the status-read budget sweeps, by kind (server, or likely to end).",
            labels=["kind"],
        )
        lag = core.GaugeMetricFamily(
            "acinode_status_lag_bound_seconds",
            "Worst-case seconds from a steady container's exit to its pod's status, at the budget and the steady "
            "groups now (the budget's arithmetic; +Inf without a budget).",
            labels=["kind"],
        )
        for kind, count, seconds in (
            ("server", bound.servers, bound.server_lag_seconds),
            ("likely_to_end", bound.likely, bound.likely_lag_seconds),
        ):
            steady.add_metric([kind], count)
            lag.add_metric([kind], seconds)
        return [rate, steady, lag]

    def _arm_family(self, snapshots: list[protocols.NodeSnapshot]) -> core.CounterMetricFamily:
        with self._arm_lock:
            live: dict[counting.ArmRequestCounter, dict[tuple[str, str], int]] = {}
            for snap in snapshots:
                counter = snap.arm_requests
                if counter in live:
                    continue  # shared by nodes of one subscription: counted once, under the first node
                current = counter.snapshot()
                seen = self._arm_seen.get(counter, {})
                for (operation, result), count in current.items():
                    delta = count - seen.get((operation, result), 0)
                    self._arm_totals[(snap.node_name, operation, result)] += count if delta < 0 else delta
                live[counter] = current
            self._arm_seen = live
            totals = sorted(self._arm_totals.items())
        family = core.CounterMetricFamily(
            "acinode_arm_requests_total",
            "ARM requests sent by each virtual node's ACI client, by operation and result (HTTP status, or the "
            "exception's name when no response came; 429 = throttled).",
            labels=["node", "operation", "result"],
        )
        for (node, operation, result), count in totals:
            family.add_metric([node, operation, result], count)
        return family

    def _node_families(self, keepers: list[KeeperView]) -> list[core.Metric]:
        age = core.GaugeMetricFamily(
            "acinode_node_heartbeat_age_seconds",
            "Seconds since each virtual node's Lease was last renewed (+Inf before the first renewal).",
            labels=["node"],
        )
        ready = core.GaugeMetricFamily(
            "acinode_node_ready",
            "1 when the virtual node reports Ready (its ACI backend answers).",
            labels=["node"],
        )
        for node_keeper in keepers:
            node = str(node_keeper.config.node_name)
            last = node_keeper.last_renewal
            age.add_metric([node], float("inf") if last is None else max(0.0, node_keeper.monotonic() - last))
            ready.add_metric([node], 1 if node_keeper.readiness.ready else 0)
        count = core.GaugeMetricFamily("acinode_virtual_nodes", "Virtual nodes the operator keeps.")
        count.add_metric([], len(keepers))
        return [age, ready, count]
