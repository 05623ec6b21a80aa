"""What every handler needs, built once by the composition root and handed to Kopf through its memo."""

from __future__ import annotations

import dataclasses

from acinode import settings, types
from acinode.kube import client
from acinode.mapping import node as node_mapping
from acinode.node import keeper


@dataclasses.dataclass
class Services:
    kube: client.KubeClient
    settings: settings.Settings
    identity: node_mapping.NodeIdentity
    operator_namespace: str
    cluster_id: types.ClusterId
    keepers: dict[str, keeper.NodeKeeper] = dataclasses.field(default_factory=dict)
    """The running keeper of each VirtualNode, by VirtualNode name."""
