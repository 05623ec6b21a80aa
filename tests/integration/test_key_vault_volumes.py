"""Key Vault secrets on a virtual node, the AKS way: a pod mounts a Secrets Store CSI volume whose
SecretProviderClass (the CRD as the secrets-store-csi-driver project publishes it, from its Go module) uses the
Azure provider. On a kubelet the driver fetches the secrets; on a virtual node ACI does, from Key Vault references
in the container group, with the identity the class names. The values never pass through acinode or ARM.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

import pytest
from kubernetes import client

from contract import emulated
from support import arm
from support.virtualnodes import emulator_hook, virtual_node_body, wait_node_ready
from support.waiting import wait_until

DRIVER_MODULE = "sigs.k8s.io/secrets-store-csi-driver@v1.5.4"
CRD_FILE = "deploy/secrets-store.csi.x-k8s.io_secretproviderclasses.yaml"
TOLERATIONS = [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}]
CLIENT_ID = "6a0b4b3c-8f4e-4c6d-9a1b-2c3d4e5f6a7b"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
IDENTITY = (
    f"/subscriptions/{emulated.SUBSCRIPTION}/resourceGroups/identities/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/kv-reader"
)


def _published_crd() -> str:
    """The SecretProviderClass CRD from the driver's module (checked against the Go checksum database)."""
    done = subprocess.run(
        ["go", "mod", "download", "-json", DRIVER_MODULE],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return f"{json.loads(done.stdout)['Dir']}/{CRD_FILE}"


@pytest.fixture(scope="module")
def secret_provider_class_crd(cluster: Any) -> None:
    cluster.kubectl("apply", "-f", _published_crd())
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "crd/secretproviderclasses.secrets-store.csi.x-k8s.io",
        "--timeout=60s",
    )


def _provider_class(name: str, client_id: str) -> dict[str, Any]:
    # As Microsoft's AKS docs write one for a user-assigned identity ("Access with a user-assigned managed identity").
    return {
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": {"name": name},
        "spec": {
            "provider": "azure",
            "parameters": {
                "usePodIdentity": "false",
                "useVMManagedIdentity": "true",
                "userAssignedIdentityID": client_id,
                "keyvaultName": "kv-demo",
                "cloudName": "",
                "objects": 'array:\n  - |\n    objectName: db-password\n    objectType: secret\n    objectVersion: ""\n',
                "tenantId": TENANT,
            },
        },
    }


def _pod(node: str, name: str, provider_class: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "tolerations": TOLERATIONS,
            "containers": [
                {
                    "name": "busybox",
                    "image": "registry.k8s.io/e2e-test-images/busybox:1.29-4",
                    "command": ["/bin/sleep", "10000"],
                    "volumeMounts": [
                        {
                            "name": "secrets-store01-inline",
                            "mountPath": "/mnt/secrets-store",
                            "readOnly": True,
                        }
                    ],
                    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
                }
            ],
            "volumes": [
                {
                    "name": "secrets-store01-inline",
                    "csi": {
                        "driver": "secrets-store.csi.k8s.io",
                        "readOnly": True,
                        "volumeAttributes": {"secretProviderClass": provider_class},
                    },
                }
            ],
        },
    }


@pytest.fixture
def key_vault_node(
    secret_provider_class_crd: None,
    make_virtual_node: Any,
    emulator: emulated.Emulator,
    core_v1: client.CoreV1Api,
    namespace: str,
) -> dict[str, Any]:
    name = f"vn-{uuid.uuid4().hex[:6]}"
    azure = virtual_node_body(name, emulator)["spec"]["azure"]
    azure["allowedIdentities"] = [{"resourceId": IDENTITY, "clientId": CLIENT_ID, "namespaces": [namespace]}]
    node: dict[str, Any] = make_virtual_node(name, azure=azure)
    wait_node_ready(core_v1, name)
    return node


def _create_class(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> None:
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "secrets-store.csi.x-k8s.io", "v1", namespace, "secretproviderclasses", body
    )


def test_a_secret_provider_class_becomes_key_vault_references_in_the_group(
    key_vault_node: dict[str, Any],
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    namespace: str,
    emulator: emulated.Emulator,
) -> None:
    _create_class(api_client, namespace, _provider_class("azure-kvname-user-msi", CLIENT_ID))
    emulator_hook(emulator, "POST", "stats/reset")
    core_v1.create_namespaced_pod(
        namespace, _pod(key_vault_node["metadata"]["name"], "kv-user", "azure-kvname-user-msi")
    )
    wait_until(
        lambda: core_v1.read_namespaced_pod("kv-user", namespace).status.phase == "Running", 60, "Running"
    )

    resource_group = key_vault_node["spec"]["azure"]["resourceGroup"]
    uid = core_v1.read_namespaced_pod("kv-user", namespace).metadata.uid
    listed = emulator_hook(emulator, "GET", "stats")
    assert listed["apiVersions"]["ContainerGroups_CreateOrUpdate"] == {"2025-09-01": 1}, listed["apiVersions"]
    group_name = next(
        g
        for g in arm.list_groups(emulator, resource_group)
        if (g.get("tags") or {}).get("acinode.pod-uid") == uid
    )["name"]
    held = emulator_hook(
        emulator, "GET", f"groups/{emulated.SUBSCRIPTION}/{resource_group}/{group_name}/secrets"
    )
    assert held["volumes"]["secrets-store01-inline"] == {
        "secretReference": {"db-password": "secrets-store01-inline-0"},
        "resolved": {"db-password": "value of https://kv-demo.vault.azure.net/secrets/db-password"},
    }


def test_a_class_whose_identity_the_node_does_not_allow_is_refused_by_field(
    key_vault_node: dict[str, Any], api_client: client.ApiClient, core_v1: client.CoreV1Api, namespace: str
) -> None:
    other_client = "0f0f0f0f-1111-2222-3333-444444444444"
    _create_class(api_client, namespace, _provider_class("borrowed", other_client))
    core_v1.create_namespaced_pod(
        namespace, _pod(key_vault_node["metadata"]["name"], "kv-borrowed", "borrowed")
    )

    def refused() -> str | None:
        pod = core_v1.read_namespaced_pod("kv-borrowed", namespace)
        return pod.status.message if pod.status.reason == "ProviderFailed" else None

    message = wait_until(refused, 60, "the pod refused")
    assert "userAssignedIdentityID" in message and other_client in message, message
