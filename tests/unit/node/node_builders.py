"""Builders shared by the node-keeping tests: settings with fast timings, the VirtualNode, paths."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from acinode import settings
from acinode.kube import resources
from acinode.mapping import node as node_mapping
from acinode.node import keeper

MakeKeeper = Callable[..., keeper.NodeKeeper]
"""The ``make_keeper`` fixture: a NodeKeeper on the fakes (keyword arguments override the constructor's)."""

IDENTITY = node_mapping.NodeIdentity(
    internal_ip="10.0.0.7", kubelet_port=10250, kubelet_version="v1.37.2-acinode"
)
NODES = "/api/v1/nodes"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


def virtual_node(
    name: str = "vn-1",
    generation: int = 1,
    *,
    uid: str = "vn-uid",
    created: str = "2025-01-01T11:00:00Z",
    **spec: Any,
) -> dict[str, Any]:
    """A VirtualNode as the API server holds it (the keeper's ``owner_uid`` is its uid, ``vn-uid``)."""
    return {
        "apiVersion": "acinode.dev/v1alpha1",
        "kind": "VirtualNode",
        "metadata": {"name": name, "generation": generation, "uid": uid, "creationTimestamp": created},
        "spec": {
            "azure": {
                "subscriptionId": "00000000-0000-0000-0000-000000000001",
                "resourceGroup": "rg",
                "region": "westeurope",
            },
            **spec,
        },
    }


def node_path(name: str = "vn-1") -> str:
    return resources.node_path(name)


def lease_path(name: str = "vn-1") -> str:
    return f"{LEASES}/{name}"


def vn_status_path(name: str = "vn-1") -> str:
    return f"{resources.virtual_node_path(name)}/status"


def fast_settings(
    *,
    renew_interval: float = 0.02,
    probe_interval: float = 0.02,
    status_interval: float = 60.0,
    api_timeout: float = 0.2,
) -> settings.Settings:
    """Intervals short enough for loop tests (real time), long enough not to spin."""
    return settings.Settings(
        lease=settings.LeaseSettings(duration_seconds=40, renew_interval_seconds=renew_interval),
        node=settings.NodeSettings(
            status_interval_seconds=status_interval,
            probe_interval_seconds=probe_interval,
            api_timeout_seconds=api_timeout,
            internal_ip=IDENTITY.internal_ip,
        ),
    )
