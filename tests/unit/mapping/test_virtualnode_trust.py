"""What a VirtualNode may ask of the operator: Secrets only from the operator's namespace, and the operator's Azure
credentials never sent to an endpoint, authority or scope the VirtualNode chose (unless the operator allows it)."""

from __future__ import annotations

from typing import Any

import pytest

from acinode.mapping import placement, virtualnode

pytestmark = pytest.mark.timeout(2)

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
CUSTOM = {"name": "Custom", "resourceManagerEndpoint": "https://arm.attacker.example"}
IDENTITY = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app"


def config(
    cloud: dict[str, Any] | None = None, credentials: dict[str, Any] | None = None, **spec: Any
) -> Any:
    azure: dict[str, Any] = {"subscriptionId": SUBSCRIPTION, "resourceGroup": "rg", "region": "westeurope"}
    if cloud:
        azure["cloud"] = cloud
    if credentials:
        azure["credentials"] = credentials
    azure.update(spec.pop("azure", {}))
    return virtualnode.virtual_node_config_from_resource(
        {"metadata": {"name": "vn"}, "spec": {"azure": azure, **spec}}
    )


def problems(cfg: virtualnode.VirtualNodeConfig, allow: bool = False) -> list[str]:
    return virtualnode.trust_problems(
        cfg, operator_namespace="acinode-system", allow_custom_cloud_credentials=allow
    )


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        (
            config(
                credentials={"type": "StaticToken", "secretRef": {"name": "t", "namespace": "kube-system"}}
            ),
            "spec.azure.credentials.secretRef.namespace",
        ),
        (
            config(
                azure={
                    "logAnalytics": {
                        "workspaceId": "w",
                        "workspaceKeySecretRef": {"name": "k", "namespace": "tenant"},
                    }
                }
            ),
            "spec.azure.logAnalytics.workspaceKeySecretRef.namespace",
        ),
        (
            config(
                kubeProxy={
                    "enabled": True,
                    "clusterCIDR": "10.0.0.0/8",
                    "kubeconfigSecretRef": {"name": "k", "namespace": "x"},
                }
            ),
            "spec.kubeProxy.kubeconfigSecretRef.namespace",
        ),
        (config(cloud=CUSTOM), "spec.azure.cloud.resourceManagerEndpoint"),
        (
            config(cloud=CUSTOM, credentials={"type": "WorkloadIdentity"}),
            "credentials of type WorkloadIdentity",
        ),
        (config(cloud=CUSTOM, credentials={"type": "ManagedIdentity", "clientId": "c"}), "ManagedIdentity"),
        (
            config(cloud=CUSTOM, credentials={"type": "ServicePrincipal", "secretRef": {"name": "sp"}}),
            "ServicePrincipal",
        ),
        (config(cloud={"name": "AzurePublicCloud", "caBundle": "pem"}), "spec.azure.cloud.caBundle"),
        (
            config(
                cloud={**CUSTOM, "authorityHost": "https://login.attacker.example"},
                credentials={"type": "ServicePrincipal", "secretRef": {"name": "sp"}},
            ),
            "spec.azure.cloud.authorityHost",
        ),
        (
            config(cloud={**CUSTOM, "credentialScope": "https://vault.azure.net/.default"}),
            "spec.azure.cloud.credentialScope",
        ),
    ],
)
def test_overreaching_virtual_nodes_are_refused(cfg: virtualnode.VirtualNodeConfig, expected: str) -> None:
    found = problems(cfg)
    assert len(found) == 1
    assert expected in found[0]


@pytest.mark.parametrize(
    "cfg",
    [
        config(),
        config(credentials={"type": "WorkloadIdentity"}),
        config(cloud={"name": "AzureUSGovernment"}, credentials={"type": "ManagedIdentity", "clientId": "c"}),
        config(credentials={"type": "ServicePrincipal", "secretRef": {"name": "sp"}}),
        config(
            credentials={"type": "StaticToken", "secretRef": {"name": "t", "namespace": "acinode-system"}}
        ),
        # The emulator, or a trial: a token the VirtualNode's author holds anyway.
        config(
            cloud={**CUSTOM, "caBundle": "pem"},
            credentials={"type": "StaticToken", "secretRef": {"name": "t"}},
        ),
    ],
)
def test_virtual_nodes_within_bounds_pass(cfg: virtualnode.VirtualNodeConfig) -> None:
    assert problems(cfg) == []


def test_the_operator_may_allow_custom_clouds_with_real_credentials() -> None:
    cfg = config(cloud={**CUSTOM, "caBundle": "pem"}, credentials={"type": "WorkloadIdentity"})
    assert problems(cfg, allow=True) == []
    # ... but never Secrets of other namespaces.
    other = config(credentials={"type": "ServicePrincipal", "secretRef": {"name": "sp", "namespace": "x"}})
    assert problems(other, allow=True) != []


def test_allowed_identities_reach_the_placement() -> None:
    cfg = config(
        azure={
            "allowedIdentities": [
                {"resourceId": IDENTITY, "namespaces": ["shop"]},
                {"resourceId": IDENTITY + "2"},
            ]
        }
    )
    where = virtualnode.group_placement_from_config(cfg, "cluster", None)  # type: ignore[arg-type]
    assert where.allowed_identities == (
        placement.AllowedIdentity(IDENTITY, ("shop",)),
        placement.AllowedIdentity(IDENTITY + "2"),
    )
    assert where.identity_allowed(IDENTITY.upper(), "shop")
    assert not where.identity_allowed(IDENTITY, "other")
    assert where.identity_allowed(IDENTITY + "2", "other")
