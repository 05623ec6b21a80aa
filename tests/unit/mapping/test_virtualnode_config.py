"""A VirtualNode object parsed into typed configuration: every field, and the defaults of objects written before
a default existed (or with explicit nulls)."""

from __future__ import annotations

from typing import Any

import pytest

from acinode import types
from acinode.mapping import virtualnode

pytestmark = pytest.mark.timeout(2)

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
AZURE = {"subscriptionId": SUBSCRIPTION, "resourceGroup": "rg", "region": "westeurope"}


def resource(metadata: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "acinode.dev/v1alpha1",
        "kind": "VirtualNode",
        "metadata": {"name": "vn-1", **(metadata or {})},
        "spec": {"azure": AZURE, **spec},
    }


def parse(obj: dict[str, Any]) -> virtualnode.VirtualNodeConfig:
    return virtualnode.virtual_node_config_from_resource(obj)


def test_a_minimal_virtual_node_gets_every_default() -> None:
    assert parse(resource()) == virtualnode.VirtualNodeConfig(
        name="vn-1",
        node_name=types.NodeName("vn-1"),
        azure=virtualnode.AzureConfig(
            subscription_id=types.SubscriptionId(SUBSCRIPTION),
            resource_group=types.ResourceGroup("rg"),
            region="westeurope",
            subnet_id=None,
            cloud=virtualnode.CloudConfig(name="AzurePublicCloud"),
            credentials=virtualnode.CredentialsConfig(type="Default"),
            tags={},
        ),
        operating_system="linux",
        labels={},
        taints=(),
        disable_default_taint=False,
        capacity={"cpu": "800", "memory": "4Ti", "pods": "1000"},
        dns=virtualnode.DnsConfig(cluster_dns=(), cluster_domain="cluster.local"),
        kube_proxy=None,
        log_analytics=None,
        generation=0,
    )


@pytest.mark.parametrize(
    ("obj", "attribute", "expected"),
    [
        pytest.param(resource(), "node_name", "vn-1", id="node-name-defaults-to-name"),
        pytest.param(resource(nodeName="aci-node"), "node_name", "aci-node", id="node-name"),
        pytest.param(resource(nodeName=""), "node_name", "vn-1", id="empty-node-name"),
        pytest.param(resource({"generation": 3}), "generation", 3, id="generation"),
        pytest.param(resource(operatingSystem="windows"), "operating_system", "windows", id="windows"),
        pytest.param(resource(labels={"team": "burst"}), "labels", {"team": "burst"}, id="labels"),
        pytest.param(resource(labels=None), "labels", {}, id="null-labels"),
        pytest.param(
            resource(disableDefaultTaint=True), "disable_default_taint", True, id="disable-default-taint"
        ),
        pytest.param(
            resource(
                kubeProxy={
                    "enabled": True,
                    "clusterCIDR": "10.240.0.0/16",
                    "kubeconfigSecretRef": {"name": "kp"},
                }
            ),
            "kube_proxy",
            virtualnode.KubeProxyConfig("10.240.0.0/16", virtualnode.SecretReference("kp")),
            id="kube-proxy",
        ),
        pytest.param(
            resource(
                kubeProxy={
                    "enabled": False,
                    "clusterCIDR": "10.240.0.0/16",
                    "kubeconfigSecretRef": {"name": "kp"},
                }
            ),
            "kube_proxy",
            None,
            id="kube-proxy-disabled",
        ),
        pytest.param(resource(kubeProxy={}), "kube_proxy", None, id="kube-proxy-empty"),
        pytest.param(resource(kubeProxy=None), "kube_proxy", None, id="kube-proxy-null"),
        pytest.param(
            resource(
                taints=[
                    {"key": "a", "effect": "NoSchedule"},
                    {"key": "b", "value": "1", "effect": "NoExecute"},
                ]
            ),
            "taints",
            (virtualnode.Taint("a", "NoSchedule"), virtualnode.Taint("b", "NoExecute", "1")),
            id="taints",
        ),
        pytest.param(resource(taints=None), "taints", (), id="null-taints"),
        pytest.param(
            resource(capacity=None),
            "capacity",
            {"cpu": "800", "memory": "4Ti", "pods": "1000"},
            id="null-cap",
        ),
        pytest.param(
            resource(capacity={"memory": "200Gi"}),
            "capacity",
            {"cpu": "800", "memory": "200Gi", "pods": "1000"},
            id="partial-capacity-keeps-defaults",
        ),
        pytest.param(
            resource(capacity={"cpu": 16, "pods": 50, "nvidia.com/gpu": 2}),
            "capacity",
            {"cpu": "16", "memory": "4Ti", "pods": "50", "nvidia.com/gpu": "2"},
            id="capacity-numbers-become-strings",
        ),
        pytest.param(
            resource(dns={"clusterDNS": ["10.96.0.10"], "clusterDomain": "corp.local"}),
            "dns",
            virtualnode.DnsConfig(cluster_dns=("10.96.0.10",), cluster_domain="corp.local"),
            id="dns",
        ),
        pytest.param(resource(dns=None), "dns", virtualnode.DnsConfig(), id="null-dns"),
        pytest.param(
            resource(dns={"clusterDNS": None}), "dns", virtualnode.DnsConfig(), id="null-cluster-dns"
        ),
    ],
)
def test_spec_fields(obj: dict[str, Any], attribute: str, expected: Any) -> None:
    assert getattr(parse(obj), attribute) == expected


