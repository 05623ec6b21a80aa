"""The operator's metrics, read from its services at scrape time (docs/monitoring.md lists each one).

Gauges come from what the running units already hold: each reconciler's pod view and group listing, each keeper's
last lease renewal and readiness. ARM requests come from each ACI client's ``ArmRequestCounter`` and are summed
here into per-node counters that never go down, even when a node's client is rebuilt (increments made after the
last scrape of a client that was then closed are lost). Durations are timed by wrapping each reconciler's
``reconcile_key`` (one work item: a pod or a group) and ``sync_once`` when it is registered (``instrument``).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable
from typing import Any

import acinode
from acinode import services
from acinode.aci import counting
from acinode.mapping import tags
from acinode.metrics import exposition
from acinode.node import keeper
from acinode.pods import reconciler

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")


class OperatorMetrics:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self.reconcile_seconds = exposition.Histogram(
            "acinode_reconcile_duration_seconds",
            "Duration of reconciling one work item (a pod or a container group) of a virtual node, in seconds.",
        )
        self.sync_seconds = exposition.Histogram(
            "acinode_status_sync_duration_seconds",
            "Duration of one status-sync pass of a virtual node (list, GETs, pod status patches), in seconds.",
        )
        self._in_transition: dict[str, int] = {}
        self._arm_seen: dict[counting.ArmRequestCounter, dict[tuple[str, str], int]] = {}
        self._arm_totals: collections.Counter[tuple[str, str, str]] = collections.Counter()

    # --- instrumentation ----------------------------------------------------------------------------------

    def instrument(self, pod_reconciler: reconciler.NodePodReconciler) -> None:
        """Time the reconciler's work (called for each reconciler put into ``Services.reconcilers``)."""
        node = str(pod_reconciler.where.node_name)
        reconcile_key = pod_reconciler.reconcile_key
        sync_once = pod_reconciler.sync_once

        async def timed_reconcile(key: reconciler.WorkKey) -> None:
            await self._timed(lambda: reconcile_key(key), self.reconcile_seconds, node)

        async def timed_sync() -> int:
            transitions: int = await self._timed(sync_once, self.sync_seconds, node)
            self._in_transition[node] = transitions
            return transitions

        pod_reconciler.reconcile_key = timed_reconcile  # type: ignore[method-assign]
        pod_reconciler.sync_once = timed_sync  # type: ignore[method-assign]

    async def _timed(
        self, call: Callable[[], Awaitable[Any]], histogram: exposition.Histogram, node: str
    ) -> Any:
        started = self.monotonic()
        try:
            return await call()
        finally:
            histogram.observe(self.monotonic() - started, node=node)

    # --- collection ---------------------------------------------------------------------------------------

    def collect(self, svc: services.Services) -> list[exposition.Family]:
        reconcilers = list(svc.reconcilers.values())
        keepers = list(svc.keepers.values())
        pods = exposition.Family("acinode_pods", "gauge", "Pods bound to each virtual node, by phase.")
        groups = exposition.Family(
            "acinode_container_groups",
            "gauge",
            "ACI container groups of each virtual node (as last listed), by provisioning state.",
        )
        orphans = exposition.Family(
            "acinode_orphan_container_groups",
            "gauge",
            "Container groups of each virtual node whose pod is gone (queued for deletion by each listing).",
        )
        queued = exposition.Family(
            "acinode_work_queue_depth",
            "gauge",
            "Pods and container groups of each virtual node waiting to be reconciled (not counting those in hand).",
        )
        transition = exposition.Family(
            "acinode_container_groups_in_transition",
            "gauge",
            "Container groups the last status-sync pass found in transition (polled fast until steady).",
        )
        for node_reconciler in reconcilers:
            node = str(node_reconciler.where.node_name)
            phases = collections.Counter(
                p.get("status", {}).get("phase") or "Pending"
                for p in list(node_reconciler.view.pods.values())
            )
            for phase in PHASES:
                pods.add(phases.get(phase, 0), node=node, phase=phase)
            states = collections.Counter(
                s.provisioning_state or "Unknown" for s in list(node_reconciler.groups.values())
            )
            for state, count in sorted(states.items()):
                groups.add(count, node=node, provisioning_state=state)
            orphans.add(_orphans(node_reconciler), node=node)
            transition.add(self._in_transition.get(node, 0), node=node)
            queued.add(len(node_reconciler.queue), node=node)
        families = [pods, groups, orphans, transition, queued, self._arm_family(reconcilers)]
        families += self._node_families(keepers)
        families += [self.reconcile_seconds.family(), self.sync_seconds.family()]
        families.append(
            exposition.Family("acinode_build_info", "gauge", "The running acinode version.").add(
                1, version=acinode.__version__
            )
        )
        return families

    def _arm_family(self, reconcilers: list[reconciler.NodePodReconciler]) -> exposition.Family:
        live: dict[counting.ArmRequestCounter, dict[tuple[str, str], int]] = {}
        for node_reconciler in reconcilers:
            counter = getattr(node_reconciler.aci, "counter", None)
            if not isinstance(counter, counting.ArmRequestCounter) or counter in live:
                continue
            node = str(node_reconciler.where.node_name)
            snapshot = counter.snapshot()
            seen = self._arm_seen.get(counter, {})
            for (operation, result), count in snapshot.items():
                delta = count - seen.get((operation, result), 0)
                self._arm_totals[(node, operation, result)] += count if delta < 0 else delta
            live[counter] = snapshot
        self._arm_seen = live
        family = exposition.Family(
            "acinode_arm_requests_total",
            "counter",
            "ARM requests sent by each virtual node's ACI client, by operation and result (HTTP status, or the "
            "exception's name when no response came; 429 = throttled).",
        )
        for (node, operation, result), count in sorted(self._arm_totals.items()):
            family.add(count, node=node, operation=operation, result=result)
        return family

    def _node_families(self, keepers: list[keeper.NodeKeeper]) -> list[exposition.Family]:
        age = exposition.Family(
            "acinode_node_heartbeat_age_seconds",
            "gauge",
            "Seconds since each virtual node's Lease was last renewed (+Inf before the first renewal).",
        )
        ready = exposition.Family(
            "acinode_node_ready", "gauge", "1 when the virtual node reports Ready (its ACI backend answers)."
        )
        for node_keeper in keepers:
            node = str(node_keeper.config.node_name)
            last = node_keeper.last_renewal
            age.add(float("inf") if last is None else max(0.0, node_keeper.monotonic() - last), node=node)
            ready.add(1 if node_keeper.readiness.ready else 0, node=node)
        count = exposition.Family("acinode_virtual_nodes", "gauge", "Virtual nodes the operator keeps.")
        count.add(len(keepers))
        return [age, ready, count]


def _orphans(node_reconciler: reconciler.NodePodReconciler) -> int:
    if not node_reconciler.view.synced:
        return 0
    live = {p.get("metadata", {}).get("uid") for p in list(node_reconciler.view.pods.values())}
    count = 0
    for summary in list(node_reconciler.groups.values()):
        identity = tags.pod_identity_from_tags(summary.tags)
        if identity is not None and identity.uid not in live:
            count += 1
    return count
