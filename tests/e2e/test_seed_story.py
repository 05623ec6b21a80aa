"""The seed article's story, end to end: real control plane + `acinode run` + the ACI emulator.

Deploy the sample Deployment with its nodeSelector and tolerations, see the pod bound by the real scheduler and
Running on the virtual node with the IP ACI gave its group, fetch its page from that IP, `kubectl delete -f`, and
see both the pod and its container group gone within 5 s.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client

from acinode.mapping import names
from contract import emulated
from support import arm
from support.virtualnodes import VIRTUAL_NODES
from support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED = REPO_ROOT / "examples" / "seed" / "virtual-node.yaml"


def test_seed_story(
    cluster: Any,
    make_virtual_node: Callable[..., dict[str, Any]],
    core_v1: client.CoreV1Api,
    emulator: emulated.Emulator,
    namespace: str,
) -> None:
    vn = make_virtual_node()
    node_name = vn["metadata"]["name"]
    resource_group = vn["spec"]["azure"]["resourceGroup"]
    wait_until(
        lambda: any(
            c.type == "Ready" and c.status == "True"
            for c in core_v1.read_node(node_name).status.conditions or []
        ),
        30,
        "the virtual node to be Ready",
    )

    cluster.kubectl("apply", "-n", namespace, "-f", str(SEED))

    def seed_pod() -> client.V1Pod | None:
        pods = core_v1.list_namespaced_pod(namespace, label_selector="app=aci-helloworld").items
        return pods[0] if pods else None

    pod = wait_until(
        lambda: (p := seed_pod()) and p.spec.node_name and p, 60, "the scheduler to bind the pod"
    )
    assert pod.spec.node_name == node_name, "the real scheduler bound the pod to the virtual node"

    group_name = names.container_group_name(namespace, pod.metadata.name)
    group = wait_until(
        lambda: arm.get_group(emulator, resource_group, group_name), 30, "the container group to exist in ACI"
    )
    properties = group["properties"]
    assert properties["osType"] == "Linux"
    assert properties["containers"][0]["properties"]["image"] == "microsoft/aci-helloworld"
    assert properties["containers"][0]["properties"]["ports"] == [{"port": 80, "protocol": "TCP"}]
    assert group["tags"]["acinode.pod-uid"] == pod.metadata.uid
    assert group["tags"]["acinode.node"] == node_name

    running = wait_until(
        lambda: (p := seed_pod()) and p.status.phase == "Running" and p.status.pod_ip and p,
        60,
        "the pod to be Running with an IP",
    )
    group = arm.get_group(emulator, resource_group, group_name)
    assert running.status.pod_ip == group["properties"]["ipAddress"]["ip"]
    assert running.status.container_statuses[0].ready

    custom = client.CustomObjectsApi(core_v1.api_client)
    wait_until(
        lambda: (
            custom.get_cluster_custom_object(*VIRTUAL_NODES, node_name).get("status", {}).get("pods") == 1
        ),
        15,
        "the VirtualNode to count its pod (kubectl get vn: PODS 1)",
    )

    with urllib.request.urlopen(f"http://{running.status.pod_ip}/", timeout=10) as response:
        page = response.read().decode()
    assert "Welcome to Azure Container Instances" in page

    deleted_at = time.monotonic()
    cluster.kubectl("delete", "-n", namespace, "-f", str(SEED), "--wait=false")
    wait_until(lambda: seed_pod() is None, 5, "the pod to leave the API within 5 s")
    wait_until(
        lambda: not arm.list_groups(emulator, resource_group), 5, "the container group to be gone within 5 s"
    )
    assert time.monotonic() - deleted_at <= 5.5