@pytest.mark.parametrize(
    ("azure", "expected"),
    [
        pytest.param(
            {
                "subnetId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/a"
            },
            {
                "subnet_id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/a"
            },
            id="subnet",
        ),
        pytest.param({"tags": {"cost-center": "42"}}, {"tags": {"cost-center": "42"}}, id="tags"),
        pytest.param({"tags": None}, {"tags": {}}, id="null-tags"),
        pytest.param(
            {"cloud": {"name": "AzureUSGovernment"}},
            {"cloud": virtualnode.CloudConfig(name="AzureUSGovernment")},
            id="sovereign-cloud",
        ),
        pytest.param(
            {
                "cloud": {
                    "name": "Custom",
                    "resourceManagerEndpoint": "https://127.0.0.1:8443",
                    "authorityHost": "https://login.example",
                    "credentialScope": "https://127.0.0.1:8443/.default",
                    "caBundle": "-----BEGIN CERTIFICATE-----",
                }
            },
            {
                "cloud": virtualnode.CloudConfig(
                    name="Custom",
                    resource_manager_endpoint="https://127.0.0.1:8443",
                    authority_host="https://login.example",
                    credential_scope="https://127.0.0.1:8443/.default",
                    ca_bundle="-----BEGIN CERTIFICATE-----",
                )
            },
            id="custom-cloud",
        ),
        pytest.param({"cloud": None}, {"cloud": virtualnode.CloudConfig()}, id="null-cloud"),
        pytest.param({"cloud": {}}, {"cloud": virtualnode.CloudConfig()}, id="empty-cloud"),
        pytest.param(
            {"credentials": {"type": "ManagedIdentity", "clientId": "c"}},
            {"credentials": virtualnode.CredentialsConfig(type="ManagedIdentity", client_id="c")},
            id="managed-identity",
        ),
        pytest.param(
            {"credentials": {"type": "ServicePrincipal", "secretRef": {"name": "sp"}}},
            {
                "credentials": virtualnode.CredentialsConfig(
                    type="ServicePrincipal", secret_ref=virtualnode.SecretReference("sp")
                )
            },
            id="secret-in-operator-namespace",
        ),
        pytest.param(
            {"credentials": {"type": "StaticToken", "secretRef": {"name": "token", "namespace": "ops"}}},
            {
                "credentials": virtualnode.CredentialsConfig(
                    type="StaticToken", secret_ref=virtualnode.SecretReference("token", "ops")
                )
            },
            id="secret-in-other-namespace",
        ),
        pytest.param(
            {"credentials": {"type": "Default", "secretRef": {}}},
            {"credentials": virtualnode.CredentialsConfig()},
            id="empty-secret-ref",
        ),
        pytest.param(
            {"credentials": None}, {"credentials": virtualnode.CredentialsConfig()}, id="null-credentials"
        ),
    ],
)
def test_azure_fields(azure: dict[str, Any], expected: dict[str, Any]) -> None:
    parsed = parse(resource(azure={**AZURE, **azure})).azure
    for attribute, value in expected.items():
        assert getattr(parsed, attribute) == value


