"""What each VirtualNode spec edit needs of a running node: the table behind ``VirtualNodeRuntime.apply``."""

from __future__ import annotations

from typing import Any

import pytest

from acinode.mapping import virtualnode
from acinode.mapping.virtualnode import Effect

pytestmark = pytest.mark.timeout(2)

AZURE = {
    "subscriptionId": "00000000-0000-0000-0000-000000000001",
    "resourceGroup": "rg",
    "region": "westeurope",
}
IDENTITY = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/a"


def config(spec: dict[str, Any] | None = None, **azure: Any) -> virtualnode.VirtualNodeConfig:
    body = {
        "metadata": {"name": "vn", "generation": 1},
        "spec": {"azure": {**AZURE, **azure}, **(spec or {})},
    }
    return virtualnode.virtual_node_config_from_resource(body)


BASE = config()


@pytest.mark.parametrize(
    ("changed", "effect"),
    [
        (config({"labels": {"team": "a"}}), Effect.NODE),
        (config({"taints": [{"key": "k", "effect": "NoSchedule"}]}), Effect.NODE),
        (config({"disableDefaultTaint": True}), Effect.NODE),
        (config({"capacity": {"pods": 7}}), Effect.NODE),
        (config({"operatingSystem": "windows"}), Effect.NODE | Effect.PLACEMENT),
        (config({"dns": {"clusterDNS": ["10.0.0.99"]}}), Effect.PLACEMENT),
        (config({"containerGroups": {"maxCPU": 8}}), Effect.PLACEMENT),
        # A GPU SKU also advertises GPUs on the Node.
        (config({"containerGroups": {"gpuSkus": ["V100"]}}), Effect.PLACEMENT | Effect.NODE),
        (
            config(
                {
                    "kubeProxy": {
                        "enabled": True,
                        "clusterCIDR": "10.0.0.0/8",
                        "kubeconfigSecretRef": {"name": "k"},
                    }
                }
            ),
            Effect.PLACEMENT_SECRETS | Effect.PLACEMENT,
        ),
        (
            config(logAnalytics={"workspaceId": "w", "workspaceKeySecretRef": {"name": "k"}}),
            Effect.PLACEMENT_SECRETS | Effect.PLACEMENT,
        ),
        (config(tags={"team": "a"}), Effect.PLACEMENT),
        (config(allowedIdentities=[{"resourceId": IDENTITY}]), Effect.PLACEMENT),
        (
            config(
                subnetId="/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/v/subnets/a"
            ),
            Effect.PLACEMENT,
        ),
        (config(credentials={"type": "WorkloadIdentity"}), Effect.BACKEND),
        (config(cloud={"name": "AzureUSGovernment"}), Effect.BACKEND),
        (config({"nodeName": "other"}), Effect.BACKEND | Effect.NODE),
        (BASE, Effect.NONE),
    ],
)
def test_each_field_has_its_effect(changed: virtualnode.VirtualNodeConfig, effect: Effect) -> None:
    assert virtualnode.change_effects(BASE, changed) == effect


def test_a_new_generation_alone_changes_nothing() -> None:
    newer = virtualnode.virtual_node_config_from_resource(
        {"metadata": {"name": "vn", "generation": 9}, "spec": {"azure": AZURE}}
    )
    assert virtualnode.change_effects(BASE, newer) == Effect.NONE


def test_several_fields_add_up() -> None:
    changed = config(
        {"labels": {"a": "b"}, "dns": {"clusterDNS": ["10.0.0.1"]}}, credentials={"type": "Default"}
    )
    assert virtualnode.change_effects(BASE, changed) == Effect.NODE | Effect.PLACEMENT
