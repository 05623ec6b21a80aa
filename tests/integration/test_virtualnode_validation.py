"""The API server itself rejects malformed VirtualNodes, with a message naming what is wrong (CRD schema + CEL)."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest
from kubernetes import client

from support.virtualnodes import VIRTUAL_NODES

VALID: dict[str, Any] = {
    "apiVersion": "acinode.dev/v1alpha1",
    "kind": "VirtualNode",
    "metadata": {"name": "placeholder"},
    "spec": {
        "azure": {
            "subscriptionId": "00000000-0000-0000-0000-000000000000",
            "resourceGroup": "rg-valid",
            "region": "westeurope",
        }
    },
}


def with_changes(name: str | None = None, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(VALID)
    body["metadata"]["name"] = name or f"vn-{uuid.uuid4().hex[:6]}"
    for path, value in changes.items():
        target = body
        keys = path.split("__")
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        if value is None:
            target.pop(keys[-1], None)
        else:
            target[keys[-1]] = value
    return body


INVALID = [
    pytest.param(with_changes(name="Bad_Name"), "metadata.name", id="uppercase-and-underscore-name"),
    pytest.param(with_changes(name="x" * 70), "at most 63 characters", id="name-longer-than-a-node-name"),
    pytest.param(with_changes(spec__nodeName="-node"), "spec.nodeName", id="node-name-leading-hyphen"),
    pytest.param(
        with_changes(spec__capacity={"cpu": "-4"}), "cpu must be a positive quantity", id="negative-cpu"
    ),
    pytest.param(
        with_changes(spec__capacity={"memory": "lots"}),
        "memory must be a positive quantity",
        id="memory-not-a-quantity",
    ),
    pytest.param(with_changes(spec__capacity={"pods": 0}), "spec.capacity.pods", id="zero-pods"),
    pytest.param(with_changes(spec__operatingSystem="plan9"), "spec.operatingSystem", id="unknown-os"),
    pytest.param(
        with_changes(spec__azure__subscriptionId=None), "subscriptionId: Required", id="missing-subscription"
    ),
    pytest.param(
        with_changes(spec__azure__subscriptionId="not-a-guid"),
        "spec.azure.subscriptionId",
        id="subscription-not-a-guid",
    ),
    pytest.param(
        with_changes(spec__azure__resourceGroup="rg."),
        "spec.azure.resourceGroup",
        id="resource-group-ending-in-dot",
    ),
    pytest.param(
        with_changes(spec__azure__region="West Europe"), "spec.azure.region", id="region-display-name"
    ),
    pytest.param(
        with_changes(spec__azure__subnetId="/subscriptions/x/resourceGroups/rg/subnets/s"),
        "spec.azure.subnetId",
        id="malformed-subnet-id",
    ),
    pytest.param(
        with_changes(spec__azure__cloud={"name": "Custom"}),
        "needs cloud.resourceManagerEndpoint",
        id="custom-cloud-without-endpoint",
    ),
    pytest.param(
        with_changes(spec__azure__cloud={"name": "AzurePublicCloud", "resourceManagerEndpoint": "https://x"}),
        "only for cloud.name Custom",
        id="endpoint-on-a-public-cloud",
    ),
    pytest.param(
        with_changes(spec__azure__cloud={"name": "Custom", "resourceManagerEndpoint": "http://127.0.0.1"}),
        "resourceManagerEndpoint",
        id="plain-http-endpoint",
    ),
    pytest.param(
        with_changes(spec__azure__credentials={"type": "ServicePrincipal"}),
        "need secretRef",
        id="service-principal-without-secret",
    ),
    pytest.param(
        with_changes(spec__azure__credentials={"type": "ManagedIdentity"}),
        "need clientId",
        id="managed-identity-without-client-id",
    ),
    pytest.param(
        with_changes(spec__azure__credentials={"type": "Password"}),
        "spec.azure.credentials.type",
        id="unknown-credential-type",
    ),
    pytest.param(
        with_changes(spec__taints=[{"key": "a", "effect": "Sometimes"}]), "effect", id="unknown-taint-effect"
    ),
    pytest.param(
        with_changes(spec__labels={"bad key!": "x"}), "valid Kubernetes label keys", id="invalid-label-key"
    ),
    pytest.param(
        with_changes(spec__dns={"clusterDNS": ["not-an-ip"]}),
        "must be IP addresses",
        id="cluster-dns-not-an-ip",
    ),
    pytest.param(
        with_changes(spec__kubeProxy={"enabled": True}),
        "needs clusterCIDR and kubeconfigSecretRef",
        id="kube-proxy-incomplete",
    ),
    pytest.param(
        with_changes(
            spec__kubeProxy={
                "enabled": True,
                "clusterCIDR": "10.240.0.0",
                "kubeconfigSecretRef": {"name": "k"},
            }
        ),
        "clusterCIDR must be a CIDR",
        id="kube-proxy-cidr-not-a-cidr",
    ),
    # The trust boundary (issue 16): Secrets only from the operator's namespace, no scope on named clouds,
    # identities as ARM ids.
    pytest.param(
        with_changes(
            spec__azure__credentials={
                "type": "StaticToken",
                "secretRef": {"name": "t", "namespace": "kube-system"},
            }
        ),
        "reads Secrets only from its own namespace",
        id="credentials-secret-in-another-namespace",
    ),
    pytest.param(
        with_changes(
            spec__azure__logAnalytics={
                "workspaceId": "w",
                "workspaceKeySecretRef": {"name": "k", "namespace": "tenant-a"},
            }
        ),
        "reads Secrets only from its own namespace",
        id="log-analytics-secret-in-another-namespace",
    ),
    pytest.param(
        with_changes(
            spec__kubeProxy={
                "enabled": True,
                "clusterCIDR": "10.240.0.0/16",
                "kubeconfigSecretRef": {"name": "k", "namespace": "kube-system"},
            }
        ),
        "reads Secrets only from its own namespace",
        id="kube-proxy-secret-in-another-namespace",
    ),
    pytest.param(
        with_changes(
            spec__azure__credentials={"type": "StaticToken", "secretRef": {"name": "../kube-system/x"}}
        ),
        "spec.azure.credentials.secretRef.name",
        id="credentials-secret-name-traversal",
    ),
    pytest.param(
        with_changes(
            spec__azure__cloud={
                "name": "AzurePublicCloud",
                "credentialScope": "https://vault.azure.net/.default",
            }
        ),
        "only for cloud.name Custom",
        id="scope-on-a-named-cloud",
    ),
    pytest.param(
        with_changes(spec__azure__allowedIdentities=[{"resourceId": "my-identity"}]),
        "spec.azure.allowedIdentities[0].resourceId",
        id="allowed-identity-not-an-arm-id",
    ),
    pytest.param(
        with_changes(spec__containerGroups={"defaultCPU": 8, "maxCPU": 4}),
        "defaultCPU must not exceed maxCPU",
        id="default-cpu-above-the-maximum",
    ),
    pytest.param(
        with_changes(spec__containerGroups={"gpuSkus": ["H100"]}),
        "spec.containerGroups.gpuSkus",
        id="gpu-sku-aci-does-not-offer",
    ),
    pytest.param(
        with_changes(spec__containerGroups={"maxMemory": "lots"}),
        "maxMemory must be a positive quantity",
        id="max-memory-not-a-quantity",
    ),
]


@pytest.mark.parametrize(("body", "expected"), INVALID)
def test_api_server_rejects_invalid_virtual_node(
    api_client: client.ApiClient, crd_installed: None, body: dict[str, Any], expected: str
) -> None:
    custom = client.CustomObjectsApi(api_client)
    with pytest.raises(client.ApiException) as caught:
        custom.create_cluster_custom_object(*VIRTUAL_NODES, body)
    assert caught.value.status == 422
    message = json.loads(caught.value.body)["message"]
    assert expected in message, message


def test_a_valid_virtual_node_is_accepted_with_defaults(
    api_client: client.ApiClient, crd_installed: None
) -> None:
    custom = client.CustomObjectsApi(api_client)
    body = with_changes()
    created = custom.create_cluster_custom_object(*VIRTUAL_NODES, body, dry_run="All")
    spec = created["spec"]
    assert spec["operatingSystem"] == "linux"
    assert spec["capacity"] == {"cpu": "800", "memory": "4Ti", "pods": 1000}
    assert spec["azure"]["cloud"] == {"name": "AzurePublicCloud"}
    assert spec["azure"]["credentials"] == {"type": "Default"}


def test_node_name_is_immutable(api_client: client.ApiClient, crd_installed: None) -> None:
    custom = client.CustomObjectsApi(api_client)
    body = with_changes(spec__nodeName="first-name")
    name = body["metadata"]["name"]
    custom.create_cluster_custom_object(*VIRTUAL_NODES, body)
    try:
        with pytest.raises(client.ApiException) as caught:
            custom.patch_cluster_custom_object(*VIRTUAL_NODES, name, {"spec": {"nodeName": "second-name"}})
        assert "nodeName is immutable" in json.loads(caught.value.body)["message"]
    finally:
        custom.delete_cluster_custom_object(*VIRTUAL_NODES, name)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subscriptionId", "00000000-0000-0000-0000-000000000009"),
        ("resourceGroup", "rg-other"),
        ("region", "northeurope"),
    ],
)
def test_the_azure_target_is_immutable(
    api_client: client.ApiClient, crd_installed: None, field: str, value: str
) -> None:
    """Changing where the groups live would strand the groups of the old target (they cost money): refused."""
    custom = client.CustomObjectsApi(api_client)
    body = with_changes()
    name = body["metadata"]["name"]
    custom.create_cluster_custom_object(*VIRTUAL_NODES, body)
    try:
        with pytest.raises(client.ApiException) as caught:
            custom.patch_cluster_custom_object(*VIRTUAL_NODES, name, {"spec": {"azure": {field: value}}})
        assert f"{field} is immutable" in json.loads(caught.value.body)["message"]
        # Other Azure settings stay editable (credentials rotate).
        custom.patch_cluster_custom_object(*VIRTUAL_NODES, name, {"spec": {"azure": {"tags": {"team": "b"}}}})
    finally:
        custom.delete_cluster_custom_object(*VIRTUAL_NODES, name)