def test_azure_identity_fields() -> None:
    parsed = parse(resource()).azure
    assert (parsed.subscription_id, parsed.resource_group, parsed.region) == (
        SUBSCRIPTION,
        "rg",
        "westeurope",
    )


def test_a_virtual_node_without_a_name_is_refused() -> None:
    with pytest.raises(KeyError):
        parse({"metadata": {}, "spec": {"azure": AZURE}})


def test_the_configuration_is_immutable() -> None:
    parsed = parse(resource())
    with pytest.raises(AttributeError):
        parsed.name = "other"  # type: ignore[misc]


def test_parsing_does_not_share_state_with_the_object() -> None:
    obj = resource(labels={"team": "burst"})
    parsed = parse(obj)
    obj["spec"]["labels"]["team"] = "changed"
    assert parsed.labels == {"team": "burst"}


def test_placement_carries_log_analytics_and_kube_proxy_only_with_their_secrets() -> None:
    config = virtualnode.virtual_node_config_from_resource(
        resource(
            kubeProxy={
                "enabled": True,
                "clusterCIDR": "10.240.0.0/16",
                "kubeconfigSecretRef": {"name": "kp"},
            },
            azure={
                "subscriptionId": "00000000-0000-0000-0000-000000000000",
                "resourceGroup": "rg",
                "region": "westeurope",
                "logAnalytics": {"workspaceId": "ws", "workspaceKeySecretRef": {"name": "la"}},
            },
        )
    )
    assert config.log_analytics == virtualnode.LogAnalyticsConfig("ws", virtualnode.SecretReference("la"))
    cluster = types.ClusterId("c")
    without = virtualnode.group_placement_from_config(config, cluster, "127.0.0.1")
    assert without.log_analytics is None and without.kube_proxy is None
    secrets = virtualnode.PlacementSecrets(workspace_key="k3y", kube_proxy_kubeconfig="apiVersion: v1")
    placed = virtualnode.group_placement_from_config(config, cluster, "127.0.0.1", secrets)
    assert placed.log_analytics is not None and placed.log_analytics.workspace_key == "k3y"
    assert placed.kube_proxy is not None and placed.kube_proxy.cluster_cidr == "10.240.0.0/16"
    assert "k3y" not in repr(secrets)


def test_container_groups_reach_the_placement() -> None:
    config = parse(
        resource(
            containerGroups={
                "gpuSkus": ["V100", "K80"],
                "defaultCPU": "500m",
                "defaultMemory": "1Gi",
                "maxCPU": 8,
                "maxMemory": "32Gi",
                "tagLabels": ["app", "team/*"],
            },
            azure={
                **AZURE,
                "logAnalytics": {
                    "workspaceId": "w",
                    "workspaceKeySecretRef": {"name": "k"},
                    "logType": "ContainerInsights",
                    "clusterResourceId": "/subscriptions/s/resourceGroups/r/providers/x/managedClusters/aks",
                },
            },
        )
    )
    where = virtualnode.group_placement_from_config(
        config, types.ClusterId("c"), None, virtualnode.PlacementSecrets(workspace_key="key")
    )
    assert (where.gpu_skus, where.default_cpu, where.default_memory_gb) == (("V100", "K80"), 0.5, 1.0)
    assert (where.max_cpu, where.max_memory_gb, where.copied_labels) == (8.0, 32.0, ("app", "team/*"))
    assert where.log_analytics is not None
    assert where.log_analytics.cluster_resource_id.endswith("/managedClusters/aks")  # type: ignore[union-attr]
    assert config.capacity["nvidia.com/gpu"] == virtualnode.DEFAULT_GPU_CAPACITY


def test_container_group_defaults_without_the_section() -> None:
    where = virtualnode.group_placement_from_config(parse(resource()), types.ClusterId("c"), None)
    assert (where.gpu_skus, where.default_cpu, where.default_memory_gb) == ((), 1.0, 1.5)
    assert (where.max_cpu, where.max_memory_gb, where.copied_labels) == (4.0, 16.0, ())
    assert "nvidia.com/gpu" not in parse(resource()).capacity
