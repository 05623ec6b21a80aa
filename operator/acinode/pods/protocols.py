"""What the rest of the operator may know of a node's pod controller: small role protocols, nothing more.

The kubelet API and the metrics consume only these (an import-linter contract forbids them every other module
of ``acinode.pods``), in the spirit of virtual-kubelet's ``PodLifecycleHandler`` and its lister function types:
- ``ServedNode``: what the kubelet API serves of one virtual node (its name, placement, bound pods, pod lookup)
  and ``ContainerAccess``, the only ACI calls the kubelet makes (logs, get, exec, usage);
- ``NodeStatsSource`` / ``NodeSnapshot``: what the metrics read of one node at scrape time;
- ``PodObserver``: told how long each reconcile and sync pass takes (passed to the controller when it is built).
``PodController`` implements ``ServedNode`` and ``NodeStatsSource``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Protocol

from acinode import types
from acinode.aci import api, counting
from acinode.mapping import objects, placement
from acinode.pods import readbudget


class ContainerAccess(Protocol):
    """The ACI calls the kubelet API makes on a node's groups (contracts as in ``api.AciApi``)."""

    async def container_logs(
        self,
        name: types.ContainerGroupName,
        container: str,
        *,
        tail: int | None = None,
        timestamps: bool = False,
    ) -> str: ...

    async def get(self, name: types.ContainerGroupName) -> api.GroupModel: ...

    async def exec_command(
        self,
        name: types.ContainerGroupName,
        container: str,
        command: str,
        *,
        rows: int = 24,
        cols: int = 80,
    ) -> api.ExecSession: ...

    async def attach(self, name: types.ContainerGroupName, container: str) -> api.ExecSession:
        """ACI's attach: the container's output only (``api.AciApi.attach``)."""
        ...

    @property
    def ca_bundle_path(self) -> str | None:
        """The CA bundle ACI's endpoints are trusted with (a private cloud's), or None for the system's."""
        ...

    async def container_usage(
        self, name: types.ContainerGroupName, *, start: dt.datetime, end: dt.datetime
    ) -> api.GroupUsage:
        """Azure Monitor's CPU and memory usage of the group's containers (``AciApi.container_usage``)."""
        ...


class ServedNode(Protocol):
    """One virtual node as the kubelet API serves it. Every method answers from memory and never blocks."""

    @property
    def node_name(self) -> types.NodeName: ...

    @property
    def placement(self) -> placement.GroupPlacement:
        """Where the node's groups are placed (sizes in ``/stats/summary`` follow its defaults and maxima)."""
        ...

    @property
    def containers(self) -> ContainerAccess: ...

    def bound_pods(self) -> Sequence[objects.Pod]:
        """A snapshot of the pods bound to the node (the last the watch delivered)."""
        ...

    def find_pod(self, namespace: str, name: str) -> objects.Pod | None: ...

    def pod_by_uid(self, uid: str) -> objects.Pod | None: ...


@dataclasses.dataclass(frozen=True)
class NodeSnapshot:
    """One node's figures at one moment (docs/monitoring.md)."""

    node_name: str
    pods_by_phase: Mapping[str, int]
    groups_by_provisioning_state: Mapping[str, int]
    """Groups as last listed (with our own writes laid over)."""
    orphan_groups: int
    """Groups whose pod is gone, by the controller's own rule (0 until the pod view has listed)."""
    groups_in_transition: int
    """As the last status-sync pass found them."""
    queue_depth: int
    arm_requests: counting.ArmRequestCounter
    """The node's ACI client's request counter (possibly shared with other nodes of its subscription)."""


class NodeStatsSource(Protocol):
    def snapshot(self) -> NodeSnapshot: ...


class PodObserver(Protocol):
    """Told the duration of each unit of work; must not block (it runs on the controller's task)."""

    def on_reconcile(self, node: str, seconds: float) -> None:
        """One work item (a pod or a group) reconciled."""
        ...

    def on_sync(self, node: str, seconds: float) -> None:
        """One status-sync pass (list, GETs, status patches)."""
        ...


class StatusReadBudget(Protocol):
    """What the metrics read of the operator-wide status-read budget (``readbudget.SharedBudget``)."""

    def current(self) -> readbudget.LagBound | None: ...
