"""Spec edits on a live virtual node take effect (issue 17), on the real control plane with `acinode run` and the
emulator: the Node changes in place, the next pod's container group follows the new spec, running groups are left
alone; a Secret created after its VirtualNode makes the node Ready; a GPU pod runs where a GPU SKU is offered."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from typing import Any

from kubernetes import client

from acinode.mapping import names
from contract import emulated
from support import arm
from support.virtualnodes import VIRTUAL_NODES, declare_subnet, emulator_hook
from support.waiting import wait_until

MakeVirtualNode = Callable[..., dict[str, Any]]
IDENTITY = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/apps/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/shop-api"
)


def ready(core: client.CoreV1Api, name: str) -> str | None:
    try:
        node = core.read_node(name)
    except client.ApiException:
        return None
    condition = next((c for c in node.status.conditions or [] if c.type == "Ready"), None)
    return None if condition is None else f"{condition.status}: {condition.message}"


def pod_body(node: str, name: str, **extra: Any) -> dict[str, Any]:
    annotations = extra.pop("annotations", {})
    labels = extra.pop("labels", {})
    container = {"name": "main", "image": "nginx", **extra.pop("container", {})}  # serves until stopped
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": False,
            "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
            "containers": [container],
            **extra,
        },
    }


def edit(custom: client.CustomObjectsApi, name: str, spec: dict[str, Any]) -> float:
    """Patch the VirtualNode's spec and wait until the operator reports it applied (status.observedGeneration,
    as Kubernetes controllers do); returns how long that took."""
    started = time.monotonic()
    patched = custom.patch_cluster_custom_object(*VIRTUAL_NODES, name, {"spec": spec})
    generation = patched["metadata"]["generation"]

    def applied() -> bool:
        status = custom.get_cluster_custom_object(*VIRTUAL_NODES, name).get("status") or {}
        return int(status.get("observedGeneration", 0)) >= generation

    wait_until(applied, 30, f"generation {generation} of {name} applied")
    return time.monotonic() - started


def running_group(
    core: client.CoreV1Api, emulator: emulated.Emulator, resource_group: str, pod: dict[str, Any]
) -> dict[str, Any]:
    namespace = "default"
    core.create_namespaced_pod(namespace, pod)
    name = pod["metadata"]["name"]
    wait_until(
        lambda: core.read_namespaced_pod(name, namespace).status.phase == "Running", 60, f"{name} Running"
    )
    group_name = names.container_group_name("default", name)
    return arm.get_group(emulator, resource_group, group_name)


def test_spec_edits_reach_the_node_and_the_next_pods_group(
    make_virtual_node: MakeVirtualNode,
    core_v1: client.CoreV1Api,
    custom_objects: client.CustomObjectsApi,
    emulator: emulated.Emulator,
) -> None:
    vn = make_virtual_node()
    name, rg = vn["metadata"]["name"], vn["spec"]["azure"]["resourceGroup"]
    wait_until(lambda: (ready(core_v1, name) or "").startswith("True"), 60, "Ready")
    suffix = uuid.uuid4().hex[:5]
    before = running_group(core_v1, emulator, rg, pod_body(name, f"before-{suffix}"))
    assert "dnsConfig" not in before["properties"]

    started = time.monotonic()
    azure = {**vn["spec"]["azure"], "tags": {"team": "blue"}, "allowedIdentities": [{"resourceId": IDENTITY}]}
    edit(
        custom_objects,
        name,
        {
            "labels": {"tier": "two"},
            "taints": [{"key": "dedicated", "value": "batch", "effect": "NoSchedule"}],
            "capacity": {"pods": 7},
            "dns": {"clusterDNS": ["10.0.0.99"], "clusterDomain": "corp.local"},
            "containerGroups": {"tagLabels": ["app"], "defaultCPU": "500m", "defaultMemory": "1Gi"},
            "azure": azure,
        },
    )

    def node_updated() -> bool:
        node = core_v1.read_node(name)
        taints = {(t.key, t.effect) for t in node.spec.taints or []}
        return (
            node.metadata.labels.get("tier") == "two"
            and ("dedicated", "NoSchedule") in taints
            and node.status.capacity.get("pods") == "7"
        )

    wait_until(node_updated, 30, "labels, taints and capacity on the Node")
    node_seconds = time.monotonic() - started

    after = running_group(
        core_v1,
        emulator,
        rg,
        pod_body(
            name,
            f"after-{suffix}",
            labels={"app": "web"},
            annotations={"aci.acinode.dev/identities": IDENTITY},
            tolerations=[{"operator": "Exists"}],
        ),
    )
    properties = after["properties"]
    assert properties["dnsConfig"]["nameServers"] == ["10.0.0.99"]
    assert any("corp.local" in s for s in properties["dnsConfig"].get("searchDomains", "").split())
    assert after["tags"]["team"] == "blue"
    assert any(value == "web" for key, value in after["tags"].items() if "app" in key)
    assert IDENTITY in after["identity"]["userAssignedIdentities"]
    requests = properties["containers"][0]["properties"]["resources"]["requests"]
    assert (requests["cpu"], requests["memoryInGB"]) == (0.5, 1.0)
    # The running group was not touched.
    assert arm.get_group(emulator, rg, before["name"])["properties"].get("dnsConfig") is None
    print(f"node updated {node_seconds:.1f}s after the edit")

    # The operating system: the Node's label in place, the next group's osType.
    edit(custom_objects, name, {"operatingSystem": "windows"})
    wait_until(
        lambda: core_v1.read_node(name).metadata.labels.get("kubernetes.io/os") == "windows", 30, "os label"
    )
    windows = running_group(
        core_v1, emulator, rg, pod_body(name, f"windows-{suffix}", tolerations=[{"operator": "Exists"}])
    )
    assert windows["properties"]["osType"] == "Windows"

    # Credentials: the client is rebuilt, running pods stay Running, the next pod runs.
    core_v1.create_namespaced_secret(
        "default",
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=f"token-{suffix}"),
            data={"token": base64.b64encode(emulator.token.encode()).decode()},
        ),
    )
    credentials = {"type": "StaticToken", "secretRef": {"name": f"token-{suffix}"}}
    edit(custom_objects, name, {"operatingSystem": "linux", "azure": {**azure, "credentials": credentials}})
    rebuilt = running_group(
        core_v1, emulator, rg, pod_body(name, f"rebuilt-{suffix}", tolerations=[{"operator": "Exists"}])
    )
    assert rebuilt["properties"]["osType"] == "Linux"
    assert core_v1.read_namespaced_pod(f"before-{suffix}", "default").status.phase == "Running"
    assert arm.get_group(emulator, rg, before["name"])["id"] == before["id"]
    # VNet, kube-proxy and Log Analytics (their Secrets are read on the edit), and the group maxima.
    subnet = (
        f"/subscriptions/{azure['subscriptionId']}/resourceGroups/{rg}/providers/Microsoft.Network/"
        "virtualNetworks/vnet/subnets/aci"
    )
    declare_subnet(emulator, subnet)
    for secret, key in ((f"kubeconfig-{suffix}", "kubeconfig"), (f"workspace-{suffix}", "workspaceKey")):
        core_v1.create_namespaced_secret(
            "default",
            client.V1Secret(metadata=client.V1ObjectMeta(name=secret), string_data={key: f"value-of-{key}"}),
        )
    log_analytics = {"workspaceId": f"ws-{suffix}", "workspaceKeySecretRef": {"name": f"workspace-{suffix}"}}
    edit(
        custom_objects,
        name,
        {
            "kubeProxy": {
                "enabled": True,
                "clusterCIDR": "10.240.0.0/16",
                "kubeconfigSecretRef": {"name": f"kubeconfig-{suffix}"},
            },
            "containerGroups": {"maxCPU": 2},
            "azure": {
                **azure,
                "credentials": credentials,
                "subnetId": subnet,
                "logAnalytics": log_analytics,
            },
        },
    )
    vnet = running_group(
        core_v1, emulator, rg, pod_body(name, f"vnet-{suffix}", tolerations=[{"operator": "Exists"}])
    )
    assert [s["id"] for s in vnet["properties"]["subnetIds"]] == [subnet]
    assert [e["name"] for e in vnet["properties"].get("extensions", [])] == ["kube-proxy"]
    assert vnet["properties"]["diagnostics"]["logAnalytics"]["workspaceId"] == f"ws-{suffix}"
    too_big = pod_body(
        name,
        f"too-big-{suffix}",
        tolerations=[{"operator": "Exists"}],
        container={"resources": {"requests": {"cpu": "3"}}},
    )
    core_v1.create_namespaced_pod("default", too_big)
    wait_until(
        lambda: core_v1.read_namespaced_pod(f"too-big-{suffix}", "default").status.reason == "ProviderFailed",
        60,
        "a pod above the new maxCPU refused",
    )
    for pod in ("before", "after", "windows", "rebuilt", "vnet", "too-big"):
        core_v1.delete_namespaced_pod(f"{pod}-{suffix}", "default")
    # The token Secret stays: deleting the VirtualNode (the fixture's teardown) needs it to remove the groups.


def test_a_secret_created_after_its_virtual_node_makes_it_ready(
    make_virtual_node: MakeVirtualNode, core_v1: client.CoreV1Api, emulator: emulated.Emulator
) -> None:
    secret = f"late-{uuid.uuid4().hex[:6]}"
    vn = make_virtual_node(name=f"vn-late-{uuid.uuid4().hex[:4]}")
    name = vn["metadata"]["name"]
    # Point it at a Secret that does not exist yet.
    custom = client.CustomObjectsApi(core_v1.api_client)
    credentials = {"type": "StaticToken", "secretRef": {"name": secret}}
    custom.patch_cluster_custom_object(
        *VIRTUAL_NODES, name, {"spec": {"azure": {**vn["spec"]["azure"], "credentials": credentials}}}
    )
    wait_until(lambda: secret in (ready(core_v1, name) or ""), 60, "NotReady naming the missing Secret")
    created = time.monotonic()
    core_v1.create_namespaced_secret(
        "default",
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=secret),
            data={"token": base64.b64encode(emulator.token.encode()).decode()},
        ),
    )
    # (The Secret stays: deleting the VirtualNode, in the fixture's teardown, needs it.)
    wait_until(lambda: (ready(core_v1, name) or "").startswith("True"), 60, "Ready once the Secret exists")
    print(f"Ready {time.monotonic() - created:.1f}s after the Secret was created")


def test_a_gpu_pod_runs_on_a_node_that_offers_a_gpu_sku(
    make_virtual_node: MakeVirtualNode, core_v1: client.CoreV1Api, emulator: emulated.Emulator
) -> None:
    emulator_hook(emulator, "PATCH", "config", {"quotaGpuCores": 24})
    vn = make_virtual_node(containerGroups={"gpuSkus": ["V100"]})
    name, rg = vn["metadata"]["name"], vn["spec"]["azure"]["resourceGroup"]
    wait_until(lambda: (ready(core_v1, name) or "").startswith("True"), 60, "Ready")
    assert core_v1.read_node(name).status.capacity.get("nvidia.com/gpu") == "100"
    pod = pod_body(
        name, f"gpu-{uuid.uuid4().hex[:5]}", container={"resources": {"limits": {"nvidia.com/gpu": "1"}}}
    )
    # Through the scheduler this time: the Node must advertise GPUs for it to place the pod.
    del pod["spec"]["nodeName"]
    pod["spec"]["nodeSelector"] = {"kubernetes.io/hostname": name}
    group = running_group(core_v1, emulator, rg, pod)
    gpu = group["properties"]["containers"][0]["properties"]["resources"]["requests"]["gpu"]
    assert gpu == {"count": 1, "sku": "V100"}
    core_v1.delete_namespaced_pod(pod["metadata"]["name"], "default")
