"""Ids that must not be swapped for one another, and the wire payload shapes acinode reads."""

from __future__ import annotations

from typing import NewType

NodeName = NewType("NodeName", str)
"""The name of a Kubernetes Node (and of the VirtualNode that declares it, unless the spec says otherwise)."""

PodUid = NewType("PodUid", str)
ContainerGroupName = NewType("ContainerGroupName", str)
ResourceGroup = NewType("ResourceGroup", str)
SubscriptionId = NewType("SubscriptionId", str)
ClusterId = NewType("ClusterId", str)
"""The UID of the cluster's kube-system namespace: stable and unique per cluster."""
