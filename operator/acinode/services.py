"""What every handler needs, built once by the composition root and handed to Kopf through its memo."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import TypeVar

from acinode import settings, types
from acinode.kube import client
from acinode.mapping import node as node_mapping
from acinode.node import keeper
from acinode.pods import reconciler

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
    restarts: dict[str, asyncio.Event] = dataclasses.field(default_factory=dict)
    """Set to make a VirtualNode's daemon rebuild its backend (its Azure settings changed)."""
