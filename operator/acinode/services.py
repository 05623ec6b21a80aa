"""What every handler needs, built once by the composition root and handed to Kopf through its memo."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import TypeVar

from acinode import settings, types
from acinode.aci import ratelimit
from acinode.kube import client
from acinode.mapping import node as node_mapping
from acinode.node import keeper
from acinode.pods import protocols, reconciler

V = TypeVar("V")


class Registry(dict[str, V]):
    """A dict that calls its listeners with every value put in (the metrics time each reconciler's passes)."""

    def __init__(self) -> None:
        super().__init__()
        self.listeners: list[Callable[[V], None]] = []

    def __setitem__(self, key: str, value: V) -> None:
        super().__setitem__(key, value)
        for listener in self.listeners:
            listener(value)


@dataclasses.dataclass
class Services:
    kube: client.KubeClient
    settings: settings.Settings
    identity: node_mapping.NodeIdentity
    operator_namespace: str
    cluster_id: types.ClusterId
    keepers: dict[str, keeper.NodeKeeper] = dataclasses.field(default_factory=dict)
    """The running keeper of each VirtualNode, by VirtualNode name."""
    reconcilers: Registry[reconciler.NodePodReconciler] = dataclasses.field(default_factory=Registry)
    """The running pod reconciler of each VirtualNode, by VirtualNode name."""
    pod_observer: protocols.PodObserver | None = None
    """Told how long reconciles and syncs take (the metrics), passed to every pod controller when it is built."""
    limiters: ratelimit.SubscriptionLimiters | None = None
    """One ARM rate budget per subscription, shared by the clients of every VirtualNode in it."""
    restarts: dict[str, asyncio.Event] = dataclasses.field(default_factory=dict)
    """Set to make a VirtualNode's daemon rebuild its backend (its Azure settings changed)."""

    def __post_init__(self) -> None:
        if self.limiters is None:
            self.limiters = ratelimit.SubscriptionLimiters(self.settings.aci)

    def limiter_for(self, subscription_id: str) -> ratelimit.ArmRateLimiter:
        assert self.limiters is not None
        return self.limiters.limiter_for(subscription_id)
