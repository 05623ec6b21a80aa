"""Kubelet parity on the real control plane with `acinode run` and the emulator (issue 19): every Running pod has
an IP, deletion takes its grace period and shows terminated containers, a force delete removes the group at once,
and activeDeadlineSeconds fails a Job's pod with DeadlineExceeded."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubernetes import client, watch

from contract import emulated
from support import arm
from support.virtualnodes import virtual_node_body
from support.waiting import wait_until

MakeVirtualNode = Callable[..., dict[str, Any]]
SUBNET = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/net/providers/Microsoft.Network/"
    "virtualNetworks/vnet/subnets/aci"
)


def pod_on(
    node: dict[str, Any], name: str, container: dict[str, Any], restart_policy: str = "Always"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": restart_policy,
            "nodeName": node["metadata"]["name"],
            "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
            "containers": [{"name": "main", "image": "nginx", **container}],  # serves unless given a command
        },
    }


def resource_group(node: dict[str, Any]) -> str:
    return str(node["spec"]["azure"]["resourceGroup"])


def read_pod(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod | None:
    try:
        return core.read_namespaced_pod(name, namespace)
    except client.ApiException as err:
        if err.status == 404:
            return None
        raise


def _ready(core: client.CoreV1Api, vn: dict[str, Any]) -> client.V1Node:
    name = vn["metadata"]["name"]
    return wait_until(
        lambda: (
            (n := core.read_node(name))
            and any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
            and n
        ),
        30,
        "the virtual node to be Ready",
    )


def _running(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod:
    return wait_until(
        lambda: (p := read_pod(core, namespace, name)) and p.status.phase == "Running" and p,
        60,
        f"{name} Running",
    )


def test_a_portless_pod_has_its_group_private_ip_in_vnet_mode_and_the_host_ip_in_public_mode(
    make_virtual_node: MakeVirtualNode, core_v1: client.CoreV1Api, emulator: emulated.Emulator, namespace: str
) -> None:
    public = make_virtual_node()
    name = f"vn-net-{public['metadata']['name'][-6:]}"
    azure = {**virtual_node_body(name, emulator)["spec"]["azure"], "subnetId": SUBNET}
    vnet = make_virtual_node(name, azure=azure)
    public_node = _ready(core_v1, public)
    _ready(core_v1, vnet)
    core_v1.create_namespaced_pod(namespace, pod_on(vnet, "quiet-vnet", {}))
    core_v1.create_namespaced_pod(namespace, pod_on(public, "quiet-public", {}))
    in_vnet = _running(core_v1, namespace, "quiet-vnet")
    in_vnet = wait_until(
        lambda: (p := read_pod(core_v1, namespace, "quiet-vnet")) and p.status.pod_ip and p, 30, "a pod IP"
    )
    (group,) = arm.list_groups(emulator, resource_group(vnet))
    detail = arm.get_group(emulator, resource_group(vnet), group["name"])
    assert detail["properties"]["ipAddress"]["type"] == "Private"
    assert in_vnet.status.pod_ip == detail["properties"]["ipAddress"]["ip"]
    assert in_vnet.status.pod_ip != in_vnet.status.host_ip
    print(f"VNet portless pod IP {in_vnet.status.pod_ip} (host {in_vnet.status.host_ip})")
    _running(core_v1, namespace, "quiet-public")
    in_public = wait_until(
        lambda: (p := read_pod(core_v1, namespace, "quiet-public")) and p.status.pod_ip and p, 30, "a pod IP"
    )
    internal = [a.address for a in public_node.status.addresses if a.type == "InternalIP"]
    assert in_public.status.pod_ip == in_public.status.host_ip and in_public.status.pod_ip in internal
    print(f"public portless pod IP {in_public.status.pod_ip} (host {in_public.status.host_ip})")


def test_a_graceful_delete_of_a_pod_ignoring_sigterm_takes_its_grace_period_and_shows_terminated_containers(
    make_virtual_node: MakeVirtualNode, core_v1: client.CoreV1Api, emulator: emulated.Emulator, namespace: str
) -> None:
    vn = make_virtual_node()
    _ready(core_v1, vn)
    body = pod_on(vn, "stubborn", {"command": ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]})
    body["spec"]["terminationGracePeriodSeconds"] = 8
    core_v1.create_namespaced_pod(namespace, body)
    _running(core_v1, namespace, "stubborn")
    listed = core_v1.list_namespaced_pod(namespace, field_selector="metadata.name=stubborn")
    started = time.monotonic()
    core_v1.delete_namespaced_pod("stubborn", namespace)
    seen: list[tuple[float, str, client.V1Pod]] = []
    for event in watch.Watch().stream(
        core_v1.list_namespaced_pod,
        namespace,
        field_selector="metadata.name=stubborn",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=90,
    ):
        seen.append((time.monotonic() - started, event["type"], event["object"]))
        if event["type"] == "DELETED":
            break
    took, kind, _ = seen[-1]
    assert kind == "DELETED"
    print(f"graceful delete took {took:.1f} s for a grace period of 8 s")
    assert took >= 7.0, "the container ignored SIGTERM: the grace period runs out"
    ended = [
        (at, p)
        for at, _, p in seen
        if p.status.container_statuses and p.status.container_statuses[0].state.terminated is not None
    ]
    assert ended, "terminated container statuses were observed before the pod disappeared"
    terminated = ended[0][1].status.container_statuses[0].state.terminated
    assert terminated.exit_code == 137 and ended[0][1].status.container_statuses[0].ready is False
    assert not arm.list_groups(emulator, resource_group(vn))


def test_a_force_delete_removes_the_group_at_once(
    make_virtual_node: MakeVirtualNode, core_v1: client.CoreV1Api, emulator: emulated.Emulator, namespace: str
) -> None:
    vn = make_virtual_node()
    _ready(core_v1, vn)
    body = pod_on(vn, "forced", {"command": ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]})
    body["spec"]["terminationGracePeriodSeconds"] = 60
    core_v1.create_namespaced_pod(namespace, body)
    _running(core_v1, namespace, "forced")
    assert len(arm.list_groups(emulator, resource_group(vn))) == 1
    started = time.monotonic()
    core_v1.delete_namespaced_pod("forced", namespace, grace_period_seconds=0)
    wait_until(lambda: not arm.list_groups(emulator, resource_group(vn)), 20, "the group gone")
    print(f"force delete: group gone after {time.monotonic() - started:.1f} s")
    assert read_pod(core_v1, namespace, "forced") is None


def test_a_job_with_an_active_deadline_fails_with_deadline_exceeded_and_leaves_no_group(
    make_virtual_node: MakeVirtualNode,
    core_v1: client.CoreV1Api,
    api_client: client.ApiClient,
    emulator: emulated.Emulator,
    namespace: str,
) -> None:
    vn = make_virtual_node()
    _ready(core_v1, vn)
    template = pod_on(vn, "unused", {"command": ["sh", "-c", "sleep infinity"]}, restart_policy="Never")
    template["spec"]["activeDeadlineSeconds"] = 5
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "deadline"},
        "spec": {"backoffLimit": 0, "template": {"metadata": {}, "spec": template["spec"]}},
    }
    client.BatchV1Api(api_client).create_namespaced_job(namespace, job)
    pod = wait_until(
        lambda: [
            p
            for p in core_v1.list_namespaced_pod(namespace, label_selector="job-name=deadline").items
            if p.status.phase == "Failed"
        ],
        60,
        "the Job's pod Failed",
    )[0]
    assert (pod.status.reason, pod.status.message) == (
        "DeadlineExceeded",
        "Pod was active on the node longer than the specified deadline",
    )
    assert pod.status.container_statuses[0].state.terminated.exit_code == 137
    wait_until(
        lambda: any(
            c.type == "Failed" and c.status == "True"
            for c in client.BatchV1Api(api_client)
            .read_namespaced_job("deadline", namespace)
            .status.conditions
            or []
        ),
        60,
        "the Job Failed",
    )
    wait_until(lambda: not arm.list_groups(emulator, resource_group(vn)), 20, "no group left")
