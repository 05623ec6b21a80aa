"""What every handler needs, built once by the composition root and handed to Kopf through its memo."""

from __future__ import annotations

import dataclasses
from typing import Any

from acinode import settings, types
from acinode.aci import ratelimit
from acinode.kube import client
from acinode.mapping import node as node_mapping
from acinode.node import backend, keeper
from acinode.pods import lifecycle, protocols, reconciler
from acinode.runtime import ownership as ownership_
from acinode.runtime import virtualnode as runtime


@dataclasses.dataclass
class Services:
    kube: client.KubeClient
    settings: settings.Settings
    identity: node_mapping.NodeIdentity
    operator_namespace: str
    cluster_id: types.ClusterId
    runtimes: dict[str, runtime.VirtualNodeRuntime] = dataclasses.field(default_factory=dict)
    """The running runtime of each VirtualNode, by VirtualNode name."""
    reconcilers: dict[str, reconciler.NodePodReconciler] = dataclasses.field(default_factory=dict)
    """The pod controllers serving pods now, by VirtualNode name (the kubelet API and the metrics read them)."""
    limiters: ratelimit.SubscriptionLimiters | None = None
    """One ARM rate budget per subscription, shared by the clients of every VirtualNode in it."""
    pod_observer: protocols.PodObserver | None = None
    """Told how long reconciles and syncs take (the metrics), passed to every pod controller when it is built."""
    probe_results: backend.ProbeResults = dataclasses.field(default_factory=backend.ProbeResults)
    """Backend checks shared by every VirtualNode that reaches ARM the same way."""
    images: lifecycle.ImageEntrypoints | None = None
    """Reads image ENTRYPOINTs from registries for every node (``oci.client.ImageConfigReader``)."""
    ownership: ownership_.Ownership | None = None
    """This replica's side of the VirtualNode Leases (runtime/ownership.py); None: every VirtualNode is served here
    without Leases (a test harness that runs one replica)."""

    def __post_init__(self) -> None:
        if self.limiters is None:
            self.limiters = ratelimit.SubscriptionLimiters(self.settings.aci)

    def limiter_for(self, subscription_id: str) -> ratelimit.ArmRateLimiter:
        assert self.limiters is not None
        return self.limiters.limiter_for(subscription_id)

    @property
    def keepers(self) -> dict[str, keeper.NodeKeeper]:
        """The keeper of each running VirtualNode (heartbeat ages for the metrics)."""
        return {name: node.keeper for name, node in self.runtimes.items()}

    def runtime_deps(self) -> runtime.RuntimeDeps:
        def serving(name: str, controller: Any) -> None:
            self.reconcilers[name] = controller

        def stopped(name: str, controller: Any) -> None:
            if self.reconcilers.get(name) is controller:
                del self.reconcilers[name]

        return runtime.RuntimeDeps(
            kube=self.kube,
            settings=self.settings,
            identity=self.identity,
            operator_namespace=self.operator_namespace,
            cluster_id=self.cluster_id,
            limiter_for=self.limiter_for,
            pod_observer=self.pod_observer,
            images=self.images,
            probe_results=self.probe_results,
            on_serving=serving,
            on_stopped=stopped,
        )
